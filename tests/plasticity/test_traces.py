"""Spike traces against closed forms: sums of decaying exponentials (all-to-all), last spike only (nearest)."""
import math

import pytest
import torch

from snnlab.plasticity.traces import decay_factor, trace_run, trace_step


def _train(times, n_steps):
    s = torch.zeros(n_steps, dtype=torch.float64)
    for t in times:
        s[t] = 1.0
    return s


def test_decay_factor_is_exact_exponential():
    assert decay_factor(20.0, 1.0) == pytest.approx(math.exp(-1 / 20), rel=1e-15)
    assert decay_factor(20.0, 0.5) ** 2 == pytest.approx(decay_factor(20.0, 1.0), rel=1e-14)


@pytest.mark.parametrize("name,kwargs", [("tau_ms", dict(tau_ms=0.0, dt=1.0)), ("dt", dict(tau_ms=5.0, dt=-1.0))])
def test_decay_factor_rejects_nonpositive(name, kwargs):
    with pytest.raises(ValueError, match=name):
        decay_factor(**kwargs)


def test_trace_run_all_to_all_is_sum_of_exponentials():
    times, amp, tau = (3, 10, 12, 40), 0.7, 8.0
    x = trace_run(_train(times, 60), amplitude=amp, tau_ms=tau, dt=1.0, mode="all-to-all")
    for t in range(60):
        expected = sum(amp * math.exp(-(t - tk) / tau) for tk in times if tk <= t)
        assert x[t].item() == pytest.approx(expected, abs=1e-12)


def test_trace_run_nearest_keeps_only_last_spike():
    times, amp, tau = (3, 10, 12, 40), -0.4, 8.0
    x = trace_run(_train(times, 60), amplitude=amp, tau_ms=tau, dt=1.0, mode="nearest")
    for t in range(60):
        last = [tk for tk in times if tk <= t]
        expected = amp * math.exp(-(t - last[-1]) / tau) if last else 0.0
        assert x[t].item() == pytest.approx(expected, abs=1e-12)


def test_trace_step_modes_agree_without_overlap_and_differ_by_residue_with_it():
    x_prev = torch.tensor([0.0, 0.3], dtype=torch.float64)
    s = torch.tensor([1.0, 1.0], dtype=torch.float64)
    a = trace_step(x_prev, s, amplitude=1.0, tau_ms=10.0, dt=1.0, mode="all-to-all")
    n = trace_step(x_prev, s, amplitude=1.0, tau_ms=10.0, dt=1.0, mode="nearest")
    assert a[0].item() == n[0].item() == 1.0  # empty trace: both modes give A
    assert (a[1] - n[1]).item() == pytest.approx(0.3 * math.exp(-0.1), abs=1e-15)  # the decayed residue


def test_trace_run_independent_of_dt_at_spike_times():
    # Exact decay: the same spikes (in ms) sampled with dt = 1 and dt = 0.25 give the same trace values.
    coarse = trace_run(_train((2, 9), 20), amplitude=1.0, tau_ms=5.0, dt=1.0)
    fine = trace_run(_train((8, 36), 80), amplitude=1.0, tau_ms=5.0, dt=0.25)
    torch.testing.assert_close(fine[::4], coarse, rtol=1e-12, atol=1e-12)


def test_trace_step_rejects_bad_mode_and_shape():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="mode"):
        trace_step(x, x, amplitude=1.0, tau_ms=5.0, dt=1.0, mode="pairwise")
    with pytest.raises(ValueError, match="shape"):
        trace_step(x, torch.zeros(4), amplitude=1.0, tau_ms=5.0, dt=1.0)
