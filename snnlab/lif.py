"""A leaky integrate-and-fire neuron driven by a current: the welcome notebook's simulations.

spikingjelly's ``LIFNode`` (``decay_input=True``, hard reset) integrates, per step of ``dt`` ms,

    H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau,     tau = tau_ms / dt_ms   (steps)
    S[t] = Theta(H[t] - V_th),      V[t] = H[t] (1 - S[t]) + V_reset S[t]

For a constant input X = I > V_th and V_reset = 0 starting from rest, H[t] = I (1 - (1 - 1/tau)^t),
so the neuron first fires at step (1-based)

    t* = ceil( ln(1 - V_th / I) / ln(1 - 1/tau) )

and, after each reset, every t* steps: :func:`first_spike_step` (used by ``00_welcome.ipynb`` to
check the simulation). Reference: Gerstner et al., *Neuronal Dynamics* (2014), ch. 1.3; spikingjelly
``activation_based.neuron.LIFNode``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .utils import check_float, check_int, check_positive


class LIFRun(NamedTuple):
    """``v`` membrane potential after reset [T, N]; ``h`` before reset [T, N]; ``spikes`` [T, N] (0/1)."""

    v: torch.Tensor
    h: torch.Tensor
    spikes: torch.Tensor


def _tau_steps(tau_ms: float, dt_ms: float) -> float:
    tau_ms = check_positive("tau_ms", tau_ms)
    dt_ms = check_positive("dt_ms", dt_ms)
    if tau_ms / dt_ms <= 1.0:
        raise ValueError(f"tau_ms must exceed dt_ms (spikingjelly needs tau/dt > 1), got tau_ms={tau_ms}, dt_ms={dt_ms}")
    return tau_ms / dt_ms


def simulate_lif(current: torch.Tensor, *, tau_ms: float = 20.0, v_threshold: float = 1.0,
                 v_reset: float = 0.0, dt_ms: float = 1.0) -> LIFRun:
    """Drive spikingjelly LIF neurons with ``current`` [T] or [T, N] (dimensionless, in units of V).

    Returns an :class:`LIFRun`; ``h`` is recovered as ``v`` where no spike occurred and the
    pre-reset value where one did (spikingjelly stores only the post-reset potential).
    """
    from spikingjelly.activation_based import functional, neuron

    tau = _tau_steps(tau_ms, dt_ms)
    check_float("v_threshold", v_threshold)
    check_float("v_reset", v_reset)
    if v_reset >= v_threshold:
        raise ValueError(f"v_reset must be below v_threshold, got v_reset={v_reset}, v_threshold={v_threshold}")
    x = torch.as_tensor(current, dtype=torch.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"current must be [T] or [T, N], got shape {tuple(x.shape)}")
    node = neuron.LIFNode(tau=tau, v_threshold=v_threshold, v_reset=v_reset, step_mode="m", store_v_seq=True)
    with torch.no_grad():
        spikes = node(x)
        v = node.v_seq.clone()
    functional.reset_net(node)
    # Recompute the pre-reset potential H[t] from V[t-1] (the update equation above).
    v_prev = torch.cat([torch.full_like(v[:1], v_reset), v[:-1]])
    h = v_prev + (x - (v_prev - v_reset)) / tau
    return LIFRun(v=v, h=h, spikes=spikes)


def first_spike_step(current: float, *, tau_ms: float = 20.0, v_threshold: float = 1.0,
                     dt_ms: float = 1.0) -> float:
    """Closed-form step (1-based) of the first spike for a constant ``current`` from rest (V_reset = 0).

    ``math.inf`` when the current never reaches threshold (``current <= v_threshold``).
    """
    tau = _tau_steps(tau_ms, dt_ms)
    current = check_float("current", current)
    v_threshold = check_float("v_threshold", v_threshold, minimum=0.0, strict_minimum=True)
    if current <= v_threshold:
        return math.inf
    return math.ceil(math.log(1.0 - v_threshold / current) / math.log(1.0 - 1.0 / tau) - 1e-12)


def spike_count_closed_form(current: float, n_steps: int, **kwargs) -> int:
    """Spikes in ``n_steps`` steps of constant ``current``: ``floor(n_steps / t*)`` (reset to 0, no refractoriness)."""
    n_steps = check_int("n_steps", n_steps, minimum=1)
    t_star = first_spike_step(current, **kwargs)
    return 0 if math.isinf(t_star) else n_steps // int(t_star)


def noisy_population(n_neurons: int, n_steps: int, *, mean: float, std: float,
                     generator: torch.Generator) -> torch.Tensor:
    """Gaussian input currents [n_steps, n_neurons] with per-neuron offsets, from an explicit generator."""
    n_neurons = check_int("n_neurons", n_neurons, minimum=1)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    std = check_float("std", std, minimum=0.0)
    offsets = torch.linspace(-0.5, 0.5, n_neurons) * std * 2
    return mean + offsets + std * torch.randn(n_steps, n_neurons, generator=generator)


def sweep(currents, taus_ms, thresholds, *, n_steps: int, dt_ms: float = 1.0) -> dict:
    """Simulate every (tau, threshold) pair for all ``currents`` at once (batch over currents).

    Returns ``{"v": [n_tau, n_th, n_I, T], "spikes": same, "currents", "taus_ms", "thresholds"}``:
    computed once so that widgets only index into it.
    """
    currents = torch.as_tensor(currents, dtype=torch.float32)
    v = torch.empty(len(taus_ms), len(thresholds), len(currents), n_steps)
    s = torch.empty_like(v)
    for i, tau in enumerate(taus_ms):
        for j, th in enumerate(thresholds):
            run = simulate_lif(currents.expand(n_steps, -1), tau_ms=tau, v_threshold=th, dt_ms=dt_ms)
            v[i, j], s[i, j] = run.v.T, run.spikes.T
    return {"v": v, "spikes": s, "currents": list(map(float, currents)), "taus_ms": list(taus_ms),
            "thresholds": list(thresholds)}
