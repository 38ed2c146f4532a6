"""Homeostatic synaptic scaling: the rate estimate, the update against its formula, convergence."""
import math

import pytest
import torch

from snnlab.encoding import poisson_spikes
from snnlab.learning.homeostasis import (
    ScalingParams,
    ScalingState,
    SynapticScaling,
    rate_trace_step,
    scaling_init,
    simulate_scaling,
    synaptic_scaling_step,
)


def test_rate_trace_step_is_unbiased_for_a_regular_train():
    # a spike every 50 ms (20 Hz): the time average of the estimate over a period equals 20 Hz
    rate, dt, tau = torch.zeros(1, dtype=torch.float64), 1.0, 200.0
    values = []
    for k in range(5000):
        s = torch.tensor([1.0 if k % 50 == 0 else 0.0], dtype=torch.float64)
        rate = rate_trace_step(s, rate, tau_rate_ms=tau, dt=dt)
        values.append(float(rate))
    assert sum(values[-1000:]) / 1000 == pytest.approx(20.0, rel=1e-6)


def test_synaptic_scaling_step_matches_formula():
    params = ScalingParams(target_rate_hz=5.0, tau_rate_ms=100.0, tau_scale_ms=1000.0)
    w = torch.tensor([[0.2, 0.4, 0.0], [1.0, 0.5, 0.25]])
    state = ScalingState(torch.tensor([[4.0, 8.0], [6.0, 2.0]]))
    post = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    dw, new = synaptic_scaling_step(post, state, w, params=params, dt=1.0)
    a = math.exp(-1.0 / 100.0)
    rate = state.rate_hz * a + (1 - a) * post * 1000.0
    assert torch.allclose(new.rate_hz, rate)
    err = (5.0 - rate.mean(0)) / 5.0
    expected = (1.0 / 1000.0) * err[:, None] * w
    assert torch.allclose(dw, expected)
    # multiplicative: relative weights within a row are kept
    w2 = w + dw
    assert torch.allclose(w2[1] / w2[1, 0], w[1] / w[1, 0])


def test_synaptic_scaling_converges_to_target_in_linear_rate_model():
    # rate_i = g_i sum_j w_ij (a deterministic "neuron"): the fixed point is exactly the target
    params = ScalingParams(target_rate_hz=8.0, tau_rate_ms=10.0, tau_scale_ms=200.0)
    gen = torch.Generator().manual_seed(1)
    w = torch.rand(5, 7, generator=gen)
    gain = torch.tensor([1.0, 3.0, 10.0, 30.0, 0.5])
    state = ScalingState((gain * w.sum(1))[None])
    for _ in range(20000):
        rate = gain * w.sum(1)
        # feed the rate itself as the "instantaneous rate": post * 1000/dt = rate
        dw, state = synaptic_scaling_step((rate / 1000.0)[None], state, w, params=params, dt=1.0)
        w = w + dw
    assert torch.allclose(gain * w.sum(1), torch.full((5,), 8.0), rtol=1e-4)


@pytest.mark.slow
def test_synaptic_scaling_converges_to_target_rate_in_lif_network():
    # spiking neurons that start between ~0 and ~90 Hz settle at the 10 Hz target
    params = ScalingParams(target_rate_hz=10.0, tau_rate_ms=500.0, tau_scale_ms=4000.0)
    out = simulate_scaling(n_in=100, n_out=8, duration_ms=30000.0, params=params, seed=0, progress=False)
    early = out["rate_hz"][3]
    assert early.min() < 5.0 and early.max() > 30.0
    late = out["rate_hz"][-40:].mean(0)     # the last 10 s
    assert late.mean().item() == pytest.approx(10.0, rel=0.1)
    assert (late - 10.0).abs().max().item() < 3.0
    # without scaling the rates stay spread
    free = simulate_scaling(n_in=100, n_out=8, duration_ms=3000.0, params=params, scaling=False, seed=0,
                            progress=False)
    assert free["rate_hz"][-1].max() > 30.0


def test_synaptic_scaling_module_matches_pure_function():
    params = ScalingParams()
    mod = SynapticScaling(3, params=params, dt=1.0)
    mod.reset(batch_size=2)
    state = scaling_init(2, 3, params=params)
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(3, 4, generator=gen)
    for _ in range(20):
        post = poisson_spikes(torch.full((2, 3), 50.0), dt_ms=1.0, generator=gen)
        dw_mod = mod.step(post, w)
        dw, state = synaptic_scaling_step(post, state, w, params=params, dt=1.0)
        assert torch.allclose(dw_mod, dw)
        w = w + dw


def test_scaling_bad_parameters_raise_naming_the_field():
    with pytest.raises(ValueError, match="target_rate_hz"):
        ScalingParams(target_rate_hz=0.0)
    with pytest.raises(ValueError, match="tau_scale_ms"):
        ScalingParams(tau_scale_ms=-1.0)
    with pytest.raises(ValueError, match="post must be"):
        synaptic_scaling_step(torch.zeros(3), scaling_init(1, 3, params=ScalingParams()), torch.ones(3, 2),
                              params=ScalingParams(), dt=1.0)


def test_simulate_scaling_on_cpu_device_equals_the_default(assert_same):
    kw = dict(n_in=20, n_out=4, duration_ms=1200.0, seed=1, progress=False)
    assert_same(simulate_scaling(device="cpu", **kw), simulate_scaling(**kw))
