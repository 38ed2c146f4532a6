"""Spike traces with exact exponential decay (all-to-all and nearest-spike pairing).

A spike trace is the low-pass filtered spike train a synapse "remembers". Between spikes it decays
exactly, ``x(t) = x(t - dt) exp(-dt / tau)`` (the closed-form solution of ``dx/dt = -x / tau`` over one
step, not an Euler step), so the result does not depend on the step size between spikes. On a spike:

* ``"all-to-all"``: ``x(t) = x(t - dt) exp(-dt / tau) + A s(t)``; every earlier spike keeps
  contributing, so every pre/post pair interacts (Florian 2007, eqs. for P+ and P-).
* ``"nearest"``: ``x(t) = A`` when ``s(t) = 1``, else ``x(t - dt) exp(-dt / tau)``; a spike resets the
  trace, so only the most recent spike of the train counts (nearest-spike pairing, e.g. Morrison,
  Diesmann & Gerstner 2008, Biol. Cybern. 98:459, doi:10.1007/s00422-008-0233-1).

The two modes agree exactly as long as no spike arrives while an earlier spike's trace is still
non-zero; they differ by ``A exp(-(t - t_prev) / tau)``-sized residues when spikes of one train overlap
in a trace window.

Used by :mod:`snnlab.plasticity.florian` and notebook ``01_florian_stdp``.
"""
from __future__ import annotations

import math

import torch

from ..utils import check_choice, check_float, check_positive

TRACE_MODES = ("all-to-all", "nearest")


def decay_factor(tau_ms: float, dt: float) -> float:
    """Exact one-step decay ``exp(-dt / tau)`` of a trace with time constant ``tau_ms`` (ms).

    Args:
        tau_ms: time constant tau (ms), > 0.
        dt: time step (ms), > 0.
    """
    tau_ms = check_positive("tau_ms", tau_ms)
    dt = check_positive("dt", dt)
    return math.exp(-dt / tau_ms)


def trace_step(
    trace: torch.Tensor,
    spikes: torch.Tensor,
    *,
    amplitude: float,
    tau_ms: float,
    dt: float,
    mode: str = "all-to-all",
) -> torch.Tensor:
    """Advance a spike trace by one step of ``dt`` ms and add (or set) the amplitude on a spike.

    .. math::

        \\text{all-to-all:}\\quad x(t) = x(t-\\Delta t)\\,e^{-\\Delta t/\\tau} + A\\,s(t)

        \\text{nearest:}\\quad x(t) = x(t-\\Delta t)\\,e^{-\\Delta t/\\tau}\\,(1 - s(t)) + A\\,s(t)

    Reference: Florian 2007, Neural Computation 19:1468, doi:10.1162/neco.2007.19.6.1468 (P+ and P-).

    Args:
        trace: x(t - dt), any shape (e.g. ``[B, n]``).
        spikes: s(t) in {0, 1}, same shape as ``trace``.
        amplitude: A, the jump (all-to-all) or the reset value (nearest); any sign.
        tau_ms: tau (ms), > 0.
        dt: time step (ms), > 0.
        mode: ``"all-to-all"`` or ``"nearest"``.

    Returns:
        x(t), same shape as ``trace``. Used in notebook ``01_florian_stdp``.
    """
    check_choice("mode", mode, TRACE_MODES)
    amplitude = check_float("amplitude", amplitude)
    if trace.shape != spikes.shape:
        raise ValueError(f"spikes must have the trace's shape {tuple(trace.shape)}, got {tuple(spikes.shape)}")
    decayed = trace * decay_factor(tau_ms, dt)
    if mode == "all-to-all":
        return decayed + amplitude * spikes
    # nearest: a spike replaces the trace. Written as a blend rather than torch.where so that graded
    # (0..1) spikes from surrogate models interpolate instead of being thresholded here.
    return decayed * (1.0 - spikes) + amplitude * spikes


def trace_run(
    spikes: torch.Tensor,
    *,
    amplitude: float,
    tau_ms: float,
    dt: float,
    mode: str = "all-to-all",
    initial: torch.Tensor | None = None,
) -> torch.Tensor:
    """Traces for a whole spike train ``[T, ...]``: ``out[t]`` is x after the spikes of step ``t``.

    Args:
        spikes: s, shape ``[T, ...]`` (time first), values in {0, 1}.
        amplitude, tau_ms, dt, mode: as in :func:`trace_step`.
        initial: x before step 0 (zeros when ``None``), shape ``spikes.shape[1:]``.

    Returns:
        ``[T, ...]`` traces, same dtype as ``spikes``.
    """
    if spikes.ndim < 1 or spikes.shape[0] < 1:
        raise ValueError(f"spikes must be [T, ...] with T >= 1, got shape {tuple(spikes.shape)}")
    x = torch.zeros_like(spikes[0]) if initial is None else initial
    out = torch.empty_like(spikes)
    for t in range(spikes.shape[0]):
        x = trace_step(x, spikes[t], amplitude=amplitude, tau_ms=tau_ms, dt=dt, mode=mode)
        out[t] = x
    return out
