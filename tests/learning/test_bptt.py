"""Tests for snnlab.learning.bptt against hand derivations and the definition of truncation."""
import math

import pytest
import torch

import snnlab  # noqa: F401
from snnlab.learning import bptt
from snnlab.learning import recurrent as R
from snnlab.models.recurrent import RecurrentSNN, RSNNParams, RSNNState


def _atan_prime(u, a=2.0):
    return (a / 2) / (1 + (math.pi / 2 * a * u) ** 2)


def _one_neuron(neuron="lif", detach_reset=True, beta=0.0):
    alpha = 0.9
    p = RSNNParams(n_in=1, n_hidden=1, n_out=1, neuron=neuron, beta_adapt=beta, tau_adapt_ms=5.0,
                     tau_mem_ms=-1.0 / math.log(alpha), recurrent=False, detach_reset=detach_reset)
    net = RecurrentSNN(p, dtype=torch.float64)
    with torch.no_grad():
        net.w_in.fill_(0.8)
    return net, alpha


@pytest.mark.parametrize("detach_reset", [True, False])
def test_bptt_one_neuron_three_steps_matches_hand_derivation(detach_reset):
    """dN/dw for the spike count N = z1 + z2 + z3 of one LIF neuron, derived by hand:

    h1 = w x1, h_t = alpha v_{t-1} + w x_t, v_t = h_t - z_t, z_t = H(h_t - 1), psi_t = g'(h_t - 1)
    dh1/dw = x1, dv_t/dw = dh_t/dw (1 - psi_t) with the reset in the graph (dh_t/dw if detached),
    dh_t/dw = alpha dv_{t-1}/dw + x_t,  dN/dw = sum_t psi_t dh_t/dw.
    """
    net, alpha = _one_neuron(detach_reset=detach_reset)
    w, xs = 0.8, [1.5, 0.5, 1.0]
    x = torch.tensor(xs, dtype=torch.float64).reshape(3, 1, 1)
    out = net(x)
    (grad,) = torch.autograd.grad(out.z.sum(), net.w_in)

    # hand derivation with the numbers: h1 = 1.2 (spike), v1 = 0.2, h2 = 0.58, v2 = 0.58,
    # h3 = 0.522 + 0.8 = 1.322 (spike)
    h1 = w * xs[0]
    z1 = 1.0
    h2 = alpha * (h1 - z1) + w * xs[1]
    h3 = alpha * (h2 - 0.0) + w * xs[2]
    assert out.z.flatten().tolist() == [1.0, 0.0, 1.0]
    assert out.h.flatten().tolist() == pytest.approx([h1, h2, h3])
    psi1, psi2, psi3 = _atan_prime(h1 - 1), _atan_prime(h2 - 1), _atan_prime(h3 - 1)
    keep1 = 1.0 if detach_reset else (1 - psi1)
    keep2 = 1.0 if detach_reset else (1 - psi2)
    dh1 = xs[0]
    dh2 = alpha * dh1 * keep1 + xs[1]
    dh3 = alpha * dh2 * keep2 + xs[2]
    expected = psi1 * dh1 + psi2 * dh2 + psi3 * dh3
    assert grad.item() == pytest.approx(expected, rel=1e-12)


def test_bptt_one_alif_neuron_three_steps_matches_forward_mode_reference():
    """ALIF: the threshold A_t = 1 + beta a_t with a_t = rho a_{t-1} + z_{t-1} carries credit too.
    Forward-mode chain rule in plain floats (reset detached):
    dh_t = alpha dh_{t-1} + x_t, da_t = rho da_{t-1} + psi_{t-1} (dh_{t-1} - beta da_{t-1}),
    dN/dw = sum_t psi_t (dh_t - beta da_t)."""
    beta = 0.6
    net, alpha = _one_neuron(neuron="alif", beta=beta)
    rho = net.params.rho
    xs = [1.5, 0.9, 1.2]
    out = net(torch.tensor(xs, dtype=torch.float64).reshape(3, 1, 1))
    (grad,) = torch.autograd.grad(out.z.sum(), net.w_in)
    h = out.h.flatten().tolist()
    thr = out.threshold.flatten().tolist()
    dh, da, psi_prev, expected = 0.0, 0.0, 0.0, 0.0
    for t in range(3):
        da_new = rho * da + psi_prev * (dh - beta * da)
        dh = alpha * dh + xs[t]
        da = da_new
        psi = _atan_prime(h[t] - thr[t])
        expected += psi * (dh - beta * da)
        psi_prev = psi
    assert out.z.sum() >= 1
    assert grad.item() == pytest.approx(expected, rel=1e-12)


def _recurrent_net(seed=0, **kw):
    base = dict(n_in=4, n_hidden=6, n_out=3, neuron="alif", beta_adapt=0.4, tau_adapt_ms=30.0)
    base.update(kw)
    g = torch.Generator().manual_seed(seed)
    net = RecurrentSNN(RSNNParams(**base), generator=g, in_gain=3.0, rec_gain=1.0, dtype=torch.float64)
    x = torch.bernoulli(torch.full((20, 3, base["n_in"]), 0.3, dtype=torch.float64), generator=g)
    target = torch.randint(0, base["n_out"], (3,), generator=g)
    mask = torch.ones(20)
    mask[:8] = 0.0
    return net, x, target, mask


@pytest.mark.parametrize("k", [20, 25])
def test_tbptt_with_window_T_equals_bptt_exactly(k):
    net, x, target, mask = _recurrent_net()
    g_full, loss_full = bptt.bptt_gradients(net, x, target, mask)
    g_trunc, loss_trunc = bptt.tbptt_gradients(net, x, target, mask, k=k)
    assert loss_trunc == loss_full
    for name in g_full:
        assert torch.equal(g_full[name], g_trunc[name]), name


def test_tbptt_loses_nothing_without_memory_and_something_with_it():
    """With alpha = kappa = 0, no recurrence, no adaptation and a detached reset every step is
    independent, so k = 1 gives the BPTT gradient; with memory it does not."""
    net, x, target, mask = _recurrent_net(neuron="lif", recurrent=False, tau_mem_ms=1e-3, tau_out_ms=0.0)
    assert net.params.alpha == 0.0 and net.params.kappa == 0.0
    g_full, _ = bptt.bptt_gradients(net, x, target, mask)
    g_one, _ = bptt.tbptt_gradients(net, x, target, mask, k=1)
    for name in g_full:
        torch.testing.assert_close(g_one[name], g_full[name], rtol=1e-12, atol=1e-15)
    net, x, target, mask = _recurrent_net()
    g_full, _ = bptt.bptt_gradients(net, x, target, mask)
    g_one, _ = bptt.tbptt_gradients(net, x, target, mask, k=1)
    assert not torch.allclose(g_one["w_in"], g_full["w_in"])


def test_tbptt_window_gradient_matches_manual_detached_windows():
    """Reference: run each window from the detached state by hand and add the gradients."""
    net, x, target, mask = _recurrent_net()
    k = 6
    got, _ = bptt.tbptt_gradients(net, x, target, mask, k=k)
    norm = R.loss_normaliser(mask, x.shape[1])
    state = net.init_state(x.shape[1])
    expected = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for start in range(0, 20, k):
        state = RSNNState(*(s.detach() for s in state))
        ys = []
        for t in range(start, min(start + k, 20)):
            rec, state = net.step(x[t], state)
            ys.append(rec.y)
        loss = R.sequence_loss(torch.stack(ys), target, mask[start:start + k], normaliser=norm)
        grads = torch.autograd.grad(loss, list(net.parameters()))
        for (n, _), g in zip(net.named_parameters(), grads):
            expected[n] += g
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], rtol=1e-12, atol=1e-15)


def test_saved_tensor_meter_counts_saved_bytes():
    x = torch.rand(10, dtype=torch.float64, requires_grad=True)
    meter = bptt.SavedTensorMeter()
    with meter.window():
        y = torch.exp(x)        # exp saves its result: 10 doubles
    assert meter.peak_bytes == 80
    with meter.window():
        z = (x * x).sum()       # mul saves x twice: one storage, counted once
    assert meter.window_bytes[-1] == 80
    del y, z


def test_tbptt_memory_grows_linearly_with_window():
    net, x, target, mask = _recurrent_net()
    mem = bptt.tbptt_memory(net, x[:16], target, mask[:16], [1, 2, 4, 8, 16])
    per_step = mem[2] - mem[1]
    assert per_step > 0
    for k in (4, 8, 16):                      # exactly affine in k: a fixed cost per unrolled step
        assert mem[k] - mem[1] == per_step * (k - 1)
    assert mem[16] > 4 * mem[1]


def test_train_bptt_learns_delayed_recall_and_tbptt_requires_k():
    g = torch.Generator().manual_seed(0)
    task = R.delayed_recall_task(64, cue_steps=3, delay_steps=4, recall_steps=3, generator=g)
    net = RecurrentSNN(RSNNParams(n_in=task.n_in, n_hidden=16, n_out=2), generator=g, in_gain=2.0)
    before = R.evaluate(net, task)["loss"]
    hist = bptt.train(net, task, task, epochs=8, batch_size=16, lr=0.02, generator=g, progress=False)
    assert hist["val_loss"][-1] < before
    assert len(hist["train_loss"]) == 8
    with pytest.raises(ValueError, match="k"):
        bptt.train(net, task, method="tbptt", epochs=1, progress=False)


def test_plot_unrolled_graph_returns_figure():
    import matplotlib
    matplotlib.use("Agg")
    fig = bptt.plot_unrolled_graph(5, k=2)
    assert fig.axes and "k = 2" in fig.axes[0].get_title()


def test_train_on_cpu_device_networks_and_tasks_equals_the_default(assert_same):
    """bptt.train and eprop.train follow the network's device (tasks are moved there, no device argument)."""
    from snnlab.learning import eprop

    runs = []
    for kw in ({}, {"device": "cpu"}):
        task = R.delayed_recall_task(24, delay_steps=2, generator=torch.Generator().manual_seed(0), **kw)
        p = RSNNParams(n_in=task.n_in, n_hidden=6, n_out=2, neuron="alif")
        net = RecurrentSNN(p, generator=torch.Generator().manual_seed(0), in_gain=2.0, **kw)
        history = bptt.train(net, task, task, method="tbptt", k=3, epochs=1, batch_size=8, progress=False,
                             generator=torch.Generator().manual_seed(1))
        history_e = eprop.train(net, task, task, feedback="random", epochs=1, batch_size=8, progress=False,
                                generator=torch.Generator().manual_seed(2))
        runs.append((history, history_e, net, R.evaluate(net, task)))
    assert_same(runs[1], runs[0])


# --------------------------------------------------------------------------- what crosses a window boundary
def test_tbptt_without_carried_state_equals_independent_windows_from_zero():
    """carry_state=False: each window is an independent sequence started from the zero state."""
    net, x, target, mask = _recurrent_net()
    k = 6
    got, _ = bptt.tbptt_gradients(net, x, target, mask, k=k, carry_state=False)
    carried, _ = bptt.tbptt_gradients(net, x, target, mask, k=k)
    norm = R.loss_normaliser(mask, x.shape[1])
    expected = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for start in range(0, 20, k):
        out = net(x[start:start + k])          # fresh zero state
        loss = R.sequence_loss(out.y, target, mask[start:start + k], normaliser=norm)
        for (n, _), g in zip(net.named_parameters(), torch.autograd.grad(loss, list(net.parameters()))):
            expected[n] += g
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], rtol=1e-12, atol=1e-15)
    assert not torch.allclose(got["w_in"], carried["w_in"])
    g_full, _ = bptt.bptt_gradients(net, x, target, mask)       # one window: nothing to forget
    g_one, _ = bptt.tbptt_gradients(net, x, target, mask, k=20, carry_state=False)
    assert all(torch.equal(g_full[n], g_one[n]) for n in g_full)


def test_input_credit_is_causal_and_stops_at_window_boundaries():
    net, x, _, _ = _recurrent_net()
    full = bptt.input_credit(net, x[:, :2])
    cut = bptt.input_credit(net, x[:, :2], k=5)
    assert full.shape == (20, 20)
    assert torch.all(full.triu(1) == 0) and torch.all(cut.triu(1) == 0)      # no credit to future inputs
    assert torch.all(full.diagonal() > 0)
    for t in range(20):
        for s in range(t + 1):
            assert (cut[t, s] > 0) == (s // 5 == t // 5 and full[t, s] > 0), (t, s)
    torch.testing.assert_close(cut[:5, :5], full[:5, :5])                     # the first window is untouched
    assert bptt.loss_steps_reaching(torch.tensor([0.0] * 25 + [1.0] * 5), 26, range(5)) == [25]
    assert bptt.loss_steps_reaching(torch.tensor([0.0] * 25 + [1.0] * 5), 25, range(5)) == []
    assert bptt.loss_steps_reaching(torch.tensor([0.0] * 25 + [1.0] * 5), 30, range(5)) == [25, 26, 27, 28, 29]


def test_accuracy_with_reset_and_the_linear_probe():
    task = R.delayed_recall_task(64, delay_steps=4, generator=torch.Generator().manual_seed(0))
    p = RSNNParams(n_in=task.n_in, n_hidden=16, n_out=2, neuron="alif", tau_out_ms=0.0)
    net = RecurrentSNN(p, generator=torch.Generator().manual_seed(0), in_gain=2.0)
    plain = R.evaluate(net, task)["accuracy"]
    assert bptt.accuracy_with_reset(net, task, step=6, reset=()) == plain
    assert bptt.accuracy_with_reset(net, task, step=task.n_steps, reset=("v", "a")) == plain
    # zeroing everything at step s equals running the rest of the sequence from scratch
    rest = net(task.x[6:]).y
    with torch.no_grad():
        y = torch.cat([net(task.x[:6]).y, rest])
    expected = float((R.predict(y, task.mask) == task.y).double().mean())
    assert bptt.accuracy_with_reset(net, task, step=6) == pytest.approx(expected)
    with pytest.raises(ValueError, match="reset"):
        bptt.accuracy_with_reset(net, task, step=6, reset=("w",))
    # the probe: a separable feature gives 1.0, pure noise about chance
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 2, (200,), generator=g)
    signal = torch.cat([labels[:, None].double() * 2 - 1, torch.randn(200, 3, generator=g, dtype=torch.float64)], 1)
    assert bptt.linear_probe(signal[:100], labels[:100], signal[100:], labels[100:]) == 1.0
    noise = torch.randn(200, 4, generator=g, dtype=torch.float64)
    assert abs(bptt.linear_probe(noise[:100], labels[:100], noise[100:], labels[100:]) - 0.5) < 0.2
    probe = bptt.probe_carried_state(net, task, R.delayed_recall_task(64, delay_steps=4,
                                     generator=torch.Generator().manual_seed(1)), step=6)
    assert set(probe) == {"v", "a", "z", "all"} and all(0.0 <= v <= 1.0 for v in probe.values())


def test_window_and_carried_state_figures_are_readable():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from snnlab.plots import figure_problems

    net, x, _, mask = _recurrent_net()
    history = {"val_accuracy": [0.5, 0.7, 0.9]}
    figs = [bptt.plot_window_results({1: history, 5: history}, 5, chance=0.5),
            bptt.plot_carried_state({"a": (history, "C3", "o-")}, {"probe": (0.9, "0.6")}),
            bptt.plot_credit({"k = 5": bptt.input_credit(net, x[:, :1], k=5)}, cue_steps=3, mask=mask)]
    for fig in figs:
        assert figure_problems(fig) == []
        plt.close(fig)
