"""Tests for snnlab.learning.eprop: exact cases against BPTT, traces against a reference loop."""
import math

import pytest
import torch

import snnlab  # noqa: F401
from snnlab.learning import bptt, eprop
from snnlab.learning import recurrent as R
from snnlab.models.recurrent import RecurrentSNN, RSNNParams
from snnlab.neurons import surrogate_derivative


def _setup(seed=0, T=25, **kw):
    base = dict(n_in=5, n_hidden=7, n_out=3, tau_adapt_ms=30.0, beta_adapt=0.5)
    base.update(kw)
    g = torch.Generator().manual_seed(seed)
    net = RecurrentSNN(RSNNParams(**base), generator=g, in_gain=3.0, rec_gain=1.0, dtype=torch.float64)
    x = torch.bernoulli(torch.full((T, 4, base["n_in"]), 0.3, dtype=torch.float64), generator=g)
    target = torch.randint(0, base["n_out"], (4,), generator=g)
    mask = torch.ones(T)
    mask[: T // 3] = 0.0
    return net, x, target, mask


def _assert_same(g_eprop, g_bptt):
    for name in g_bptt:
        torch.testing.assert_close(g_eprop[name], g_bptt[name], rtol=1e-10, atol=1e-13, msg=name)


@pytest.mark.parametrize("neuron", ["lif", "alif"])
def test_eprop_equals_bptt_for_feedforward_layer(neuron):
    """Exact case: one feed-forward LIF/ALIF layer (no W_rec), leaky readout, reset detached,
    symmetric feedback B = W_out^T. Then dE/dz_j^t is fully given by the readout, and summing
    L^t ebar^t equals BPTT's sum over the future losses (the two sums are swapped)."""
    net, x, target, mask = _setup(neuron=neuron, recurrent=False)
    g_bptt, loss_bptt = bptt.bptt_gradients(net, x, target, mask)
    result = eprop.eprop_gradients(net, x, target, mask, feedback="symmetric")
    assert result.loss == pytest.approx(loss_bptt)
    assert g_bptt["w_in"].abs().sum() > 0, "spikes and pseudo-derivatives must be non-trivial"
    _assert_same(result.grads, g_bptt)


@pytest.mark.parametrize("neuron", ["lif", "alif"])
def test_eprop_equals_bptt_when_recurrent_spike_gradient_is_stopped(neuron):
    net, x, target, mask = _setup(neuron=neuron, recurrent=True, detach_recurrent=True)
    g_bptt, _ = bptt.bptt_gradients(net, x, target, mask)
    _assert_same(eprop.eprop_gradients(net, x, target, mask).grads, g_bptt)


def test_eprop_approximates_bptt_in_recurrent_network():
    net, x, target, mask = _setup(neuron="alif", recurrent=True)
    cos = eprop.alignment_with_bptt(net, x, target, mask)
    assert cos["w_out"] == pytest.approx(1.0) and cos["b_out"] == pytest.approx(1.0)  # readout: exact
    assert 0.0 < cos["hidden"] < 1.0 - 1e-6                                          # hidden: approximate
    g_bptt, _ = bptt.bptt_gradients(net, x, target, mask)
    assert not torch.allclose(eprop.eprop_gradients(net, x, target, mask).grads["w_rec"], g_bptt["w_rec"])


def test_eprop_traces_match_reference_loop():
    """Eligibility traces of one synapse computed by a plain scalar loop of Bellec et al.'s equations."""
    net, x, target, mask = _setup(neuron="alif", recurrent=False, T=12)
    p = net.params
    res = eprop.eprop_gradients(net, x, target, mask, record=True)
    out = net(x)
    b, j, i = 1, 2, 3
    psi = [surrogate_derivative(net.spike_fn, (out.h[t, b, j] - out.threshold[t, b, j]) / p.v_threshold).item()
           / p.v_threshold for t in range(12)]
    eps_v, eps_a, ebar, psi_prev = 0.0, 0.0, 0.0, 0.0
    for t in range(12):
        eps_a = psi_prev * eps_v + (p.rho - p.beta * psi_prev) * eps_a
        eps_v = p.alpha * eps_v + x[t, b, i].item()
        e = psi[t] * (eps_v - p.beta * eps_a)
        ebar = p.kappa * ebar + e
        psi_prev = psi[t]
        assert res.record["psi"][t, b, j].item() == pytest.approx(psi[t], rel=1e-12)
        assert res.record["e_in"][t, b, j, i].item() == pytest.approx(e, rel=1e-9, abs=1e-12)
        assert res.record["ebar_in"][t, b, j, i].item() == pytest.approx(ebar, rel=1e-12, abs=1e-15)


def test_eprop_random_feedback_changes_only_hidden_gradients():
    net, x, target, mask = _setup(recurrent=True)
    sym = eprop.eprop_gradients(net, x, target, mask).grads
    same = eprop.eprop_gradients(net, x, target, mask, feedback="random",
                                 feedback_weights=net.w_out.detach().clone()).grads
    for name in sym:
        torch.testing.assert_close(same[name], sym[name])
    fb = eprop.random_feedback(net, generator=torch.Generator().manual_seed(5))
    assert fb.shape == net.w_out.shape
    assert fb.std().item() == pytest.approx(1 / math.sqrt(7), rel=0.5)
    rnd = eprop.eprop_gradients(net, x, target, mask, feedback="random", feedback_weights=fb).grads
    torch.testing.assert_close(rnd["w_out"], sym["w_out"])
    assert not torch.allclose(rnd["w_in"], sym["w_in"])
    zero = eprop.eprop_gradients(net, x, target, mask, feedback="random",
                                 feedback_weights=torch.zeros_like(fb)).grads
    assert zero["w_in"].abs().max() == 0 and zero["w_rec"].abs().max() == 0
    with pytest.raises(ValueError, match="feedback_weights"):
        eprop.eprop_gradients(net, x, target, mask, feedback="random")


def test_eprop_online_updates_change_weights_within_the_sequence():
    net, x, target, mask = _setup(recurrent=True)
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    offline = eprop.eprop_gradients(net, x, target, mask).grads
    # one update at the very end of the sequence = the offline gradient, applied once
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    res = eprop.eprop_gradients(net, x, target, mask, update_every=x.shape[0], optimizer=opt)
    for n, p in net.named_parameters():
        torch.testing.assert_close(res.grads[n], offline[n])
        torch.testing.assert_close(p.detach(), start[n] - 0.1 * offline[n])
        p.data.copy_(start[n])
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    eprop.eprop_gradients(net, x, target, mask, update_every=1, optimizer=opt)
    assert not torch.allclose(net.w_in.detach(), start["w_in"] - 0.1 * offline["w_in"])
    with pytest.raises(ValueError, match="optimizer"):
        eprop.eprop_gradients(net, x, target, mask, update_every=1)


def test_eprop_requires_detached_reset():
    net, x, target, mask = _setup(detach_reset=False)
    with pytest.raises(ValueError, match="detach_reset"):
        eprop.eprop_gradients(net, x, target, mask)


def test_eprop_step_without_adaptation_needs_no_eps_a_and_with_it_raises():
    st = eprop.init_eligibility(2, 3, 4, adaptive=False, like=torch.zeros(1))
    assert st.eps_a is None
    pre, psi, sig = torch.ones(2, 4), torch.ones(2, 3), torch.ones(2, 3)
    grad, st = eprop.eprop_step(pre, psi, sig, st, alpha=0.5, rho=0.9, beta=0.0, kappa=0.0)
    assert torch.equal(grad, torch.full((3, 4), 2.0))          # sum over the batch of 1 * 1 * 1
    with pytest.raises(ValueError, match="eps_a"):
        eprop.eprop_step(pre, psi, sig, st, alpha=0.5, rho=0.9, beta=0.1, kappa=0.0)


def test_cosine_similarity_definition():
    a = {"u": torch.tensor([1.0, 0.0]), "v": torch.tensor([0.0, 2.0])}
    b = {"u": torch.tensor([1.0, 1.0]), "v": torch.tensor([0.0, -2.0])}
    cos = eprop.cosine_similarity(a, b)
    assert cos["u"] == pytest.approx(1 / math.sqrt(2))
    assert cos["v"] == pytest.approx(-1.0)
    assert cos["all"] == pytest.approx((1 - 4) / (math.sqrt(5) * math.sqrt(6)))


def test_train_eprop_reduces_loss():
    g = torch.Generator().manual_seed(0)
    task = R.delayed_recall_task(48, cue_steps=3, delay_steps=3, recall_steps=3, generator=g)
    net = RecurrentSNN(RSNNParams(n_in=task.n_in, n_hidden=12, n_out=2), generator=g, in_gain=2.0)
    before = R.evaluate(net, task)["loss"]
    hist = eprop.train(net, task, task, feedback="random", epochs=6, batch_size=16, lr=0.02,
                       generator=g, progress=False)
    assert hist["val_loss"][-1] < before


def test_random_feedback_is_drawn_on_the_cpu_and_placed_with_the_network(assert_same):
    net = RecurrentSNN(RSNNParams(n_in=3, n_hidden=5, n_out=2), generator=torch.Generator().manual_seed(0),
                       device="cpu")
    b = eprop.random_feedback(net, generator=torch.Generator().manual_seed(4))
    expected = torch.randn(2, 5, generator=torch.Generator().manual_seed(4)) / math.sqrt(5)
    assert_same(b, expected)
