"""SpikingResformer: published parameter counts, shapes, DSSA equations, neuron settings, DropPath."""
import math

import pytest
import torch
from spikingjelly.activation_based import neuron, surrogate

import snnlab  # noqa: F401
from snnlab.models.spikingresformer import (DSSA, PUBLISHED_PARAMS_M, DropPath, build_config, count_parameters,
                                            dssa_signals, layer_report, make_neuron, spikingresformer)


@pytest.mark.parametrize("variant", ["ti", "s", "m", "l", "cifar"])
def test_spikingresformer_parameter_counts_match_published(variant):
    with torch.device("meta"):  # no memory, no init cost: only shapes matter
        model = spikingresformer(variant)
    n = count_parameters(model) / 1e6
    print(f"{variant}: {n:.3f}M (published {PUBLISHED_PARAMS_M[variant]}M)")
    assert abs(n / PUBLISHED_PARAMS_M[variant] - 1) < 0.005


def test_spikingresformer_nano_shapes_and_size():
    torch.manual_seed(0)
    model = spikingresformer("nano")
    assert 0.5e6 < count_parameters(model) < 0.8e6
    x = torch.rand(3, 1, 16, 16)
    assert model(x).shape == (3, 10)
    feats = model.features(x)
    assert feats.shape == (4, 3, 128)                      # [T, B, C_last]
    frames = torch.rand(3, 4, 1, 16, 16)                   # [B, T, C, H, W] event frames
    assert model(frames).shape == (3, 10)
    with pytest.raises(ValueError, match="x must be"):
        model(torch.rand(16, 16))


def test_spikingresformer_forward_is_repeatable_without_manual_reset():
    torch.manual_seed(0)
    model = spikingresformer("nano", img_size=8).eval()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(model(x), model(x))         # neuron state is reset inside forward


def test_make_neuron_settings():
    lif = make_neuron("lif")
    assert isinstance(lif, neuron.LIFNode)
    assert (lif.tau, lif.v_threshold, lif.v_reset, lif.detach_reset, lif.step_mode) == (2.0, 1.0, 0.0, True, "m")
    assert isinstance(lif.surrogate_function, surrogate.ATan) and lif.surrogate_function.alpha == 2.0
    # hard reset to 0, tau 2, decay_input: v = v + (x - v)/2; constant x = 3 -> v 1.5 spike, reset, ...
    out = lif(torch.full((3, 1), 3.0))
    assert out.flatten().tolist() == [1.0, 1.0, 1.0]
    lif.reset()
    out = lif(torch.full((3, 1), 1.5))                     # v: 0.75, 1.125 -> spike, 0.75
    assert out.flatten().tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="neuron"):
        make_neuron("izhikevich")


def test_dssa_matches_equations():
    torch.manual_seed(1)
    T, B, C, H, W, h, p = 2, 2, 4, 4, 4, 2, 2
    blk = DSSA(C, h, (H // p) ** 2, p).train()
    x = torch.randn(T, B, C, H, W) * 2
    out = blk(x)
    # reference, step by step from the paper's equations (fresh neurons, EMA = this batch's rate)
    ref_in, ref_attn, ref_out = make_neuron(), make_neuron(), make_neuron()
    s = ref_in(x)
    y = torch.nn.functional.conv2d(s.flatten(0, 1), blk.qkv.weight, stride=p)
    y = torch.nn.functional.batch_norm(y, None, None, blk.norm.weight, blk.norm.bias, training=True).view(T, B, 2 * C, -1)
    y = y.view(T, B, h, 2 * C // h, -1)
    y1, y2 = y[:, :, :, : C // h], y[:, :, :, C // h:]
    sh = s.view(T, B, h, C // h, H * W)
    r_x = sh.mean((0, 1, 3, 4), keepdim=True)
    a = ref_attn(y1.transpose(-1, -2) @ sh / torch.sqrt(r_x * (C // h)))
    r_a = a.mean((0, 1, 3, 4), keepdim=True)
    o = ref_out((y2 @ a / torch.sqrt(r_a * (H // p) ** 2)).reshape(T, B, C, H, W))
    z = torch.nn.functional.conv2d(o.flatten(0, 1), blk.proj.weight)
    z = torch.nn.functional.batch_norm(z, None, None, blk.norm_proj.weight, blk.norm_proj.bias, training=True)
    torch.testing.assert_close(out, z.view(T, B, C, H, W) + x)
    torch.testing.assert_close(blk.rate_x, r_x)            # the EMA starts at the first batch's rate


def test_dssa_signals_returns_the_scaled_attention_input():
    torch.manual_seed(2)
    T, B, C, H, W, h, p = 4, 2, 8, 4, 4, 2, 2
    blk = DSSA(C, h, (H // p) ** 2, p).eval()
    x = torch.randn(T, B, C, H, W) * 1.5
    sig = dssa_signals(blk, x)
    assert not blk.training                                # the mode is restored
    s, y = sig["s"], sig["y"]
    assert s.shape == (T, B, C, H, W) and y.shape == (T, B, 2 * C, H // p, W // p)
    torch.testing.assert_close(s, make_neuron()(x))        # S = LIF(X), fresh neuron
    sh = s.view(T, B, h, C // h, H * W)
    r_x = sh.mean((0, 1, 3, 4), keepdim=True)              # first training call: the batch's own rate
    torch.testing.assert_close(sig["rate_x"], r_x)
    y1 = y.reshape(T, B, h, 2 * C // h, -1)[:, :, :, : C // h]
    torch.testing.assert_close(sig["attn_input"], y1.transpose(-1, -2) @ sh / torch.sqrt(r_x * (C // h)))
    assert sig["attn"].shape == sig["attn_input"].shape and set(sig["attn"].unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="x must be"):
        dssa_signals(blk, torch.zeros(T, B, C + 1, H, W))


def test_dssa_rate_ema_momentum():
    blk = DSSA(4, 1, 4, 2).train()
    blk.rate_x.fill_(0.5)
    blk.rates_initialised.fill_(True)
    batch = torch.tensor(0.1).view(1, 1, 1, 1, 1)
    got = blk._rate("rate_x", batch)
    assert got.item() == pytest.approx(0.999 * 0.5 + 0.001 * 0.1)


def test_drop_path_scales_survivors_and_is_identity_in_eval():
    dp = DropPath(0.5).train()
    torch.manual_seed(0)
    x = torch.ones(3, 1000, 2)
    y = dp(x)
    kept = y[0, :, 0] != 0
    assert torch.all(y[:, kept] == 2.0) and torch.all(y[:, ~kept] == 0.0)   # same mask for all T
    assert 0.4 < kept.float().mean() < 0.6
    assert torch.equal(dp.eval()(x), x)
    with pytest.raises(ValueError, match="drop_path"):
        DropPath(1.0)


def test_build_config_validation():
    assert build_config("cifar", num_classes=100).num_classes == 100
    with pytest.raises(ValueError, match="unknown"):
        build_config("ti", widths=3)
    with pytest.raises(ValueError, match="variant"):
        build_config("xl")
    with pytest.raises(ValueError, match="img_size"):
        build_config("nano", img_size=10)


def test_layer_report_lists_every_neuron_layer():
    torch.manual_seed(0)
    model = spikingresformer("nano", img_size=8)
    rows = layer_report(model, torch.rand(2, 1, 8, 8))
    assert len(rows) == sum(isinstance(m, neuron.BaseNode) for m in model.modules())
    assert all(0.0 <= r["rate"] <= 1.0 and r["shape"][:2] == (4, 2) for r in rows)
    assert model.training  # mode restored


def test_plasticity_site_names_dssa_proj_with_both_taps():
    model = spikingresformer("nano", img_size=8)
    assert model.plasticity_sites == ("dssa_proj",)
    last = list(model.stages[-1])
    block, nxt = last[1], last[2]                                    # [Downsample, DSSA, GWFFN]
    assert isinstance(block, DSSA)
    syn = model.plasticity_site("dssa_proj", tap="synapse")
    assert syn.weight is block.proj.weight and syn.readout == "position"
    assert syn.pre[0] is block.proj and syn.pre[1] == "input"
    assert syn.post[0] is nxt.act_up and syn.post[1] == "output"     # the first LIF that reads the block
    blk = model.plasticity_site("dssa_proj", tap="block")
    assert blk.weight is block.proj.weight and blk.readout == "any"
    assert (blk.pre, blk.post) == ((block, "input"), (block, "output"))
    with pytest.raises(ValueError, match="name"):
        model.plasticity_site("classifier")
    with pytest.raises(ValueError, match="tap"):
        model.plasticity_site("dssa_proj", tap="layer")
