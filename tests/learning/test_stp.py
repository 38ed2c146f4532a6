"""Tsodyks-Markram short-term plasticity against its closed forms and a hand-written event loop."""
import math

import pytest
import torch

from snnlab.learning.stp import (
    DEPRESSING,
    FACILITATING,
    TMParams,
    TMState,
    TsodyksMarkramSynapse,
    simulate_tm,
    tm_init,
    tm_steady_state,
    tm_step,
)


def periodic(rate_hz, n_steps, dt=1.0):
    s = torch.zeros(n_steps, 1, dtype=torch.float64)
    period = int(round(1000.0 / rate_hz / dt))
    s[::period] = 1.0
    return s


@pytest.mark.parametrize("params", [DEPRESSING, FACILITATING, TMParams(U=0.3, tau_d_ms=150.0, tau_f_ms=400.0)])
def test_tm_step_periodic_steady_state_equals_closed_form(params):
    # three periodic trains side by side (5, 20, 50 Hz) with dt = 5 ms, which divides every period;
    # 24 s of input, so u and x have forgotten the initial state to machine precision
    dt, rates = 5.0, (5.0, 20.0, 50.0)
    s = torch.cat([periodic(r, 4800, dt=dt) for r in rates], dim=1)
    out = simulate_tm(s, params=params, dt=dt)
    for col, rate_hz in enumerate(rates):
        last = torch.nonzero(s[:, col]).flatten()[-1]
        u_star, x_star, r_star = tm_steady_state(rate_hz, params=params)
        assert out["r"][last, col].item() == pytest.approx(r_star, rel=1e-9)
        assert out["x"][last, col].item() == pytest.approx(x_star, rel=1e-9)
        # u recorded before the step is u-; the increment gives u* = u- + U (1 - u-)
        u_minus = out["u"][last, col].item()
        u_plus = u_minus + params.U * (1 - u_minus) if params.tau_f_ms > 0 else params.U
        assert u_plus == pytest.approx(u_star, rel=1e-9)


def test_tm_step_matches_event_driven_reference_loop():
    # reference: the textbook event-driven update between irregular spike times, in plain Python
    params = TMParams(U=0.2, tau_d_ms=120.0, tau_f_ms=300.0)
    times = [3, 10, 12, 40, 41, 42, 90, 200, 205]
    s = torch.zeros(250, 1, dtype=torch.float64)
    s[times] = 1.0
    out = simulate_tm(s, params=params, dt=1.0)
    x, u, last_t, expected = 1.0, 0.0, None, []
    for t in times:
        if last_t is not None:
            gap = t - last_t
            x = 1 - (1 - x) * math.exp(-gap / params.tau_d_ms)
            u = u * math.exp(-gap / params.tau_f_ms)
        u = u + params.U * (1 - u)
        r = u * x
        x = x - r
        expected.append(r)
        last_t = t
    got = out["r"][times, 0].tolist()
    assert got == pytest.approx(expected, rel=1e-12)
    assert out["r"][[t for t in range(250) if t not in times], 0].abs().max() == 0


def test_tm_first_spike_releases_U_and_depression_only_keeps_u_constant():
    r, state = tm_step(torch.ones(3), tm_init((3,), params=DEPRESSING), params=DEPRESSING, dt=1.0)
    assert torch.allclose(r, torch.full((3,), DEPRESSING.U))
    assert torch.allclose(state.u, torch.full((3,), DEPRESSING.U))
    r, _ = tm_step(torch.ones(2), tm_init((2,), params=FACILITATING), params=FACILITATING, dt=1.0)
    assert torch.allclose(r, torch.full((2,), FACILITATING.U))


def test_tm_steady_state_depression_falls_like_one_over_rate():
    # Tsodyks & Markram 1997: at high rates the steady amplitude r* ~ 1 / (rate * tau_d)
    p = TMParams(U=0.5, tau_d_ms=800.0, tau_f_ms=0.0)
    r40 = tm_steady_state(40.0, params=p)[2]
    r80 = tm_steady_state(80.0, params=p)[2]
    assert r40 / r80 == pytest.approx(2.0, rel=0.05)


def test_tsodyks_markram_synapse_module_matches_pure_function():
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(4, 6, generator=gen)
    syn = TsodyksMarkramSynapse(w, params=FACILITATING, dt=1.0)
    syn.reset(batch_size=2)
    state = tm_init((2, 6), params=FACILITATING)
    for _ in range(30):
        pre = (torch.rand(2, 6, generator=gen) < 0.3).float()
        current = syn(pre)
        r, state = tm_step(pre, state, params=FACILITATING, dt=1.0)
        assert torch.allclose(current, r @ w.T)
    assert torch.allclose(syn.x, state.x) and torch.allclose(syn.u, state.u)


def test_tm_bad_parameters_raise_naming_the_field():
    with pytest.raises(ValueError, match="U"):
        TMParams(U=1.5)
    with pytest.raises(ValueError, match="tau_d_ms"):
        TMParams(tau_d_ms=0.0)
    with pytest.raises(ValueError, match="tau_f_ms"):
        TMParams(tau_f_ms=-1.0)
    with pytest.raises(ValueError, match="dt"):
        tm_step(torch.ones(1), TMState(torch.ones(1), torch.zeros(1)), params=DEPRESSING, dt=0.0)
    with pytest.raises(RuntimeError, match="reset"):
        TsodyksMarkramSynapse(torch.ones(2, 2))(torch.ones(1, 2))
