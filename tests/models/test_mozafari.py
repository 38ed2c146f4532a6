"""Tests for snnlab.models.mozafari: the fast paths against a per-sample, per-time-step reference,
the decision rule, training, checkpoints and resume."""
import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snnlab.data import load_digits_split
from snnlab.experiments.mozafari import MozafariTrainer, epoch_order, plot_study
from snnlab.utils import limit_threads
from snnlab.models.mozafari import (
    MozafariConfig,
    MozafariNet,
    conv_potentials,
    load_network,
    pad_times,
    pool_times,
    rstdp_epoch,
    rstdp_train_step,
    save_network,
    stdp_train_step,
)
from snnlab.plasticity.mozafari import RSTDPParams, adapted_rates, scheduled_rates

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_mozafari", ROOT / "benchmarks" / "mozafari.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

T = 15
SMALL = MozafariConfig(features=(6, 12, 20))


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensor operations: one torch thread (two spinning threads on a shared 2-core machine
    made these tests ~10x slower)."""
    with limit_threads(1):
        yield


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(0, size=28)


@pytest.fixture(scope="module")
def encoded(digits):
    net = MozafariNet(SMALL, seed=0)
    return net.encode(digits.train.x[:16]).to(torch.int64)


def test_pool_times_passes_the_earliest_spike():
    times = torch.tensor([[[[3, 1, 9, 9], [2, 7, 9, 9]]]])          # [1, 1, 2, 4]
    assert pool_times(times, 2).tolist() == [[[[1, 9]]]]
    assert pad_times(torch.zeros(1, 1, 1, 1, dtype=torch.long), 1, T)[0, 0].tolist() == [[T, T, T], [T, 0, T], [T, T, T]]


def test_conv_potentials_equal_one_convolution_per_step():
    gen = torch.Generator().manual_seed(0)
    times = torch.randint(0, T + 1, (2, 3, 7, 7), generator=gen)
    w = torch.rand(4, 3, 3, 3, generator=gen)
    v = conv_potentials(times, w, T)
    for t in (0, 6, 14):
        assert torch.allclose(v[t], torch.nn.functional.conv2d((times <= t).float(), w), atol=1e-5)
    assert (v[1:] >= v[:-1] - 1e-6).all()     # non-negative weights: potentials never decrease


def test_final_spikes_equal_the_time_stepped_layers(encoded):
    net = MozafariNet(SMALL, seed=1)
    fast = net.final_spikes(3, encoded[:4])
    for i in range(4):
        waves = ref.reference_layer_input_waves(net, encoded[i], 3)
        assert torch.equal(fast[i], waves[-1].bool())


def test_predict_matches_reference_per_time_step(digits):
    net = MozafariNet(SMALL, seed=2)
    x = digits.train.x[:6]
    fast = net.predict(x)
    times = net.encode(x).to(torch.int64)
    assert fast.tolist() == [ref.reference_predict_one(net, times[i]) for i in range(6)]


def test_decide_picks_the_largest_final_potential_and_reports_silence():
    net = MozafariNet(SMALL)
    v = torch.zeros(3, 20, 2, 2)
    v[1, 7, 1, 0] = 3.0            # feature 7 -> class 7 // 2 = 3
    v[1, 2, 0, 0] = 2.0
    v[2, 19, 0, 1] = 0.5           # feature 19 -> class 9
    assert net.decide(v).tolist() == [-1, 3, 9]


@pytest.mark.parametrize("first_steps", [1, 3, T])
def test_stdp_train_step_matches_reference(encoded, first_steps):
    net = MozafariNet(SMALL, seed=3)
    for layer in (1, 2):
        pre_all = net.layer_input_times(layer, encoded).to(torch.int64)
        w_fast = w_ref = net.weight(layer).clone()
        for n, i in enumerate(range(6), start=1):
            a_plus, a_minus = scheduled_rates(n * 300, net.config.schedule)   # also large rates
            c = net.config
            w_fast, win_fast, _ = stdp_train_step(
                w_fast, pre_all[i], threshold=c.thresholds[layer - 1], n_steps=T, k=c.k_wta[layer - 1],
                radius=c.radii[layer - 1], a_plus=a_plus, a_minus=a_minus, bounds=c.stdp_bounds,
                first_steps=first_steps)
            w_ref, win_ref = ref.reference_stdp_step(net, layer, w_ref, encoded[i], a_plus, a_minus)
            assert win_fast == win_ref
            assert torch.allclose(w_fast, w_ref, atol=1e-6)
        assert not torch.equal(w_fast, net.weight(layer))      # something was learned


def test_stdp_train_step_looks_further_in_time_when_the_winners_fire_late():
    # every input spikes at step 10: nothing can fire before it, so the first tries (steps 0..0,
    # 0..1, 0..3, 0..7) find no winner and the step must extend to the whole time course
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(4, 2, 3, 3, generator=gen) * 0.5 + 0.5
    pre = torch.full((2, 6, 6), T)
    pre[:, 1:5, 1:5] = 10
    out = {}
    for first_steps in (1, T):
        out[first_steps] = stdp_train_step(w, pre, threshold=5.0, n_steps=T, k=3, radius=1, a_plus=0.1,
                                           a_minus=-0.1, bounds=SMALL.stdp_bounds, pointwise=False,
                                           first_steps=first_steps)
    (w_a, win_a, post_a), (w_b, win_b, post_b) = out[1], out[T]
    assert len(win_a) == 3 and win_a == win_b and post_a == post_b == [10, 10, 10]
    assert torch.equal(w_a, w_b)
    with pytest.raises(ValueError, match="first_steps"):
        stdp_train_step(w, pre, threshold=5.0, n_steps=T, k=3, radius=1, a_plus=0.1, a_minus=-0.1,
                        bounds=SMALL.stdp_bounds, first_steps=0)


def test_stdp_train_step_without_pointwise_inhibition_matches_reference(encoded):
    net = MozafariNet(dataclasses.replace(SMALL, pointwise_inhibition=False), seed=4)
    pre = net.layer_input_times(1, encoded).to(torch.int64)
    c = net.config
    w_fast, win_fast, _ = stdp_train_step(net.w1, pre[0], threshold=15.0, n_steps=T, k=5, radius=3,
                                          a_plus=0.004, a_minus=-0.003, bounds=c.stdp_bounds, pointwise=False)
    w_ref, win_ref = ref.reference_stdp_step(net, 1, net.w1.clone(), encoded[0], 0.004, -0.003)
    assert win_fast == win_ref and torch.allclose(w_fast, w_ref, atol=1e-6)


@pytest.mark.parametrize("cache_block", [1, 4, 32])
def test_rstdp_epoch_matches_reference(encoded, digits, cache_block):
    cfg = dataclasses.replace(SMALL, rstdp=RSTDPParams(block=5))      # small blocks: rates adapt mid-epoch
    net = MozafariNet(cfg, seed=5)
    labels = digits.train.y[:16]
    rates = adapted_rates(cfg.rstdp, 0.1, 0.9)
    order = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8])
    s3 = net.final_spikes(3, encoded)
    w_fast = net.w3.clone()
    dec_fast, rates_fast = rstdp_epoch(w_fast, s3, labels, order, rates, cfg.rstdp, n_steps=T, per_class=2,
                                       cache_block=cache_block)
    w_ref = net.w3.clone()
    dec_ref, rates_ref = ref.reference_rstdp_epoch(net, w_ref, encoded, labels, order, rates)
    assert dec_fast.tolist() == dec_ref.tolist()
    assert torch.allclose(w_fast, w_ref, atol=1e-6) and not torch.equal(w_fast, net.w3)
    assert rates_fast == pytest.approx(rates_ref)


def test_rstdp_train_step_rewards_and_punishes_one_kernel():
    w3 = torch.full((4, 1, 1, 1), 0.5)
    s3 = torch.tensor([[[1.0]]])
    rates = adapted_rates(RSTDPParams(adaptive=False), 1.0, 0.0)
    w3[2] = 0.6                                     # feature 2 wins -> class 1 (2 per class)
    w3, d = rstdp_train_step(w3, s3, 1, rates, n_steps=T, per_class=2, bounds=RSTDPParams().bounds)
    assert d == 1 and w3[2].item() == pytest.approx(0.6 + 0.004 * 0.6 * 0.4)      # reward: STDP
    w3, d = rstdp_train_step(w3, s3, 0, rates, n_steps=T, per_class=2, bounds=RSTDPParams().bounds)
    w_after = 0.6 + 0.004 * 0.24
    assert d == 1 and w3[2].item() == pytest.approx(w_after - 0.004 * w_after * (1 - w_after))   # anti-STDP
    assert w3[0].item() == 0.5 and w3[3].item() == 0.5
    w_silent, d = rstdp_train_step(torch.zeros(4, 1, 1, 1), s3, 0, rates, n_steps=T, per_class=2,
                                   bounds=RSTDPParams().bounds)
    assert d == -1 and (w_silent == 0).all()         # silent network: no decision, no update


def test_epoch_order_is_fixed_by_seed_layer_and_epoch():
    a = epoch_order(50, 3, 1, 2, True)
    assert torch.equal(a, epoch_order(50, 3, 1, 2, True)) and sorted(a.tolist()) == list(range(50))
    assert not torch.equal(a, epoch_order(50, 3, 1, 3, True))
    assert torch.equal(epoch_order(5, 3, 1, 2, False), torch.arange(5))


def _trainer(digits, epochs, checkpoint=None):
    net = MozafariNet(SMALL, seed=6)
    return MozafariTrainer(net, digits.train.x[:20], digits.train.y[:20], digits.val.x[:10],
                           digits.val.y[:10], epochs=epochs, seed=6, checkpoint=checkpoint, progress=False)


def test_layer_input_times_with_a_horizon_keep_every_earlier_spike(encoded):
    net = MozafariNet(SMALL, seed=6)
    whole = net.layer_input_times(3, encoded[:4]).to(torch.int64)
    for horizon in (1, 4, T, 40):
        cut = net.layer_input_times(3, encoded[:4], horizon=horizon).to(torch.int64)
        assert torch.equal(cut, torch.where(whole < horizon, whole, torch.full_like(whole, T)))


def test_stdp_train_step_asks_for_more_when_the_horizon_is_too_short():
    w = torch.full((2, 1, 1, 1), 0.9)
    pre = torch.full((1, 3, 3), T)
    pre[0, 1, 1] = 6                                         # the only input spikes at step 6
    same_w, winners, post = stdp_train_step(w, pre, threshold=0.5, n_steps=T, k=1, radius=0, a_plus=0.1,
                                            a_minus=-0.1, bounds=SMALL.stdp_bounds, max_steps=4)
    assert same_w is w and winners is None and post is None
    new_w, winners, post = stdp_train_step(w, pre, threshold=0.5, n_steps=T, k=1, radius=0, a_plus=0.1,
                                           a_minus=-0.1, bounds=SMALL.stdp_bounds, max_steps=8)
    assert winners == [(0, 1, 1)] and post == [6]
    assert new_w[0].item() == pytest.approx(0.9 + 0.1 * 0.9 * 0.1) and new_w[1].item() == pytest.approx(0.9)


def test_trainer_horizon_changes_nothing_but_speed(digits):
    weights = []
    for horizon in (None, 1, 4):
        net = MozafariNet(SMALL, seed=7)
        MozafariTrainer(net, digits.train.x[:24], digits.train.y[:24], digits.val.x[:4], digits.val.y[:4],
                        epochs=(1, 2, 0), seed=7, progress=False, horizon=horizon).run()
        weights.append(net.w2.clone())
    assert not torch.equal(weights[0], MozafariNet(SMALL, seed=7).w2)
    assert torch.equal(weights[0], weights[1]) and torch.equal(weights[0], weights[2])


@pytest.fixture(scope="module")
def mnist_few():
    from snnlab.data import load_mnist5k_split

    train = load_mnist5k_split(0).train
    return train.x[:8], train.y[:8]


@pytest.mark.parametrize("thresholds", [(15.0, 10.0), (38.0, 10.0)])
def test_trainer_first_steps_change_nothing_but_speed_on_real_digits(mnist_few, thresholds, monkeypatch):
    # FIRST_STEPS[1] (the first try of conv2) against the old 3 steps: bit-identical weights; and
    # against the per-step reference: the same winners. A conv1 threshold of 38 makes conv1 sparse
    # and the conv2 winners late (as a trained conv1 does), so the first try (steps 0..3), the
    # second (4..5) and the whole recompute past the 6-step cache all occur.
    import snnlab.experiments.mozafari as moz   # the trainer reads FIRST_STEPS here

    x, y = mnist_few
    cfg = MozafariConfig(thresholds=thresholds)
    weights = {}
    for first in (moz.FIRST_STEPS, (3, 3)):
        monkeypatch.setattr(moz, "FIRST_STEPS", first)
        net = MozafariNet(cfg, seed=8)
        MozafariTrainer(net, x, y, x[:2], y[:2], epochs=(0, 1, 0), seed=8, progress=False).train_stdp_layer(2)
        weights[first] = net.w2.clone()
    monkeypatch.undo()
    assert moz.FIRST_STEPS[1] != 3 and torch.equal(*weights.values())
    net = MozafariNet(cfg, seed=8)
    times0 = net.encode(x).to(torch.int64)
    pre_all = net.layer_input_times(2, times0).to(torch.int64)
    w_fast = w_ref = net.w2.clone()
    last_steps = []
    for n, i in enumerate(epoch_order(8, 8, 2, 0, True).tolist(), start=1):
        a_plus, a_minus = scheduled_rates(n, cfg.schedule)
        w_fast, win_fast, post = stdp_train_step(
            w_fast, pre_all[i], threshold=thresholds[1], n_steps=T, k=8, radius=1, a_plus=a_plus, a_minus=a_minus,
            bounds=cfg.stdp_bounds, first_steps=moz.FIRST_STEPS[1])
        w_ref, win_ref = ref.reference_stdp_step(net, 2, w_ref, times0[i], a_plus, a_minus)
        assert win_fast == win_ref
        last_steps.append(max(post))
    assert torch.allclose(w_fast, w_ref, atol=1e-6) and torch.allclose(weights[(3, 3)], w_ref, atol=1e-6)
    if thresholds[0] > 15.0:
        assert min(last_steps) <= 3 and {4, 5} & set(last_steps) and max(last_steps) >= 6


def test_trainer_resume_equals_uninterrupted(digits, tmp_path):
    full = _trainer(digits, (1, 2, 3))
    full.run()
    # interrupted twice: after conv2's first epoch, then after R-STDP's second epoch
    ckpt = tmp_path / "run.pt"
    _trainer(digits, (1, 1, 0), ckpt).run()
    part = _trainer(digits, (1, 2, 2), ckpt)
    part.run()
    assert part.done == {1: 1, 2: 2, 3: 2}
    resumed = _trainer(digits, (1, 2, 3), ckpt)
    resumed.run()
    for name in ("w1", "w2", "w3"):
        assert torch.equal(getattr(resumed.net, name), getattr(full.net, name)), name
    assert resumed.history.rstdp_val_acc == full.history.rstdp_val_acc
    assert len(full.history.rstdp_val_acc) == 3


def test_trainer_checkpoint_rejects_other_seed(digits, tmp_path):
    ckpt = tmp_path / "run.pt"
    _trainer(digits, (1, 0, 0), ckpt).run()
    other = MozafariTrainer(MozafariNet(SMALL), digits.train.x[:20], digits.train.y[:20], digits.val.x[:10],
                            digits.val.y[:10], epochs=(1, 0, 0), seed=7, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="seed"):
        other.run()


def test_save_and_load_network_roundtrip(tmp_path):
    net = MozafariNet(SMALL, seed=8)
    loaded = load_network(save_network(net, tmp_path / "net.pt"))
    assert loaded.config == net.config
    for name in ("w1", "w2", "w3"):
        assert torch.equal(getattr(loaded, name), getattr(net, name))
    assert not list(tmp_path.glob(".*.tmp"))      # atomic write left no temporary file


def test_initial_weights_seeded_and_in_bounds():
    a, b = MozafariNet(SMALL, seed=9), MozafariNet(SMALL, seed=9)
    assert torch.equal(a.w3, b.w3) and not torch.equal(a.w3, MozafariNet(SMALL, seed=10).w3)
    assert float(a.w1.mean()) == pytest.approx(0.8, abs=0.02) and a.w1.min() >= 0 and a.w1.max() <= 1


@pytest.mark.parametrize("field, value", [("features", (30, 250, 205)), ("thresholds", (15.0,)),
                                          ("k_wta", (0, 8)), ("n_classes", 1)])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field.split("[")[0]):
        MozafariConfig(**{field: value})


def test_trainer_rejects_bad_epochs(digits):
    with pytest.raises(ValueError, match="epochs"):
        _trainer(digits, (1, 2))


# --------------------------------------------------------------------------- the accuracy study script
_study_spec = importlib.util.spec_from_file_location("mozafari_study", ROOT / "scripts" / "mozafari_study.py")
study = importlib.util.module_from_spec(_study_spec)
_study_spec.loader.exec_module(study)


def test_digits_study_changes_one_thing_per_variant():
    # notebook 02's defaults with dataset="digits" are the digits study's best validation variant
    _, changes, epochs, inner = study.VARIANTS[study.DIGITS_DEFAULT]
    assert changes == {} and inner == 28 and epochs == (8, 12, 60) and study.DEFAULT_RSTDP.block == 100
    x, _ = study.framed_digits(0, 28)[0]
    assert torch.equal(x, load_digits_split(0, size=28).train.x)        # the notebook's images, exactly
    base = study.VARIANTS["baseline"]
    for name, (_, changes, epochs, inner) in study.VARIANTS.items():
        assert (len(changes) + (epochs != base[2]) + (inner != base[3])) == (name != "baseline"), name


@pytest.mark.slow
def test_study_script_quick_run_writes_json_and_table(tmp_path):
    out = tmp_path / "study.json"
    script = str(ROOT / "scripts" / "mozafari_study.py")
    done = subprocess.run([sys.executable, script, "--dataset", "digits", "--quick", "--seeds", "0", "--variants", "baseline",
                           "22x22 in 28x28", "--jobs", "2", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [(r["variant"], r["seed"]) for r in result["runs"]] == [("baseline", 0), ("22x22 in 28x28", 0)]
    assert all(0.0 <= r["test_acc"] <= 1.0 and r["epochs"] == [1, 1, 2] for r in result["runs"])
    assert set(result["summary"]) == {"baseline", "22x22 in 28x28"}
    assert "| baseline |" in out.with_suffix(".md").read_text()
    x, _ = study.framed_digits(0, 22)[0]
    assert x.shape[-2:] == (28, 28) and x[..., :3, :].abs().sum() == 0 and x[..., 3:25, 3:25].sum() > 0
    bad = subprocess.run([sys.executable, script, "--jobs", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--jobs must be >= 1" in bad.stderr


def test_plot_study_draws_one_bar_per_variant():
    import matplotlib

    matplotlib.use("Agg")
    summary = json.loads((ROOT / "results" / "mozafari_study_digits.json").read_text())["summary"]
    ax = plot_study(summary, highlight=study.DIGITS_DEFAULT)
    assert len(ax.patches) == len(summary) == len(study.VARIANTS)
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([row["test_mean"] for row in summary.values()])
    orange = [p for p in ax.patches if p.get_facecolor()[:3] == matplotlib.colors.to_rgb("tab:orange")]
    assert len(orange) == 1 and orange[0].get_width() == pytest.approx(summary[study.DIGITS_DEFAULT]["test_mean"])
    matplotlib.pyplot.close("all")


def test_rerun_rstdp_with_the_same_rule_repeats_the_run_and_leaves_the_net_alone(digits):
    from snnlab.experiments.mozafari import rerun_rstdp

    config = dataclasses.replace(SMALL, rstdp=RSTDPParams(block=10))
    net = MozafariNet(config, seed=3)
    x, y, xv, yv = digits.train.x[:30], digits.train.y[:30], digits.val.x[:12], digits.val.y[:12]
    history = MozafariTrainer(net, x, y, xv, yv, epochs=(1, 1, 3), seed=3, progress=False, monitor=(xv, yv)).run()
    before = [net.w1.clone(), net.w2.clone(), net.w3.clone()]
    same = rerun_rstdp(net, x, y, xv, yv, rstdp=config.rstdp, epochs=2, seed=3, monitor=(xv, yv), num_threads=1)
    assert same.rstdp_val_acc == history.rstdp_val_acc[:2]
    assert same.rstdp_train_acc == history.rstdp_train_acc[:2]
    assert same.rstdp_monitor_acc == history.rstdp_monitor_acc[:2]
    assert all(torch.equal(a, b) for a, b in zip(before, (net.w1, net.w2, net.w3)))
    changed = rerun_rstdp(net, x, y, xv, yv, rstdp=RSTDPParams(block=10, punish_plus=0.0, punish_minus=0.0),
                          epochs=2, seed=3, num_threads=1)
    assert len(changed.rstdp_val_acc) == 2 and changed.rstdp_monitor_acc == []
