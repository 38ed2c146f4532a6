"""DA-SSDP: the rule against hand computation and a slow reference loop, the gate, warm-up, latencies,
the attachable component (sites, variants, checkpoint state)."""
import math

import pytest
import torch
import torch.nn as nn

import snnlab  # noqa: F401  (quiets the Triton logger)
from snnlab.models.spikingresformer import spikingresformer
from snnlab.plasticity.dassdp import (DASSDP, DASSDPParams, dopamine_gate, fit_gate, gate_from_moments,
                                      GateMoments, spike_latency, ssdp_delta, ssdp_sum_binned, variant_params)


def reference_delta(pre, post, t_pre, t_post, gate, a_plus, a_minus, sigma):
    """Slow loops over b, o, i straight from the equation."""
    B, I = pre.shape
    O = post.shape[1]
    out = torch.zeros(O, I, dtype=torch.float64)
    for o in range(O):
        for i in range(I):
            acc = 0.0
            for b in range(B):
                l = float(post[b, o] * pre[b, i])
                g = math.exp(-(float(t_post[b, o]) - float(t_pre[b, i])) ** 2 / (2 * sigma**2))
                acc += float(gate[b]) * g * (a_plus * l - a_minus * (1 - l))
            out[o, i] = min(1.0, max(-1.0, acc / B))
    return out


def test_ssdp_delta_hand_computed_single_pair():
    # one sample, one synapse: both fire, t_post - t_pre = 2, sigma 1, gate 1.5
    dw = ssdp_delta(torch.tensor([[1.0]]), torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[2.0]]),
                    torch.tensor([1.5]), 0.3, 0.1, 1.0)
    assert dw.shape == (1, 1)
    assert dw.item() == pytest.approx(1.5 * math.exp(-2.0) * 0.3)
    # post silent: depression -A- g
    dw = ssdp_delta(torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]), torch.tensor([[4.0]]),
                    torch.tensor([1.0]), 0.3, 0.1, 2.0)
    assert dw.item() == pytest.approx(-0.1 * math.exp(-9.0 / 8.0))


def test_ssdp_delta_matches_reference_loop():
    g = torch.Generator().manual_seed(3)
    B, I, O = 5, 4, 3
    pre = (torch.rand(B, I, generator=g) < 0.5).float()
    post = (torch.rand(B, O, generator=g) < 0.5).float()
    t_pre, t_post = torch.rand(B, I, generator=g) * 4, torch.rand(B, O, generator=g) * 4
    gate = torch.rand(B, generator=g) * 2
    got = ssdp_delta(pre, post, t_pre, t_post, gate, 0.02, 0.01, 0.7)
    assert got.shape == (O, I)
    torch.testing.assert_close(got.double(), reference_delta(pre, post, t_pre, t_post, gate, 0.02, 0.01, 0.7))


def test_ssdp_delta_clips_to_unit_interval():
    ones = torch.ones(2, 3)
    dw = ssdp_delta(ones, torch.ones(2, 2), torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(2), 5.0, 0.0, 1.0)
    assert torch.all(dw == 1.0)
    dw = ssdp_delta(torch.zeros(2, 3), torch.ones(2, 2), torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(2), 0.0, 5.0, 1.0)
    assert torch.all(dw == -1.0)


def test_ssdp_delta_rejects_bad_shapes():
    with pytest.raises(ValueError, match="t_pre"):
        ssdp_delta(torch.ones(2, 3), torch.ones(2, 2), torch.zeros(2, 4), torch.zeros(2, 2), torch.ones(2), 1, 1, 1)
    with pytest.raises(ValueError, match="gate"):
        ssdp_delta(torch.ones(2, 3), torch.ones(2, 2), torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(3), 1, 1, 1)
    with pytest.raises(ValueError, match="sigma"):
        ssdp_delta(torch.ones(2, 3), torch.ones(2, 2), torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(2), 1, 1, 0)


def test_ssdp_sum_binned_equals_ssdp_delta_on_integer_latencies():
    g = torch.Generator().manual_seed(0)
    T, B, I, O = 4, 9, 7, 5
    pre_seq, post_seq = torch.rand(T, B, I, generator=g) < 0.3, torch.rand(T, B, O, generator=g) < 0.3
    pre, post = pre_seq.any(0).float(), post_seq.any(0).float()
    gate = torch.rand(B, generator=g) * 2
    for mode in ("first", "last"):
        tp, to = spike_latency(pre_seq, mode), spike_latency(post_seq, mode)
        ref = ssdp_delta(pre, post, tp, to, gate, 1.5e-3, 5e-4, 1.3)
        got = ssdp_sum_binned(pre, post, tp, to, gate, 1.5e-3, 5e-4, 1.3, T) / B
        torch.testing.assert_close(got, ref, atol=1e-9, rtol=1e-5)


def test_fit_gate_sign_and_moments():
    s = torch.tensor([0.1, 0.2, 0.3, 0.4])
    k, mu, sd = fit_gate(s, -2 * s + 1)        # more synchrony, lower loss -> k = +1
    assert k == pytest.approx(1.0)
    assert mu == pytest.approx(0.25)
    assert sd == pytest.approx(math.sqrt(((s - 0.25) ** 2).mean().item()))  # population sd
    k, _, _ = fit_gate(s, 3 * s)
    assert k == pytest.approx(-1.0)
    k, _, _ = fit_gate(s, torch.ones(4))        # constant loss: no correlation
    assert k == 0.0


def test_gate_from_moments_equals_fit_gate():
    g = torch.Generator().manual_seed(1)
    s, l = torch.rand(50, generator=g, dtype=torch.float64), torch.rand(50, generator=g, dtype=torch.float64)
    m = GateMoments(50.0, float(s.sum()), float((s * s).sum()), float(l.sum()), float((l * l).sum()), float((s * l).sum()))
    expected_k = -torch.corrcoef(torch.stack([s, l]))[0, 1].item()
    k, mu, sd = gate_from_moments(m)
    assert k == pytest.approx(expected_k, rel=1e-9)
    assert (k, mu, sd) == pytest.approx(fit_gate(s, l))


def test_dopamine_gate_sign_and_clip():
    s = torch.tensor([0.0, 0.5, 1.0, 10.0, -10.0])
    g = dopamine_gate(s, 1.0, 0.5, 0.5)
    torch.testing.assert_close(g, torch.tensor([0.0, 1.0, 2.0, 2.0, 0.0]))
    g = dopamine_gate(s, -0.5, 0.5, 0.5)        # negative k: synchrony above the mean is damped
    torch.testing.assert_close(g, torch.tensor([1.5, 1.0, 0.5, 0.0, 2.0]))
    torch.testing.assert_close(dopamine_gate(s, 1.0, 0.5, 0.0), torch.ones(5))


def test_spike_latency_first_and_last():
    spikes = torch.tensor([[0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0]])  # [T=4, 3 units]
    torch.testing.assert_close(spike_latency(spikes, "first"), torch.tensor([1.0, 0.0, 4.0]))
    torch.testing.assert_close(spike_latency(spikes, "last"), torch.tensor([2.0, 2.0, 4.0]))
    # the released code's expression: cumsum().argmax() -- it is the last spike
    cs = spikes.float().cumsum(0).argmax(0).float()
    assert cs[:2].tolist() == spike_latency(spikes, "last")[:2].tolist()


def test_variant_params_defaults_and_validation():
    r, p = variant_params("released"), variant_params("paper")
    assert (r.latency, r.a_minus, r.dssa_tap) == ("last", 5e-4, "block")
    assert (p.latency, p.a_minus, p.dssa_tap) == ("first", 1e-4, "layer")
    assert r.sites == p.sites == ("classifier", "dssa_proj")
    assert variant_params("paper", a_plus=2e-3, sites=["classifier"]).sites == ("classifier",)
    with pytest.raises(ValueError, match="sigma"):
        DASSDPParams(sigma=0.0)
    with pytest.raises(ValueError, match="latency"):
        variant_params("paper", latency="middle")
    with pytest.raises(ValueError, match="unknown"):
        variant_params("paper", bogus=1)


def _nano():
    torch.manual_seed(0)
    return spikingresformer("nano", img_size=8)


def _train_step(model, plast, x, y, opt):
    model.train()
    loss_b = nn.functional.cross_entropy(model(x), y, reduction="none")
    opt.zero_grad()
    loss_b.mean().backward()
    opt.step()
    return plast.step(loss_b)


def test_dassdp_warmup_is_a_noop_and_gate_is_fitted_once():
    model = _nano()
    plast = DASSDP(model, variant_params("paper", warmup_epochs=1))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: only DA-SSDP can move weights
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 1, 8, 8, generator=g), torch.randint(0, 10, (6,), generator=g)
    w0 = {s.name: s.weight.detach().clone() for s in plast.sites}
    plast.set_epoch(0)
    for _ in range(2):
        diag = _train_step(model, plast, x, y, opt)
    assert diag["warmup"] == 1.0
    for s in plast.sites:
        assert torch.equal(s.weight, w0[s.name]), s.name
        assert s.gate is None and s.moments[0] == 12
    plast.set_epoch(1)
    diag = _train_step(model, plast, x, y, opt)
    fitted = {s.name: s.gate for s in plast.sites}
    assert all(v is not None for v in fitted.values())
    assert any(not torch.equal(s.weight, w0[s.name]) for s in plast.sites)
    _train_step(model, plast, x, y, opt)
    assert {s.name: s.gate for s in plast.sites} == fitted  # fitted once, not refitted
    assert "classifier/k" in diag and "dssa_proj/drift" in diag


def test_dassdp_update_matches_pure_function_at_classifier():
    model = _nano()
    plast = DASSDP(model, variant_params("released", warmup_epochs=0, sites=["classifier"]))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(5, 1, 8, 8, generator=g), torch.randint(0, 10, (5,), generator=g)
    captured = {}
    h = model.classifier.register_forward_hook(lambda m, i, o: captured.update(pre=i[0].detach(), post=o.detach()))
    w0 = model.classifier.weight.detach().clone()
    plast.set_epoch(0)
    _train_step(model, plast, x, y, opt)
    h.remove()
    pre_seq, post_seq = captured["pre"] > 0, captured["post"] > 0
    expected = ssdp_delta(pre_seq.any(0).float(), post_seq.any(0).float(), spike_latency(pre_seq, "last"),
                          spike_latency(post_seq, "last"), torch.ones(5), 1.5e-3, 5e-4, 1.0)
    torch.testing.assert_close(model.classifier.weight - w0, expected, atol=1e-8, rtol=1e-5)


def test_dassdp_constant_gate_is_k_zero():
    model = _nano()
    plast = DASSDP(model, variant_params("paper", warmup_epochs=1, gate="constant"))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    plast.set_epoch(0)
    _train_step(model, plast, x, y, opt)
    plast.set_epoch(1)
    diag = _train_step(model, plast, x, y, opt)
    assert diag["classifier/k"] == 0.0 and diag["classifier/gate"] == pytest.approx(1.0)


def test_dassdp_sites_are_validated():
    model = _nano()
    with pytest.raises(ValueError, match="no module"):
        DASSDP(model, variant_params("paper", sites=["nope"]))
    with pytest.raises(ValueError, match="1x1"):
        DASSDP(model, variant_params("paper", sites=["stages.2.2.mid"]))   # grouped 3x3 conv
    plast = DASSDP(model, variant_params("paper", sites=["stages.2.2.up"]))  # another 1x1 conv works
    assert plast.sites[0].weight is model.stages[2][2].up.weight


def test_dassdp_step_without_forward_raises_and_state_round_trips():
    model = _nano()
    plast = DASSDP(model, variant_params("paper", warmup_epochs=1))
    with pytest.raises(RuntimeError, match="no training forward"):
        plast.step(torch.zeros(3))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    plast.set_epoch(0)
    _train_step(model, plast, torch.rand(4, 1, 8, 8), torch.arange(4), opt)
    state = plast.state_dict()
    other = DASSDP(_nano(), variant_params("paper", warmup_epochs=1))
    other.load_state_dict(state)
    for a, b in zip(plast.sites, other.sites):
        assert torch.equal(a.moments, b.moments) and a.gate == b.gate
