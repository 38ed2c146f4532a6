"""Neuron pieces spikingjelly does not have: the non-leaky, never-reset, one-shot IF neuron.

Mozafari et al. 2019 (Pattern Recognition 94:87, doi:10.1016/j.patcog.2019.05.015, section 2.2)
use integrate-and-fire neurons without leak and without reset that may fire at most once per
image. With the input given as cumulative spike waves ``S[t]`` (a unit stays 1 once it has fired)
and non-negative weights, the potential is

.. math:: V_i[t] = \\sum_j w_{ij} S_j[t], \\qquad t_i = \\min\\{t : V_i[t] > \\theta\\}

so ``V`` never decreases and the whole time course of a layer can be computed at once (one
convolution over all T steps, or a cumulative sum of input increments) instead of step by step.
:func:`one_shot_if_step` is the step-by-step form (the reference), :func:`one_shot_if` the
all-steps-at-once form; the tests check that they agree. Used by ``snnlab.models.mozafari`` and
``notebooks/02_mozafari_rstdp.ipynb``.

Times are integer steps (the paper's network has no physical time unit; one step = one spike
wave), ``T`` meaning "never".
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from .utils import check_float, check_int


class OneShotIFState(NamedTuple):
    """State of :func:`one_shot_if_step`: potential ``v`` and whether the neuron has fired."""

    v: torch.Tensor
    fired: torch.Tensor


def one_shot_if_init(shape, *, dtype=torch.float32, device=None) -> OneShotIFState:
    """Rest state: ``v = 0``, not fired."""
    return OneShotIFState(torch.zeros(shape, dtype=dtype, device=device),
                          torch.zeros(shape, dtype=torch.bool, device=device))


def one_shot_if_step(current: torch.Tensor, state: OneShotIFState, *, threshold: float):
    """One step of the non-leaky one-shot IF neuron.

    .. math:: v[t] = v[t-1] + I[t];\\quad s[t] = 1[v[t] > \\theta]\\,(1 - f[t-1]);\\quad
              f[t] = f[t-1] \\lor s[t]

    No leak, no reset: ``v`` keeps integrating after a spike, but the neuron never fires again.

    Args:
        current: I[t], the input of this step (any shape).
        state: :class:`OneShotIFState` from the previous step.
        threshold: theta (potential units).
    Returns:
        ``(spike, new_state)`` with ``spike`` a bool tensor shaped like ``current``.
    """
    v = state.v + current
    spike = (v > threshold) & ~state.fired
    return spike, OneShotIFState(v, state.fired | spike)


def first_crossing(potentials: torch.Tensor, threshold: float) -> torch.Tensor:
    """First step at which ``V[t] > threshold``, ``T`` where it never happens.

    Counted as the number of leading steps still below threshold,
    ``t_s = sum_t 1[max_{t' <= t} V[t'] <= theta]`` (a cumulative sum over time: much faster than
    an arg-max over the time axis, and exact for any V, monotone or not).

    Args:
        potentials: ``[T, ...]`` potentials V.
        threshold: theta.
    Returns:
        int64 times shaped like ``potentials[0]``.
    """
    if potentials.shape[0] > 255:
        raise ValueError(f"at most 255 time steps are supported, got {potentials.shape[0]}")
    # uint8 arithmetic: summing bools over the time axis as int64 is ~8x slower on CPU
    above = (potentials > threshold).to(torch.uint8)
    below_so_far = (torch.cumsum(above, dim=0, dtype=torch.uint8) == 0).to(torch.uint8)
    return below_so_far.sum(dim=0, dtype=torch.uint8).to(torch.int64)


def first_crossing_monotone(potentials: torch.Tensor, threshold: float) -> torch.Tensor:
    """:func:`first_crossing` for non-decreasing V (non-negative weights, cumulative input):
    ``t_s = T - sum_t 1[V[t] > theta]``. One comparison and one sum; wrong if V ever decreases."""
    if potentials.shape[0] > 255:
        raise ValueError(f"at most 255 time steps are supported, got {potentials.shape[0]}")
    above = (potentials > threshold).to(torch.uint8).sum(dim=0, dtype=torch.uint8)
    return potentials.shape[0] - above.to(torch.int64)


def value_at(potentials: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """``V[t_i]`` for each unit (0 where ``t_i = T``, i.e. the unit never fired)."""
    n_steps = potentials.shape[0]
    idx = times.clamp(max=n_steps - 1).unsqueeze(0)
    values = potentials.gather(0, idx).squeeze(0)
    return torch.where(times < n_steps, values, torch.zeros_like(values))


def one_shot_if(currents: torch.Tensor, *, threshold: float):
    """All T steps of the non-leaky one-shot IF neuron at once.

    .. math:: V[t] = \\sum_{t' \\le t} I[t'],\\qquad t_s = \\min\\{t: V[t] > \\theta\\}

    Args:
        currents: ``[T, ...]`` inputs I per step.
        threshold: theta.
    Returns:
        ``(times, potentials)``: int64 first-spike times (``T`` = never) shaped like
        ``currents[0]``, and the potentials ``[T, ...]``.
    """
    threshold = check_float("threshold", threshold)
    potentials = torch.cumsum(currents, dim=0)
    return first_crossing(potentials, threshold), potentials


def spikes_from_times(times: torch.Tensor, n_steps: int, *, cumulative: bool = False) -> torch.Tensor:
    """0/1 spike trains ``[T, ...]`` from first-spike times: one spike at ``t`` (or, with
    ``cumulative``, the paper's spike waves: 1 from ``t`` on)."""
    n_steps = check_int("n_steps", n_steps, minimum=1)
    steps = torch.arange(n_steps, device=times.device).reshape(-1, *([1] * times.ndim))
    hit = (times.unsqueeze(0) <= steps) if cumulative else (times.unsqueeze(0) == steps)
    return hit.to(torch.float32)
