"""Tests for snnlab.models.recurrent: parameters, the network step against spikingjelly, ALIF, wiring."""
import math

import pytest
import torch
from spikingjelly.activation_based import neuron, surrogate

import snnlab  # noqa: F401  (quiets the Triton logger)
from snnlab.models import recurrent as R
from snnlab.neurons import make_surrogate


def _params(**kw):
    base = dict(n_in=3, n_hidden=4, n_out=2)
    base.update(kw)
    return R.RSNNParams(**base)


def test_rsnnparams_rejects_bad_values_naming_the_field():
    with pytest.raises(ValueError, match="tau_mem_ms"):
        _params(tau_mem_ms=0.0)
    with pytest.raises(ValueError, match="neuron"):
        _params(neuron="izhikevich")
    with pytest.raises(ValueError, match="surrogate"):
        _params(surrogate="relu")
    with pytest.raises(ValueError, match="detach_reset"):
        _params(detach_reset=1)
    with pytest.raises(ValueError, match="n_hidden"):
        _params(n_hidden=0)


def test_rsnnparams_decays_are_exponentials_of_dt_over_tau():
    p = _params(tau_mem_ms=20.0, tau_adapt_ms=200.0, tau_out_ms=10.0, dt_ms=2.0, neuron="alif", beta_adapt=0.3)
    assert p.alpha == pytest.approx(math.exp(-0.1))
    assert p.rho == pytest.approx(math.exp(-0.01))
    assert p.kappa == pytest.approx(math.exp(-0.2))
    assert p.beta == 0.3
    assert _params(beta_adapt=0.3).beta == 0.0          # LIF ignores beta by definition
    assert _params(tau_out_ms=0.0).kappa == 0.0


def test_rsnn_step_matches_spikingjelly_lifnode():
    """A feed-forward LIF layer with W_in = I is spikingjelly's soft-reset LIFNode(decay_input=False)."""
    n, steps = 3, 12
    tau = 5.0                                  # spikingjelly decay 1 - 1/tau = alpha
    p = R.RSNNParams(n_in=n, n_hidden=n, n_out=1, recurrent=False, tau_mem_ms=-1.0 / math.log(1 - 1 / tau),
                     detach_reset=True, tau_out_ms=0.0)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, 2, n, generator=g, dtype=torch.float64) * 0.9).requires_grad_(True)
    x_sj = x.detach().clone().requires_grad_(True)
    eye = torch.eye(n, dtype=torch.float64)
    w_out = torch.zeros(1, n, dtype=torch.float64)
    b_out = torch.zeros(1, dtype=torch.float64)
    spike_fn = make_surrogate("atan", 2.0)
    state = R.RSNNState(*(torch.zeros(2, n, dtype=torch.float64) for _ in range(3)), torch.zeros(2, 1, dtype=torch.float64))
    node = neuron.LIFNode(tau=tau, decay_input=False, v_reset=None, detach_reset=True,
                          surrogate_function=surrogate.ATan(alpha=2.0))
    ours, theirs = [], []
    for t in range(steps):
        rec, state = R.rsnn_step(x[t], state, eye, None, w_out, b_out, params=p, spike_fn=spike_fn)
        ours.append(rec.z)
        theirs.append(node(x_sj[t]))
        torch.testing.assert_close(state.v, node.v)
    ours, theirs = torch.stack(ours), torch.stack(theirs)
    assert ours.sum() > 0, "the test input must make the neurons spike"
    torch.testing.assert_close(ours, theirs)
    weights = torch.arange(steps * 2 * n, dtype=torch.float64).reshape(steps, 2, n)
    (g1,) = torch.autograd.grad((ours * weights).sum(), x)
    (g2,) = torch.autograd.grad((theirs * weights).sum(), x_sj)
    torch.testing.assert_close(g1, g2)


def test_alif_threshold_follows_adaptation_equation():
    """A_t = v_th + beta a_t with a_t = rho a_{t-1} + z_{t-1}, checked against a scalar loop."""
    p = R.RSNNParams(n_in=1, n_hidden=1, n_out=1, neuron="alif", beta_adapt=0.5, tau_adapt_ms=10.0,
                     recurrent=False, tau_mem_ms=10.0)
    net = R.RecurrentSNN(p, dtype=torch.float64)
    with torch.no_grad():
        net.w_in.fill_(1.0)
    x = torch.full((15, 1, 1), 0.7, dtype=torch.float64)
    out = net(x)
    a, v, z_prev = 0.0, 0.0, 0.0
    for t in range(15):
        a = p.rho * a + z_prev
        h = p.alpha * v + 0.7
        thr = 1.0 + 0.5 * a
        z = 1.0 if h - thr >= 0 else 0.0
        assert out.threshold[t, 0, 0].item() == pytest.approx(thr)
        assert out.z[t, 0, 0].item() == z
        v, z_prev = h - z, z
    assert out.z.sum() >= 2


def test_recurrent_weights_have_no_autapses():
    net = R.RecurrentSNN(_params(), generator=torch.Generator().manual_seed(0))
    assert torch.all(torch.diagonal(net.masked_w_rec()) == 0)
    assert R.RecurrentSNN(_params(recurrent=False)).masked_w_rec() is None


def test_forward_is_seeded_and_checks_input_shape():
    p = _params()
    a = R.RecurrentSNN(p, generator=torch.Generator().manual_seed(3))
    b = R.RecurrentSNN(p, generator=torch.Generator().manual_seed(3))
    x = torch.rand(5, 2, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a(x).y, b(x).y)
    with pytest.raises(ValueError, match="x must be"):
        a(torch.rand(5, 3))


def test_recurrent_snn_on_cpu_device_equals_the_default(assert_same):
    p = _params(neuron="alif")
    assert_same(R.RecurrentSNN(p, generator=torch.Generator().manual_seed(0), device="cpu"),
                R.RecurrentSNN(p, generator=torch.Generator().manual_seed(0)))
    torch.manual_seed(5)
    default = R.RecurrentSNN(p, dtype=torch.float64)   # the global CPU generator, as before
    torch.manual_seed(5)
    assert_same(R.RecurrentSNN(p, dtype=torch.float64, device=torch.device("cpu")), default)
