"""Tests for snnlab.neurons, the neuron's home: the ATan surrogate (its formula, under vmap, against
spikingjelly), the LIF/ALIF step and the leaky readout (hand-computed steps and closed forms, against
spikingjelly's LIFNode), notebook 00's LIFNode simulation, and Mozafari's one-shot IF neuron."""
import math

import pytest
import torch
from spikingjelly.activation_based import neuron, surrogate
from torch.func import grad, vmap

import snnlab  # noqa: F401  (quiets the Triton logger)
from snnlab import neurons
from snnlab.neurons import (
    ATan,
    LIFParams,
    alif_step,
    atan_prime,
    atan_spike,
    first_crossing,
    first_crossing_monotone,
    leaky_integrator_step,
    lif_decay,
    lif_step,
    make_surrogate,
    one_shot_if,
    one_shot_if_init,
    one_shot_if_step,
    spikes_from_times,
    surrogate_derivative,
    value_at,
)

F64 = torch.float64


def atan_formula(x, alpha):
    """g'(x) = (alpha/2) / (1 + (pi/2 alpha x)^2), written out independently of the code."""
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


# --------------------------------------------------------------------------- the ATan surrogate
@pytest.mark.parametrize("alpha", [2.0, 3.5])
def test_atan_spike_is_heaviside_forward_and_its_gradient_is_the_formula(alpha):
    x = torch.tensor([-2.0, -0.3, -1e-9, 0.0, 1e-9, 0.4, 3.0], dtype=F64, requires_grad=True)
    z = atan_spike(x, alpha)
    assert z.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]       # H(0) = 1
    upstream = torch.linspace(-1.0, 2.0, 7, dtype=F64)
    (g,) = torch.autograd.grad((z * upstream).sum(), x)
    torch.testing.assert_close(g, upstream * atan_formula(x.detach(), alpha), rtol=1e-14, atol=0.0)


def test_atan_spike_gradient_under_vmap_matches_formula_and_per_sample_autograd():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=gen, dtype=F64)
    w = torch.randn(6, 5, generator=gen, dtype=F64)
    per_sample = vmap(grad(lambda xi, wi: (atan_spike(xi, 3.0) * wi).sum()))(x, w)
    torch.testing.assert_close(per_sample, w * atan_formula(x, 3.0), rtol=1e-14, atol=0.0)
    for n in range(6):                                              # bit for bit the plain backward
        xn = x[n].clone().requires_grad_(True)
        (g,) = torch.autograd.grad((atan_spike(xn, 3.0) * w[n]).sum(), xn)
        assert torch.equal(per_sample[n], g)
    module = ATan(alpha=3.0)                                        # the module form, as the models call it
    assert torch.equal(vmap(grad(lambda xi, wi: (module(xi) * wi).sum()))(x, w), per_sample)


def test_atan_is_spikingjelly_atan_bit_for_bit():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(200, generator=gen)
    upstream = torch.randn(200, generator=gen)
    ours, theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    z_ours, z_theirs = ATan(alpha=2.0)(ours), surrogate.ATan(alpha=2.0)(theirs)
    (g_ours,) = torch.autograd.grad((z_ours * upstream).sum(), ours)
    (g_theirs,) = torch.autograd.grad((z_theirs * upstream).sum(), theirs)
    assert torch.equal(z_ours, z_theirs) and torch.equal(g_ours, g_theirs)


def test_spikingjelly_atan_itself_refuses_vmap():
    """Why snnlab.neurons adds a vmap rule; if this starts failing, spikingjelly's own ATan vmaps."""
    with pytest.raises(RuntimeError, match="vmap"):
        vmap(grad(lambda xi: surrogate.ATan(alpha=2.0)(xi).sum()))(torch.randn(3, 2))


def test_atan_second_derivative_matches_formula():
    """MAML differentiates through the backward: d g'(x)/dx = -alpha c^2 x / (1 + c^2 x^2)^2, c = pi alpha / 2."""
    alpha = 2.0
    c = math.pi / 2 * alpha
    x = torch.linspace(-1.5, 1.5, 13, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(atan_spike(x, alpha).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    xd = x.detach()
    torch.testing.assert_close(gg, -alpha * c ** 2 * xd / (1 + c ** 2 * xd ** 2) ** 2)


def test_make_surrogate_derivatives_match_their_formulas():
    x = torch.linspace(-2, 2, 9, dtype=F64)
    a = 3.0
    torch.testing.assert_close(surrogate_derivative(make_surrogate("atan", a), x), atan_formula(x, a))
    s = torch.sigmoid(a * x)
    torch.testing.assert_close(surrogate_derivative(make_surrogate("sigmoid", a), x), a * s * (1 - s))
    assert isinstance(make_surrogate("atan", a), ATan)
    assert atan_prime(0.25, 3.0) == pytest.approx(atan_formula(0.25, 3.0), rel=1e-15)
    with pytest.raises(ValueError, match="surrogate"):
        make_surrogate("relu")
    with pytest.raises(ValueError, match="surrogate_alpha"):
        make_surrogate("atan", 0.0)


# --------------------------------------------------------------------------- the LIF/ALIF step
@pytest.mark.parametrize("reset, expected_v", [("subtract", [0.6, 0.1, 0.35, 0.675]),
                                               ("zero", [0.6, 0.0, 0.3, 0.0])])
def test_lif_step_hand_computed(reset, expected_v):
    """alpha 0.5, v_th 1, I = 0.6, 0.8, 0.3, 1.5: h = 0.6, 1.1 (spike), 0.35 (0.3 after a hard reset),
    1.675 (1.65) (spike)."""
    v = torch.zeros(1, dtype=F64)
    zs, vs = [], []
    for current in (0.6, 0.8, 0.3, 1.5):
        z, h, v = lif_step(torch.tensor([current], dtype=F64), v, alpha=0.5, v_threshold=1.0, reset=reset)
        zs.append(z.item())
        vs.append(v.item())
    assert zs == [0.0, 1.0, 0.0, 1.0]
    assert vs == pytest.approx(expected_v, abs=1e-15)


def test_lif_step_constant_current_fires_at_the_closed_form_time():
    """From rest h_t = I (1 - alpha^t) / (1 - alpha): first spike at t* = ceil(ln(1 - v_th (1 - alpha) / I) / ln alpha),
    then, with a hard reset, every t* steps."""
    alpha, current, v_th = lif_decay(20.0, 1.0), 0.08, 1.0
    assert alpha == math.exp(-1.0 / 20.0)
    t_star = math.ceil(math.log(1 - v_th * (1 - alpha) / current) / math.log(alpha))
    assert t_star == 19
    v = torch.zeros(3, dtype=F64)
    times = []
    for t in range(1, 101):
        z, h, v = lif_step(torch.full((3,), current, dtype=F64), v, alpha=alpha, v_threshold=v_th, reset="zero")
        if t < t_star:
            torch.testing.assert_close(h, torch.full((3,), current * (1 - alpha ** t) / (1 - alpha), dtype=F64))
        if z[0] == 1:
            times.append(t)
    assert times == [t_star * k for k in range(1, 100 // t_star + 1)]


@pytest.mark.parametrize("scale", [True, False])
def test_lif_step_surrogate_sees_scaled_or_plain_distance_to_threshold(scale):
    """h = 0.8 v + I = (0.46, 0.53, 0.70); dz/dI = g'((h - v_th)/v_th)/v_th (scaled) or g'(h - v_th)."""
    v_th = 0.5
    current = torch.tensor([0.3, 0.45, 0.7], dtype=F64, requires_grad=True)
    v0 = torch.tensor([0.2, 0.1, 0.0], dtype=F64)
    z, h, _ = lif_step(current, v0, alpha=0.8, v_threshold=v_th, reset="subtract", spike_fn=make_surrogate("atan", 2.0),
                       scale_by_threshold=scale)
    assert z.tolist() == [0.0, 1.0, 1.0]
    (dz,) = torch.autograd.grad(z.sum(), current)
    hd = h.detach()
    expected = atan_formula((hd - v_th) / v_th, 2.0) / v_th if scale else atan_formula(hd - v_th, 2.0)
    torch.testing.assert_close(dz, expected)


@pytest.mark.parametrize("detach_reset", [True, False])
def test_lif_step_reset_gradient_is_detached_or_not(detach_reset):
    """v = h - v_th z: dv/dI = 1 with the reset detached, 1 - v_th dz/dI otherwise."""
    current = torch.tensor([0.9, 1.2], dtype=F64, requires_grad=True)
    z, h, v = lif_step(current, torch.zeros(2, dtype=F64), alpha=0.9, v_threshold=1.0, reset="subtract",
                       spike_fn=atan_spike, detach_reset=detach_reset)
    (dv,) = torch.autograd.grad(v.sum(), current)
    psi = atan_formula(h.detach() - 1.0, 2.0)
    torch.testing.assert_close(dv, torch.ones(2, dtype=F64) if detach_reset else 1.0 - psi)


@pytest.mark.parametrize("v_reset, reset", [(None, "subtract"), (0.0, "zero")])
def test_lif_step_matches_spikingjelly_lifnode(v_reset, reset):
    """With alpha = 1 - 1/tau it is spikingjelly's LIFNode(decay_input=False): soft or hard reset, same
    spikes, potentials and surrogate gradients (spikingjelly feeds h - v_th to the surrogate)."""
    tau, v_th, steps = 5.0, 0.8, 12
    x = (torch.rand(steps, 2, 3, generator=torch.Generator().manual_seed(0), dtype=F64) * 0.7).requires_grad_(True)
    x_sj = x.detach().clone().requires_grad_(True)
    node = neuron.LIFNode(tau=tau, decay_input=False, v_threshold=v_th, v_reset=v_reset, detach_reset=True,
                          surrogate_function=surrogate.ATan(alpha=2.0))
    v = torch.zeros(2, 3, dtype=F64)
    ours, theirs = [], []
    for t in range(steps):
        z, _, v = lif_step(x[t], v, alpha=1 - 1 / tau, v_threshold=v_th, reset=reset, spike_fn=ATan(alpha=2.0),
                           scale_by_threshold=False)
        ours.append(z)
        theirs.append(node(x_sj[t]))
        torch.testing.assert_close(v, node.v)
    ours, theirs = torch.stack(ours), torch.stack(theirs)
    assert ours.sum() > 0, "the test input must make the neurons spike"
    assert torch.equal(ours, theirs)
    weights = torch.arange(ours.numel(), dtype=F64).reshape(ours.shape)
    (g1,) = torch.autograd.grad((ours * weights).sum(), x)
    (g2,) = torch.autograd.grad((theirs * weights).sum(), x_sj)
    torch.testing.assert_close(g1, g2)


def test_alif_step_threshold_follows_adaptation_equation():
    """A_t = v_th + beta a_t, a_t = rho a_{t-1} + z_{t-1}, soft reset by v_th: a scalar loop by hand."""
    alpha, rho, beta, v_th = 0.9, 0.8, 0.5, 1.0
    v, a, z = (torch.zeros(1, dtype=F64) for _ in range(3))
    v_ref, a_ref, z_ref, n_spikes = 0.0, 0.0, 0.0, 0
    for _ in range(20):
        a_ref = rho * a_ref + z_ref
        h_ref = alpha * v_ref + 0.7
        thr_ref = v_th + beta * a_ref
        z_ref = 1.0 if h_ref >= thr_ref else 0.0
        v_ref = h_ref - v_th * z_ref
        n_spikes += int(z_ref)
        z, h, thr, v, a = alif_step(torch.full((1,), 0.7, dtype=F64), v, a, z, alpha=alpha, rho=rho, beta=beta,
                                    v_threshold=v_th)
        assert (z.item(), h.item(), thr.item(), v.item(), a.item()) == pytest.approx(
            (z_ref, h_ref, thr_ref, v_ref, a_ref), abs=1e-12)
    assert n_spikes >= 2


def test_alif_step_with_beta_zero_is_the_lif_step():
    gen = torch.Generator().manual_seed(2)
    current, v, a = torch.rand(4, 5, generator=gen), torch.rand(4, 5, generator=gen), torch.rand(4, 5, generator=gen)
    z_prev = (torch.rand(4, 5, generator=gen) > 0.5).float()
    adaptive = alif_step(current, v, a, z_prev, alpha=0.9, rho=0.95, beta=0.0, v_threshold=0.8, spike_fn=atan_spike)
    plain = lif_step(current, v, alpha=0.9, v_threshold=0.8, reset="subtract", spike_fn=atan_spike)
    assert torch.equal(adaptive.z, plain.z) and torch.equal(adaptive.h, plain.h) and torch.equal(adaptive.v, plain.v)
    assert torch.equal(adaptive.a, 0.95 * a + z_prev)


def test_leaky_integrator_step_closed_form():
    """u_t = alpha u_{t-1} + I from 0: u_t = I (1 - alpha^t) / (1 - alpha)."""
    u = torch.zeros(2, dtype=F64)
    for t in range(1, 30):
        u = leaky_integrator_step(torch.tensor([1.0, -0.5], dtype=F64), u, alpha=0.7)
        torch.testing.assert_close(u, torch.tensor([1.0, -0.5], dtype=F64) * (1 - 0.7 ** t) / 0.3)


def test_lif_params_and_step_reject_bad_values_naming_them():
    assert LIFParams(tau_mem_ms=10.0).decay(2.0) == math.exp(-0.2)
    assert LIFParams().reset == "zero"
    with pytest.raises(ValueError, match="tau_mem_ms"):
        LIFParams(tau_mem_ms=0.0)
    with pytest.raises(ValueError, match="v_threshold"):
        LIFParams(v_threshold=-1.0)
    with pytest.raises(ValueError, match="reset"):
        LIFParams(reset="none")
    with pytest.raises(ValueError, match="reset"):
        lif_step(torch.zeros(1), torch.zeros(1), alpha=0.9, v_threshold=1.0, reset="hard")


# --------------------------------------------------------------------------- notebook 00: spikingjelly's LIFNode
def reference_lif(current, tau, v_th):
    """Straightforward loop over the LIF equations (decay_input, hard reset to 0)."""
    v, vs, spikes = 0.0, [], []
    for x in current:
        h = v + (x - v) / tau
        s = 1.0 if h >= v_th else 0.0
        v = 0.0 if s else h
        vs.append(v)
        spikes.append(s)
    return vs, spikes


@pytest.mark.parametrize("current,tau,v_th", [(1.5, 20.0, 1.0), (3.0, 5.0, 1.0), (1.2, 10.0, 0.5), (0.9, 20.0, 1.0)])
def test_simulate_lif_matches_reference_loop(current, tau, v_th):
    run = neurons.simulate_lif(torch.full((120,), current), tau_ms=tau, v_threshold=v_th)
    vs, spikes = reference_lif([current] * 120, tau, v_th)
    assert run.spikes[:, 0].tolist() == spikes
    assert torch.allclose(run.v[:, 0], torch.tensor(vs), atol=1e-5)


def test_first_spike_closed_form_by_hand():
    # tau 20, I 1.5, V_th 1: ln(1/3)/ln(0.95) = 21.42 -> step 22.
    assert neurons.first_spike_step(1.5, tau_ms=20.0, v_threshold=1.0) == 22
    assert math.isinf(neurons.first_spike_step(1.0, tau_ms=20.0, v_threshold=1.0))
    assert neurons.spike_count_closed_form(1.5, 200, tau_ms=20.0) == 9


def test_dt_rescales_tau():
    # tau 20 ms at dt 2 ms is tau 10 steps.
    assert neurons.first_spike_step(1.5, tau_ms=20.0, dt_ms=2.0) == neurons.first_spike_step(1.5, tau_ms=10.0, dt_ms=1.0)


def test_h_is_pre_reset_potential():
    run = neurons.simulate_lif(torch.full((30,), 1.5))
    spiking = run.spikes[:, 0].bool()
    assert (run.h[spiking, 0] >= 1.0).all() and (run.v[spiking, 0] == 0).all()
    assert torch.allclose(run.h[~spiking, 0], run.v[~spiking, 0])


@pytest.mark.parametrize("kwargs,name", [({"tau_ms": 1.0}, "tau_ms"), ({"dt_ms": -1.0}, "dt_ms"),
                                         ({"v_reset": 2.0}, "v_reset")])
def test_simulate_lif_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        neurons.simulate_lif(torch.ones(5), **kwargs)


def test_noisy_population_is_seeded():
    a = neurons.noisy_population(4, 10, mean=1.0, std=0.5, generator=torch.Generator().manual_seed(1))
    b = neurons.noisy_population(4, 10, mean=1.0, std=0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (10, 4)


# --------------------------------------------------------------------------- Mozafari's one-shot IF neuron
def test_one_shot_if_step_fires_once_and_never_resets():
    state = one_shot_if_init((1,))
    spikes, vs = [], []
    for current in (4.0, 4.0, 4.0, 4.0):
        s, state = one_shot_if_step(torch.tensor([current]), state, threshold=7.0)
        spikes.append(bool(s))
        vs.append(float(state.v))
    assert spikes == [False, True, False, False]    # 8 > 7 at step 1, then never again
    assert vs == [4.0, 8.0, 12.0, 16.0]              # no leak, no reset


def test_one_shot_if_step_needs_strictly_above_threshold():
    s, _ = one_shot_if_step(torch.tensor([7.0]), one_shot_if_init((1,)), threshold=7.0)
    assert not bool(s)


def test_one_shot_if_all_steps_equals_step_loop():
    gen = torch.Generator().manual_seed(0)
    currents = torch.rand(15, 50, generator=gen) * 3
    times, potentials = one_shot_if(currents, threshold=10.0)
    state = one_shot_if_init((50,))
    ref = torch.full((50,), 15)
    for t in range(15):
        s, state = one_shot_if_step(currents[t], state, threshold=10.0)
        ref = torch.where(s, torch.full_like(ref, t), ref)
    assert torch.equal(times, ref)
    assert torch.allclose(potentials[-1], state.v)


def test_first_crossing_hand_values_and_never():
    v = torch.tensor([[0.0, 5.0, 1.0], [2.0, 6.0, 1.0], [9.0, 7.0, 1.0]])   # [T=3, 3 neurons]
    assert first_crossing(v, 4.0).tolist() == [2, 0, 3]
    assert first_crossing_monotone(v, 4.0).tolist() == [2, 0, 3]


def test_first_crossing_general_handles_non_monotone():
    v = torch.tensor([[0.0], [9.0], [1.0]])   # crosses at 1 then drops: still 1
    assert first_crossing(v, 4.0).tolist() == [1]


def test_value_at_zero_for_silent_neurons():
    v = torch.tensor([[1.0, 5.0], [3.0, 6.0]])
    assert value_at(v, torch.tensor([1, 2])).tolist() == [3.0, 0.0]


def test_spikes_from_times_single_and_cumulative():
    times = torch.tensor([1, 3])
    assert spikes_from_times(times, 3).t().tolist() == [[0, 1, 0], [0, 0, 0]]
    assert spikes_from_times(times, 3, cumulative=True).t().tolist() == [[0, 1, 1], [0, 0, 0]]


def test_one_shot_if_rejects_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        one_shot_if(torch.zeros(3, 2), threshold=float("inf"))


# =========================================================================== device
@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_noisy_population_and_sweep_on_cpu_device_equal_the_default(device, assert_same):
    noisy = neurons.noisy_population(4, 30, mean=1.5, std=0.6, generator=torch.Generator().manual_seed(3))
    assert_same(neurons.noisy_population(4, 30, mean=1.5, std=0.6, generator=torch.Generator().manual_seed(3),
                                         device=device), noisy)
    grid = dict(currents=[0.8, 1.5, 3.0], taus_ms=[5.0, 20.0], thresholds=[0.5, 1.0], n_steps=40)
    assert_same(neurons.sweep(**grid, device=device), neurons.sweep(**grid))


# --------------------------------------------------------------------------- notebook 00: rates, staircase, refractoriness
def reference_refractory_counts(current, n_steps, tau, v_th, r):
    """Spike count of spikingjelly's LIF update with the input clamped to 0 for r steps after a spike."""
    v, countdown, count = 0.0, 0, 0
    for _ in range(n_steps):
        x = 0.0 if countdown > 0 else current
        countdown = max(countdown - 1, 0)
        h = v + (x - v) / tau
        if h >= v_th:
            count, v, countdown = count + 1, 0.0, r
        else:
            v = h
    return count


@pytest.mark.parametrize("current", [0.9, 1.2, 1.5, 3.0, 7.5, 15.0, 40.0])
@pytest.mark.parametrize("r", [0, 2, 5])
def test_spike_count_closed_form_with_refractoriness_matches_a_loop(current, r):
    expected = reference_refractory_counts(current, 300, 20.0, 1.0, r)
    assert neurons.spike_count_closed_form(current, 300, tau_ms=20.0, refractory_ms=float(r)) == expected


def test_firing_rate_closed_form_staircase_and_ceiling():
    # I = 1.5: t* = 22 steps -> 1000/22 Hz; with 2 ms refractory 1000/24 Hz; I >= 20 (= tau V_th): every step.
    assert neurons.firing_rate_closed_form(1.5) == pytest.approx(1000 / 22)
    assert neurons.firing_rate_closed_form(1.5, refractory_ms=2.0) == pytest.approx(1000 / 24)
    assert neurons.firing_rate_closed_form(20.0) == pytest.approx(1000.0)
    assert neurons.firing_rate_closed_form(500.0, refractory_ms=2.0) == pytest.approx(1000 / 3)
    assert neurons.firing_rate_closed_form(1.0) == 0.0
    smooth = neurons.firing_rate_closed_form(1.5, whole_steps=False)
    assert smooth == pytest.approx(1000 / (math.log(1 / 3) / math.log(0.95))) and smooth > 1000 / 22
    for k in (1, 2, 3, 6, 22):
        i_k = neurons.min_current_for_period(k)
        assert neurons.first_spike_step(i_k * (1 + 1e-9)) == k
        assert neurons.first_spike_step(i_k * (1 - 1e-6)) == k + 1
    assert neurons.min_current_for_period(1) == pytest.approx(20.0)


def test_refractory_steps_must_be_whole_steps():
    assert neurons.refractory_steps(4.0, 2.0) == 2
    with pytest.raises(ValueError, match="refractory_ms"):
        neurons.refractory_steps(1.5, 1.0)
    with pytest.raises(ValueError, match="refractory_ms"):
        neurons.refractory_steps(-1.0, 1.0)
