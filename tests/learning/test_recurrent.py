"""Tests for snnlab.learning.recurrent: the LIF/ALIF step, the surrogate, the loss and the tasks."""
import math

import pytest
import torch
from spikingjelly.activation_based import neuron, surrogate

import snnlab  # noqa: F401  (quiets the Triton logger)
from snnlab.data import Split
from snnlab.learning import recurrent as R


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


def test_surrogate_derivative_matches_atan_formula():
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)
    a = 3.0
    expected = (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)
    got = R.surrogate_derivative(R.make_surrogate("atan", a), x)
    torch.testing.assert_close(got, expected)
    s = torch.sigmoid(a * x)
    torch.testing.assert_close(R.surrogate_derivative(R.make_surrogate("sigmoid", a), x), a * s * (1 - s))


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
    spike_fn = R.make_surrogate("atan", 2.0)
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


def test_sequence_loss_and_output_error_match_reference_and_autograd():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(5, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 3, 1])
    mask = torch.tensor([0.0, 0.0, 1.0, 0.5, 1.0])
    loss = R.sequence_loss(y, target, mask)
    ref = 0.0
    for t in range(5):
        for b in range(3):
            ref += mask[t].item() * -torch.log_softmax(y[t, b], -1)[target[b]].item()
    assert loss.item() == pytest.approx(ref / (2.5 * 3))
    (grad,) = torch.autograd.grad(loss, y)
    for t in range(5):
        torch.testing.assert_close(grad[t], R.output_error(y[t].detach(), target, float(mask[t]), 7.5))


def test_predict_sums_masked_readout():
    y = torch.zeros(3, 1, 2)
    y[0, 0, 0] = 10.0          # unmasked step must not count
    y[2, 0, 1] = 1.0
    assert R.predict(y, torch.tensor([0.0, 1.0, 1.0])).item() == 1


def test_digits_sequence_task_presents_rows_in_order():
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    split = Split(images, torch.arange(4))
    task = R.digits_sequence_task(split, steps_per_row=2, readout_steps=3)
    assert task.x.shape == (16, 4, 8)
    for t in range(16):
        torch.testing.assert_close(task.x[t], images[:, 0, t // 2])
    assert task.mask.tolist() == [0.0] * 13 + [1.0] * 3
    spikes = R.digits_sequence_task(split, encoding="spikes", generator=torch.Generator().manual_seed(0))
    assert set(spikes.x.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="encoding"):
        R.digits_sequence_task(split, encoding="latency")


def test_delayed_recall_task_layout():
    task = R.delayed_recall_task(6, n_classes=3, cue_steps=2, delay_steps=4, recall_steps=3,
                                 channels_per_class=2, rate=1.0, noise_rate=0.0,
                                 generator=torch.Generator().manual_seed(0))
    assert task.x.shape == (9, 6, 8)
    for n in range(6):
        c = int(task.y[n])
        expected_cue = torch.zeros(8)
        expected_cue[2 * c:2 * c + 2] = 1.0
        assert torch.equal(task.x[0, n], expected_cue) and torch.equal(task.x[1, n], expected_cue)
        assert task.x[2:6, n].sum() == 0                       # silent delay
        assert torch.equal(task.x[6:, n, 6:], torch.ones(3, 2))  # recall channels
    assert task.mask.tolist() == [0.0] * 6 + [1.0] * 3
    with pytest.raises(ValueError, match="n_classes"):
        R.delayed_recall_task(4, n_classes=1)


def test_forward_is_seeded_and_checks_input_shape():
    p = _params()
    a = R.RecurrentSNN(p, generator=torch.Generator().manual_seed(3))
    b = R.RecurrentSNN(p, generator=torch.Generator().manual_seed(3))
    x = torch.rand(5, 2, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a(x).y, b(x).y)
    with pytest.raises(ValueError, match="x must be"):
        a(torch.rand(5, 3))
