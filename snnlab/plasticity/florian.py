"""STDP, MSTDP and MSTDPET (Florian 2007) as exact, vectorised rules over weight tensors.

Reference: R. V. Florian (2007), "Reinforcement learning through modulation of spike-timing-dependent
synaptic plasticity", Neural Computation 19(6):1468-1502, doi:10.1162/neco.2007.19.6.1468.

Notation (weights ``w[i, j]``: post-synaptic neuron ``i`` (out), pre-synaptic neuron ``j`` (in)):

.. math::

    P^+_j(t) &= P^+_j(t-\\Delta t)\\,e^{-\\Delta t/\\tau_+} + A_+\\,s^{pre}_j(t)
        \\quad(\\text{all-to-all; "nearest" sets } P^+_j = A_+ \\text{ on a spike})\\\\
    P^-_i(t) &= P^-_i(t-\\Delta t)\\,e^{-\\Delta t/\\tau_-} + A_-\\,s^{post}_i(t), \\quad A_- < 0\\\\
    \\zeta_{ij}(t) &= P^+_j(t)\\,s^{post}_i(t) + P^-_i(t)\\,s^{pre}_j(t)
        \\qquad(\\text{point eligibility})\\\\
    \\text{STDP:}\\quad \\Delta w_{ij} &= \\gamma\\,\\zeta_{ij}\\\\
    \\text{MSTDP:}\\quad \\Delta w_{ij} &= \\gamma\\,r\\,\\zeta_{ij}\\\\
    \\text{MSTDPET:}\\quad z_{ij}(t) &= z_{ij}(t-\\Delta t)\\,e^{-\\Delta t/\\tau_z} + \\zeta_{ij}/\\tau_z,
        \\qquad \\Delta w_{ij} = \\gamma\\,\\Delta t\\,r\\,z_{ij}(t)

**Orderings.** Public implementations pair the reward with the point eligibility in two ways, and both
are implemented here (``FlorianParams.ordering``). At step ``t`` (``t = 1, 2, ...``; state index 0 is the
initial state, all traces and eligibilities zero):

* ``"same-step"``: traces first, then the weight. ``P(t)`` is computed from the spikes of step ``t``,
  then ``zeta(t)`` from ``P(t)`` and ``s(t)``, and the weight change of step ``t`` uses
  ``r(t) * zeta(t)`` (MSTDPET: ``z(t) = z(t-1) e^{-dt/tau_z} + zeta(t)/tau_z`` and ``r(t) z(t)``).
  A pre spike at 10 and a post spike at 15 change ``w`` at step 15.
* ``"delayed"``: weight first, then traces. The weight change of step ``t`` uses ``r(t) * zeta(t-1)``,
  the point eligibility left by the previous step (MSTDPET:
  ``z(t) = z(t-1) e^{-dt/tau_z} + zeta(t-1)/tau_z`` and ``r(t) z(t)``); only then are ``P(t)`` and
  ``zeta(t)`` computed from the spikes of step ``t`` and kept for step ``t+1``. The same pairing
  changes ``w`` at step 16. This is the form ``w(t+dt) = w(t) + gamma r(t+dt) zeta(t)`` used by
  BindsNET's ``MSTDP``/``MSTDPET`` and spikingjelly 2.0.0's ``MSTDPLearner``/``MSTDPETLearner``
  ("reward[t] acts on eligibility[t-1]").

In both orderings the traces ``P(t)`` after step ``t`` are identical; STDP's weight in the delayed
ordering is the same-step weight one step later, ``w_del(t) = w_same(t-1)``; and for every ``t``
``Delta w_MSTDP(t) = r(t) Delta w_STDP(t)``. They differ where the reward changes: which point
eligibility meets which reward.

**Batches.** Spikes are ``[B, n]``; the B samples share one weight matrix. The change returned is the
sum over the batch (``batch_reduction="sum"``) or the mean (``"mean"``) of the per-sample changes, so a
batch gives exactly the sum (mean) of what each sample alone would give for the same ``w``. The reward
is a scalar (shared) or ``[B]`` (one per sample). MSTDPET with a shared reward keeps one batch-summed
eligibility ``[out, in]`` (exact, since z is linear in zeta); a per-sample reward needs
``per_sample_eligibility=True`` (``z`` of shape ``[B, out, in]``).

Used by notebook ``01_florian_stdp``.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..utils import check_choice, check_float, check_int, check_positive
from .traces import TRACE_MODES, decay_factor, trace_step

ORDERINGS = ("same-step", "delayed")
RULES = ("stdp", "mstdp", "mstdpet")
BATCH_REDUCTIONS = ("sum", "mean")

# The worked example of DESIGN.md section 4 (the "seed figure"): spike times in ms (= steps, dt = 1 ms).
SEED_PRE_SPIKES_MS = (10, 85, 115, 135)
SEED_POST_SPIKES_MS = (15, 75, 110, 140)
SEED_REWARD_SWITCH_MS = 100  # r = +1 for t <= 100, -1 after
SEED_N_STEPS = 200
SEED_W0 = 0.2


# ============================================================================ parameters and state
@dataclass(frozen=True)
class FlorianParams:
    """Parameters of STDP / MSTDP / MSTDPET (Florian 2007; tau+ = tau- = 20 ms, tau_z = 25 ms, A = +-1).

    Attributes:
        a_plus: A+, potentiation amplitude added to (or set into) the pre trace P+ on a pre spike, >= 0.
        a_minus: A-, depression amplitude of the post trace P-, <= 0 (the sign lives in A-).
        tau_plus_ms: tau+, decay of P+ (ms), > 0.
        tau_minus_ms: tau-, decay of P- (ms), > 0.
        tau_z_ms: tau_z, decay of MSTDPET's eligibility trace z (ms), > 0.
        gamma: learning rate gamma (STDP/MSTDP: weight per unit zeta; MSTDPET: weight per ms per unit z).
        ordering: ``"same-step"`` (r(t) with zeta(t)) or ``"delayed"`` (r(t) with zeta(t-1)).
        trace_mode: ``"all-to-all"`` (add A on a spike) or ``"nearest"`` (set the trace to A).
        w_min, w_max: optional hard bounds; the returned change keeps ``w + dw`` inside them.
        batch_reduction: ``"sum"`` or ``"mean"`` of the per-sample changes over the batch.
    """

    a_plus: float = 1.0
    a_minus: float = -1.0
    tau_plus_ms: float = 20.0
    tau_minus_ms: float = 20.0
    tau_z_ms: float = 25.0
    gamma: float = 0.2
    ordering: str = "same-step"
    trace_mode: str = "all-to-all"
    w_min: float | None = None
    w_max: float | None = None
    batch_reduction: str = "sum"

    def __post_init__(self):
        check_float("a_plus", self.a_plus, minimum=0.0)
        check_float("a_minus", self.a_minus, maximum=0.0)
        check_positive("tau_plus_ms", self.tau_plus_ms)
        check_positive("tau_minus_ms", self.tau_minus_ms)
        check_positive("tau_z_ms", self.tau_z_ms)
        check_float("gamma", self.gamma)
        check_choice("ordering", self.ordering, ORDERINGS)
        check_choice("trace_mode", self.trace_mode, TRACE_MODES)
        check_choice("batch_reduction", self.batch_reduction, BATCH_REDUCTIONS)
        if self.w_min is not None:
            check_float("w_min", self.w_min)
        if self.w_max is not None:
            check_float("w_max", self.w_max)
        if self.w_min is not None and self.w_max is not None and self.w_min > self.w_max:
            raise ValueError(f"w_min must be <= w_max, got w_min={self.w_min}, w_max={self.w_max}")


class FlorianState(NamedTuple):
    """What a synapse population remembers between steps (all zeros at the start).

    Attributes:
        x_pre: P+ after the last step, ``[B, n_pre]`` (>= 0).
        x_post: P- after the last step, ``[B, n_post]`` (<= 0).
        last_pre: pre spikes of the last step, ``[B, n_pre]`` (the delayed ordering reads zeta(t-1)
            from ``x_*`` and ``last_*``).
        last_post: post spikes of the last step, ``[B, n_post]``.
        z: MSTDPET's eligibility trace: ``[n_post, n_pre]`` (summed over the batch, shared reward) or
            ``[B, n_post, n_pre]`` (per-sample reward); ``None`` for STDP and MSTDP.
    """

    x_pre: torch.Tensor
    x_post: torch.Tensor
    last_pre: torch.Tensor
    last_post: torch.Tensor
    z: torch.Tensor | None


def init_state(
    batch_size: int,
    n_pre: int,
    n_post: int,
    *,
    rule: str = "mstdpet",
    per_sample_eligibility: bool = False,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> FlorianState:
    """All-zero :class:`FlorianState` for ``batch_size`` samples of an ``[n_post, n_pre]`` synapse matrix."""
    batch_size = check_int("batch_size", batch_size, minimum=1)
    n_pre = check_int("n_pre", n_pre, minimum=1)
    n_post = check_int("n_post", n_post, minimum=1)
    check_choice("rule", rule, RULES)
    kw = dict(dtype=dtype, device=device)
    z = None
    if rule == "mstdpet":
        shape = (batch_size, n_post, n_pre) if per_sample_eligibility else (n_post, n_pre)
        z = torch.zeros(shape, **kw)
    return FlorianState(
        torch.zeros(batch_size, n_pre, **kw),
        torch.zeros(batch_size, n_post, **kw),
        torch.zeros(batch_size, n_pre, **kw),
        torch.zeros(batch_size, n_post, **kw),
        z,
    )


# ============================================================================ pure functions
def point_eligibility(
    pre: torch.Tensor,
    post: torch.Tensor,
    x_pre: torch.Tensor,
    x_post: torch.Tensor,
    *,
    sample_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Point eligibility summed over the batch: ``sum_b c_b (s^post_b ⊗ P+_b + P-_b ⊗ s^pre_b)``.

    .. math:: \\zeta_{ij} = \\sum_b c_b\\,[P^+_{bj}\\,s^{post}_{bi} + P^-_{bi}\\,s^{pre}_{bj}]

    Florian 2007 (the point eligibility zeta of modulated STDP). One matrix product over the batch, never a
    per-synapse loop.

    Args:
        pre: s^pre, ``[B, n_pre]``.  post: s^post, ``[B, n_post]``.
        x_pre: P+, ``[B, n_pre]``.  x_post: P-, ``[B, n_post]``.
        sample_weights: c_b, ``[B]`` (e.g. per-sample rewards); ones when ``None``.

    Returns:
        ``[n_post, n_pre]``.
    """
    if sample_weights is not None:
        post = post * sample_weights[:, None]
        x_post = x_post * sample_weights[:, None]
    # [post | P-]^T @ [P+ | pre] stacked over the batch axis: one GEMM with K = 2B.
    left = torch.cat((post, x_post), dim=0)
    right = torch.cat((x_pre, pre), dim=0)
    return left.transpose(0, 1) @ right


def point_eligibility_per_sample(pre, post, x_pre, x_post) -> torch.Tensor:
    """Per-sample point eligibility ``[B, n_post, n_pre]`` (see :func:`point_eligibility`)."""
    return torch.einsum("bi,bj->bij", post, x_pre) + torch.einsum("bi,bj->bij", x_post, pre)


def _check_inputs(pre, post, state: FlorianState, w: torch.Tensor) -> None:
    if pre.ndim != 2 or post.ndim != 2:
        raise ValueError(
            f"pre and post must be [B, n] spikes, got shapes {tuple(pre.shape)} and {tuple(post.shape)}"
        )
    if w.ndim != 2 or w.shape != (post.shape[1], pre.shape[1]):
        raise ValueError(
            f"w must be [n_post, n_pre] = {(post.shape[1], pre.shape[1])}, got {tuple(w.shape)}"
        )
    if pre.shape[0] != post.shape[0]:
        raise ValueError(f"pre and post batch sizes differ: {pre.shape[0]} vs {post.shape[0]}")
    if state.x_pre.shape != pre.shape or state.x_post.shape != post.shape:
        raise ValueError(
            f"state was made for pre {tuple(state.x_pre.shape)} / post {tuple(state.x_post.shape)}, got "
            f"spikes {tuple(pre.shape)} / {tuple(post.shape)}; call init_state for this batch size"
        )


def _advance_traces(pre, post, state: FlorianState, params: FlorianParams, dt: float):
    """New traces P(t), and the (pre, post, P+, P-) that form the zeta this step's update uses."""
    x_pre = trace_step(state.x_pre, pre, amplitude=params.a_plus, tau_ms=params.tau_plus_ms, dt=dt,
                       mode=params.trace_mode)
    x_post = trace_step(state.x_post, post, amplitude=params.a_minus, tau_ms=params.tau_minus_ms, dt=dt,
                        mode=params.trace_mode)
    if params.ordering == "same-step":
        used = (pre, post, x_pre, x_post)  # zeta(t)
    else:
        used = (state.last_pre, state.last_post, state.x_pre, state.x_post)  # zeta(t-1)
    return used, (x_pre, x_post)


def _reward_tensor(reward, batch_size: int, like: torch.Tensor) -> torch.Tensor:
    if reward is None:
        raise ValueError("reward is required for MSTDP and MSTDPET (a scalar or a [B] tensor)")
    r = torch.as_tensor(reward, dtype=like.dtype, device=like.device)
    if r.ndim == 0 or r.shape == (batch_size,):
        return r
    raise ValueError(f"reward must be a scalar or shaped [B] = [{batch_size}], got shape {tuple(r.shape)}")


def _finish(dw: torch.Tensor, w: torch.Tensor, params: FlorianParams, batch_size: int) -> torch.Tensor:
    if params.batch_reduction == "mean":
        dw = dw / batch_size
    if params.w_min is not None or params.w_max is not None:
        # Hard bounds: return the change that lands w + dw on the clipped value.
        dw = (w + dw).clamp(min=params.w_min, max=params.w_max) - w
    return dw


def stdp_step(pre, post, state: FlorianState, w, *, params: FlorianParams, dt: float = 1.0):
    """One step of STDP (Florian 2007, the unmodulated rule): ``Delta w = gamma * zeta``.

    .. math:: \\Delta w_{ij}(t) = \\gamma\\,\\zeta_{ij}(t)\\ \\text{(same-step) or } \\gamma\\,\\zeta_{ij}(t-1)\\ \\text{(delayed)}

    Args:
        pre: s^pre(t), ``[B, n_pre]``, 0/1.  post: s^post(t), ``[B, n_post]``, 0/1.
        state: :class:`FlorianState` after step t-1.
        w: weights before the step, ``[n_post, n_pre]`` (read only for the bounds).
        params: :class:`FlorianParams`.  dt: step (ms).

    Returns:
        ``(dw, new_state)``; ``dw`` is ``[n_post, n_pre]`` and is not applied here.
    """
    _check_inputs(pre, post, state, w)
    dt = check_positive("dt", dt)
    (s_pre, s_post, p_plus, p_minus), (x_pre, x_post) = _advance_traces(pre, post, state, params, dt)
    dw = params.gamma * point_eligibility(s_pre, s_post, p_plus, p_minus)
    new_state = FlorianState(x_pre, x_post, pre, post, state.z)
    return _finish(dw, w, params, pre.shape[0]), new_state


def mstdp_step(pre, post, state: FlorianState, w, *, reward, params: FlorianParams, dt: float = 1.0):
    """One step of modulated STDP (MSTDP, Florian 2007): ``Delta w = gamma * r * zeta``.

    .. math:: \\Delta w_{ij}(t) = \\gamma\\,r(t)\\,\\zeta_{ij}(t)\\ \\text{(same-step) or }
        \\gamma\\,r(t)\\,\\zeta_{ij}(t-1)\\ \\text{(delayed)}

    Args:
        pre, post, state, w, params, dt: as in :func:`stdp_step`.
        reward: r(t), a scalar (shared) or ``[B]`` (per sample), dimensionless.

    Returns:
        ``(dw, new_state)``.
    """
    _check_inputs(pre, post, state, w)
    dt = check_positive("dt", dt)
    r = _reward_tensor(reward, pre.shape[0], w)
    (s_pre, s_post, p_plus, p_minus), (x_pre, x_post) = _advance_traces(pre, post, state, params, dt)
    if r.ndim == 0:
        dw = (params.gamma * r) * point_eligibility(s_pre, s_post, p_plus, p_minus)
    else:
        dw = params.gamma * point_eligibility(s_pre, s_post, p_plus, p_minus, sample_weights=r)
    new_state = FlorianState(x_pre, x_post, pre, post, state.z)
    return _finish(dw, w, params, pre.shape[0]), new_state


def mstdpet_step(pre, post, state: FlorianState, w, *, reward, params: FlorianParams, dt: float = 1.0):
    """One step of MSTDP with an eligibility trace (MSTDPET, Florian 2007).

    .. math::

        z_{ij}(t) = z_{ij}(t-\\Delta t)\\,e^{-\\Delta t/\\tau_z} + \\zeta_{ij}/\\tau_z, \\qquad
        \\Delta w_{ij}(t) = \\gamma\\,\\Delta t\\,r(t)\\,z_{ij}(t)

    with ``zeta = zeta(t)`` (same-step) or ``zeta(t-1)`` (delayed). With a shared (scalar) reward ``z``
    is the batch sum ``[n_post, n_pre]``; with ``state.z`` of shape ``[B, n_post, n_pre]``
    (``init_state(..., per_sample_eligibility=True)``) each sample keeps its own ``z`` and the reward
    may be ``[B]``.

    Args:
        pre, post, state, w, params, dt: as in :func:`stdp_step`.
        reward: r(t), scalar or ``[B]`` (the latter needs a per-sample ``z``).

    Returns:
        ``(dw, new_state)``.
    """
    _check_inputs(pre, post, state, w)
    dt = check_positive("dt", dt)
    if state.z is None:
        raise ValueError("state.z is None: make the state with init_state(..., rule='mstdpet')")
    batch = pre.shape[0]
    r = _reward_tensor(reward, batch, w)
    (s_pre, s_post, p_plus, p_minus), (x_pre, x_post) = _advance_traces(pre, post, state, params, dt)
    decay = decay_factor(params.tau_z_ms, dt)
    if state.z.ndim == 2:
        if r.ndim != 0:
            raise ValueError(
                "reward: a per-sample [B] reward needs a per-sample eligibility; make the state with "
                "init_state(..., per_sample_eligibility=True)"
            )
        if state.z.shape != w.shape:
            raise ValueError(f"state.z must be {tuple(w.shape)}, got {tuple(state.z.shape)}")
        # z <- decay * z + zeta / tau_z, fused into one GEMM call.
        left = torch.cat((s_post, p_minus), dim=0)
        right = torch.cat((p_plus, s_pre), dim=0)
        z = torch.addmm(state.z, left.transpose(0, 1), right, beta=decay, alpha=1.0 / params.tau_z_ms)
        dw = (params.gamma * dt * r) * z
    else:
        if state.z.shape != (batch, *w.shape):
            raise ValueError(f"state.z must be {(batch, *w.shape)}, got {tuple(state.z.shape)}")
        zeta = point_eligibility_per_sample(s_pre, s_post, p_plus, p_minus)
        z = state.z * decay + zeta / params.tau_z_ms
        rb = r.expand(batch) if r.ndim == 0 else r
        dw = (params.gamma * dt) * torch.einsum("b,bij->ij", rb, z)
    new_state = FlorianState(x_pre, x_post, pre, post, z)
    return _finish(dw, w, params, batch), new_state


_STEP = {"stdp": stdp_step, "mstdp": mstdp_step, "mstdpet": mstdpet_step}


def rule_step(rule: str, pre, post, state, w, *, reward=None, params: FlorianParams, dt: float = 1.0):
    """Dispatch to :func:`stdp_step`, :func:`mstdp_step` or :func:`mstdpet_step` by name."""
    check_choice("rule", rule, RULES)
    if rule == "stdp":
        if reward is not None:
            raise ValueError("reward must be None for rule='stdp' (STDP is not modulated)")
        return stdp_step(pre, post, state, w, params=params, dt=dt)
    return _STEP[rule](pre, post, state, w, reward=reward, params=params, dt=dt)


class FlorianRun(NamedTuple):
    """Result of :func:`simulate`. Histories have ``T + 1`` entries (index 0 = the initial state)."""

    w: torch.Tensor  # [T+1, n_post, n_pre] (or [1, ...] = final only when record=False)
    x_pre: torch.Tensor  # [T+1, B, n_pre]
    x_post: torch.Tensor  # [T+1, B, n_post]
    z: torch.Tensor | None  # [T+1, *z.shape] for MSTDPET
    state: FlorianState  # final state


@torch.no_grad()
def simulate(
    rule: str,
    pre: torch.Tensor,
    post: torch.Tensor,
    w0: torch.Tensor,
    *,
    reward=None,
    params: FlorianParams,
    dt: float = 1.0,
    per_sample_eligibility: bool = False,
    record: bool = True,
    progress: bool = False,
) -> FlorianRun:
    """Run a rule over given spike trains ``[T, B, n]`` and apply each step's change to the weights.

    Row ``t + 1`` of every history is the state after step ``t + 1``; the spikes ``pre[k]`` belong to
    step ``k + 1`` (so a run of ``T`` steps gives ``T + 1`` rows, row 0 the initial state).

    Args:
        rule: ``"stdp"``, ``"mstdp"`` or ``"mstdpet"``.
        pre: ``[T, B, n_pre]``.  post: ``[T, B, n_post]``.  w0: ``[n_post, n_pre]``.
        reward: ``None`` (STDP), ``[T]`` (shared) or ``[T, B]`` (per sample).
        params, dt: see :class:`FlorianParams`.
        per_sample_eligibility: MSTDPET keeps ``z`` per sample (needed for a ``[T, B]`` reward).
        record: keep the full histories; ``False`` keeps only the final weights (rows ``[1, ...]``).
        progress: show a tqdm bar.
    """
    check_choice("rule", rule, RULES)
    if pre.ndim != 3 or post.ndim != 3 or pre.shape[:2] != post.shape[:2]:
        raise ValueError(
            f"pre and post must be [T, B, n] with equal T and B, got {tuple(pre.shape)}, {tuple(post.shape)}"
        )
    n_steps, batch = pre.shape[:2]
    if reward is not None:
        reward = torch.as_tensor(reward, dtype=w0.dtype, device=w0.device)
        if reward.shape not in ((n_steps,), (n_steps, batch)):
            raise ValueError(f"reward must be [T] or [T, B] = [{n_steps}, {batch}], got {tuple(reward.shape)}")
        if reward.ndim == 2 and rule == "mstdpet" and not per_sample_eligibility:
            raise ValueError("reward: a [T, B] reward with rule='mstdpet' needs per_sample_eligibility=True")
    state = init_state(batch, pre.shape[2], post.shape[2], rule=rule, per_sample_eligibility=per_sample_eligibility,
                       dtype=w0.dtype, device=w0.device)
    w = w0.clone()
    ws, xps, xms, zs = [w.clone()], [state.x_pre], [state.x_post], [state.z]
    for t in tqdm(range(n_steps), disable=not progress, desc=rule):
        r_t = None if reward is None else reward[t]
        dw, state = rule_step(rule, pre[t].to(w.dtype), post[t].to(w.dtype), state, w, reward=r_t,
                              params=params, dt=dt)
        w = w + dw
        if record:
            ws.append(w.clone())
            xps.append(state.x_pre)
            xms.append(state.x_post)
            zs.append(state.z)
    if not record:
        ws, xps, xms, zs = [w], [state.x_pre], [state.x_post], [state.z]
    z_hist = torch.stack(zs) if rule == "mstdpet" else None
    return FlorianRun(torch.stack(ws), torch.stack(xps), torch.stack(xms), z_hist, state)


# ============================================================================ the worked example
@contextlib.contextmanager
def _one_thread():
    """Run tiny tensor ops on one intra-op thread, then restore the caller's setting.

    For [1, 1] or [4, 40] tensors a thread pool only adds hand-offs, and on a shared machine a
    2-thread pool was measured to stall for whole scheduler slices (~40 ms per step instead of 0.05 ms).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _spike_train(times_ms: Sequence[float], n_steps: int, dt: float, name: str) -> np.ndarray:
    s = np.zeros(n_steps + 1)
    for t in times_ms:
        k = int(round(check_float(name, t, minimum=dt) / dt))
        if k > n_steps:
            raise ValueError(f"{name}: spike time {t} ms lies beyond the run ({n_steps} steps of {dt} ms)")
        s[k] = 1.0
    return s


def run_seed_example(
    ordering: str = "same-step",
    trace_mode: str = "all-to-all",
    *,
    pre_times_ms: Sequence[float] = SEED_PRE_SPIKES_MS,
    post_times_ms: Sequence[float] = SEED_POST_SPIKES_MS,
    reward_switch_ms: float = SEED_REWARD_SWITCH_MS,
    a_plus: float = 0.2,
    a_minus: float = -0.2,
    tau_plus_ms: float = 20.0,
    tau_minus_ms: float = 20.0,
    tau_z_ms: float = 25.0,
    gamma: float = 1.0,
    w0: float = SEED_W0,
    n_steps: int = SEED_N_STEPS,
    dt: float = 1.0,
) -> dict[str, np.ndarray]:
    """The one-synapse worked example (the seed figure): STDP, MSTDP and MSTDPET side by side.

    Defaults: pre spikes at 10, 85, 115, 135 ms; post spikes at 15, 75, 110, 140 ms; r(t) = +1 for
    t <= 100 ms and -1 after; A+ = 0.2, A- = -0.2, gamma = 1, tau+ = tau- = 20 ms, tau_z = 25 ms,
    w0 = 0.2, dt = 1 ms, 200 steps, no bounds. Computed in float64.

    Every array has ``n_steps + 1`` (= 201) entries; **index k is time t = k dt, the state after step k**
    (index 0 = the initial state: traces, z and the changes are zero, weights w0). ``pre[k]``/``post[k]``
    are the spikes of step k and ``reward[k]`` is r(k dt) (``reward[0]`` is +1 by the same rule).

    * ``ordering="same-step"``: at step k the traces take the spikes of step k, then
      ``zeta(k) = x_pre[k] post[k] + x_post[k] pre[k]`` and ``w[k] = w[k-1] + gamma r[k] zeta(k)``
      (MSTDPET: ``eligibility[k] = eligibility[k-1] e^{-dt/tau_z} + zeta(k)/tau_z`` and
      ``w[k] = w[k-1] + gamma dt r[k] eligibility[k]``). Check: ``w_stdp[15] = 0.2 + 0.2 e^{-0.25}``.
    * ``ordering="delayed"``: at step k the weight moves first, with the previous step's point
      eligibility: ``w[k] = w[k-1] + gamma r[k] zeta(k-1)``;
      ``eligibility[k] = eligibility[k-1] e^{-dt/tau_z} + zeta(k-1)/tau_z`` and
      ``w[k] = w[k-1] + gamma dt r[k] eligibility[k]``; then the traces take the spikes of step k.
      ``x_pre``/``x_post`` are the same as in the same-step ordering, ``w_stdp`` is shifted one step
      later (``w_stdp[16] = 0.2 + 0.2 e^{-0.25}``) and the reward meets the eligibility one step later.

    Args:
        ordering: ``"same-step"`` or ``"delayed"``.
        trace_mode: ``"all-to-all"`` or ``"nearest"``.
        pre_times_ms, post_times_ms, reward_switch_ms, a_plus, a_minus, tau_plus_ms, tau_minus_ms,
        tau_z_ms, gamma, w0, n_steps, dt: keyword-only overrides of the example (used by the widgets).

    Returns:
        dict of float64 numpy arrays: ``t`` (ms), ``pre``, ``post``, ``reward``, ``x_pre`` (P+),
        ``x_post`` (P-, <= 0), ``eligibility`` (MSTDPET's z), ``w_stdp``, ``w_mstdp``, ``w_mstdpet``.
    """
    check_choice("ordering", ordering, ORDERINGS)
    check_choice("trace_mode", trace_mode, TRACE_MODES)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    dt = check_positive("dt", dt)
    check_float("reward_switch_ms", reward_switch_ms)
    check_float("w0", w0)
    params = FlorianParams(a_plus=a_plus, a_minus=a_minus, tau_plus_ms=tau_plus_ms, tau_minus_ms=tau_minus_ms,
                           tau_z_ms=tau_z_ms, gamma=gamma, ordering=ordering, trace_mode=trace_mode)
    pre = _spike_train(pre_times_ms, n_steps, dt, "pre_times_ms")
    post = _spike_train(post_times_ms, n_steps, dt, "post_times_ms")
    t = np.arange(n_steps + 1) * dt
    reward = np.where(t <= reward_switch_ms + 1e-9 * dt, 1.0, -1.0)

    def as_tensor(x):  # steps 1..n_steps as [T, B=1, n=1]
        return torch.as_tensor(x[1:], dtype=torch.float64).reshape(n_steps, 1, 1)

    w_init = torch.full((1, 1), float(w0), dtype=torch.float64)
    runs = {}
    with _one_thread():
        for rule in RULES:
            r = None if rule == "stdp" else torch.as_tensor(reward[1:], dtype=torch.float64)
            runs[rule] = simulate(rule, as_tensor(pre), as_tensor(post), w_init, reward=r, params=params, dt=dt)
    et = runs["mstdpet"]
    return {
        "t": t,
        "pre": pre,
        "post": post,
        "reward": reward,
        "x_pre": et.x_pre[:, 0, 0].numpy().copy(),
        "x_post": et.x_post[:, 0, 0].numpy().copy(),
        "eligibility": et.z[:, 0, 0].numpy().copy(),
        "w_stdp": runs["stdp"].w[:, 0, 0].numpy().copy(),
        "w_mstdp": runs["mstdp"].w[:, 0, 0].numpy().copy(),
        "w_mstdpet": et.w[:, 0, 0].numpy().copy(),
    }


# ============================================================================ stateful wrappers
class FlorianRule(nn.Module):
    """Stateful STDP / MSTDP / MSTDPET for one ``[n_post, n_pre]`` synapse matrix (wraps the pure steps).

    ``step(pre, post, w, reward)`` returns the change ``dw`` (it never touches ``w``) and keeps the
    traces and eligibility as buffers, so ``.to(device)`` moves them. ``reset()`` forgets them; the
    state is made at the first step for that step's batch size, and a different batch size without a
    ``reset()`` is an error.

    Args:
        rule: ``"stdp"``, ``"mstdp"`` or ``"mstdpet"``.
        n_pre, n_post: sizes of the pre (in) and post (out) populations.
        params: :class:`FlorianParams`.  dt: step (ms).
        per_sample_eligibility: MSTDPET keeps ``z`` per sample, allowing a ``[B]`` reward.
    """

    _FIELDS = FlorianState._fields

    def __init__(self, rule: str, n_pre: int, n_post: int, *, params: FlorianParams = FlorianParams(),
                 dt: float = 1.0, per_sample_eligibility: bool = False):
        super().__init__()
        self.rule = check_choice("rule", rule, RULES)
        self.n_pre = check_int("n_pre", n_pre, minimum=1)
        self.n_post = check_int("n_post", n_post, minimum=1)
        if not isinstance(params, FlorianParams):
            raise ValueError(f"params must be a FlorianParams, got {type(params).__name__}")
        self.params = params
        self.dt = check_positive("dt", dt)
        self.per_sample_eligibility = bool(per_sample_eligibility)
        for name in self._FIELDS:
            self.register_buffer(name, None, persistent=False)

    @property
    def state(self) -> FlorianState | None:
        """The current :class:`FlorianState`, or ``None`` before the first step / after ``reset()``."""
        if self.x_pre is None:
            return None
        return FlorianState(*(getattr(self, name) for name in self._FIELDS))

    def reset(self) -> None:
        """Forget traces and eligibility (the next step starts from zeros)."""
        for name in self._FIELDS:
            setattr(self, name, None)

    @torch.no_grad()
    def step(self, pre: torch.Tensor, post: torch.Tensor, w: torch.Tensor, reward=None) -> torch.Tensor:
        """Advance one step with spikes ``pre [B, n_pre]``, ``post [B, n_post]``; return ``dw``."""
        state = self.state
        if state is None:
            state = init_state(pre.shape[0], self.n_pre, self.n_post, rule=self.rule,
                               per_sample_eligibility=self.per_sample_eligibility, dtype=w.dtype, device=w.device)
        elif state.x_pre.shape[0] != pre.shape[0]:
            raise ValueError(f"pre: batch size changed from {state.x_pre.shape[0]} to {pre.shape[0]}; call reset() first")
        dw, new = rule_step(self.rule, pre.to(w.dtype), post.to(w.dtype), state, w, reward=reward,
                            params=self.params, dt=self.dt)
        for name, value in zip(self._FIELDS, new):
            setattr(self, name, value)
        return dw

    def extra_repr(self) -> str:
        return f"rule={self.rule!r}, n_pre={self.n_pre}, n_post={self.n_post}, dt={self.dt}, params={self.params}"


class FlorianLearner(nn.Module):
    """Apply a Florian rule to a ``nn.Linear`` (or spikingjelly ``layer.Linear``) + spiking neuron pair.

    Forward hooks read the pre spikes (the synapse's input) and the post spikes (the neuron's output) of
    each forward pass; :meth:`step` turns them into a weight change with :class:`FlorianRule` and adds it
    to ``synapse.weight`` in place. Spikes are ``[B, n]`` (single-step) or ``[T, B, n]`` (multi-step;
    the T steps are applied in order, each seeing the weight left by the previous one). Exactly one
    forward between two calls of :meth:`step`: a second forward raises, so nothing is silently dropped.
    Use :meth:`pause` / :meth:`resume` for forwards that should not learn, :meth:`close` to remove the hooks.

    Args:
        synapse: the ``nn.Linear`` whose ``weight [n_post, n_pre]`` learns (bias untouched).
        neuron: the module whose output is the post spikes (e.g. ``spikingjelly...neuron.LIFNode``).
        rule, params, dt, per_sample_eligibility: as in :class:`FlorianRule`.
    """

    def __init__(self, synapse: nn.Linear, neuron: nn.Module, *, rule: str = "mstdpet",
                 params: FlorianParams = FlorianParams(), dt: float = 1.0, per_sample_eligibility: bool = False):
        super().__init__()
        if not isinstance(synapse, nn.Linear):
            raise ValueError(f"synapse must be a torch.nn.Linear, got {type(synapse).__name__}")
        if not isinstance(neuron, nn.Module):
            raise ValueError(f"neuron must be a torch.nn.Module, got {type(neuron).__name__}")
        self.synapse = synapse
        self.rule = FlorianRule(rule, synapse.in_features, synapse.out_features, params=params, dt=dt,
                                per_sample_eligibility=per_sample_eligibility)
        self._pre = None
        self._post = None
        self.recording = True
        self._hooks = [
            synapse.register_forward_pre_hook(self._record_pre),
            neuron.register_forward_hook(self._record_post),
        ]

    # hooks ------------------------------------------------------------------------------------
    def _record_pre(self, _module, inputs):
        if self.recording:
            if self._pre is not None:
                raise RuntimeError("FlorianLearner: a second forward before step(); call step() (or reset()) "
                                   "after each forward, or pause() the learner")
            self._pre = inputs[0].detach()

    def _record_post(self, _module, _inputs, output):
        if self.recording:
            if self._post is not None:
                raise RuntimeError("FlorianLearner: a second forward before step(); call step() (or reset()) "
                                   "after each forward, or pause() the learner")
            self._post = output.detach()

    # control ----------------------------------------------------------------------------------
    def pause(self) -> None:
        """Stop recording (forwards do not learn) until :meth:`resume`."""
        self.recording = False

    def resume(self) -> None:
        """Record forwards again."""
        if not self._hooks:
            raise RuntimeError("FlorianLearner is closed; make a new one")
        self.recording = True

    def reset(self) -> None:
        """Drop a pending record and the rule's traces/eligibility (e.g. between trials)."""
        self._pre = self._post = None
        self.rule.reset()

    def close(self) -> None:
        """Remove the hooks (idempotent)."""
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self.recording = False

    @torch.no_grad()
    def step(self, reward=None) -> torch.Tensor:
        """Apply the rule to the recorded forward; return the total change added to ``synapse.weight``.

        Args:
            reward: ``None`` (STDP); single-step: scalar or ``[B]``; multi-step: scalar, ``[T]`` or
                ``[T, B]`` (a 1-D reward in multi-step mode is read as one value per step).
        """
        if self._pre is None or self._post is None:
            raise RuntimeError("FlorianLearner.step(): no recorded forward since the last step()")
        pre, post = self._pre, self._post
        self._pre = self._post = None
        w = self.synapse.weight
        if pre.ndim == 2:
            dw = self.rule.step(pre, post, w.detach(), reward=reward)
            w.add_(dw)
            return dw
        if pre.ndim != 3 or post.ndim != 3 or pre.shape[0] != post.shape[0]:
            raise ValueError(f"recorded spikes must be [B, n] or [T, B, n]; got {tuple(pre.shape)}, {tuple(post.shape)}")
        n_steps = pre.shape[0]
        r = None if reward is None else torch.as_tensor(reward, dtype=w.dtype, device=w.device)
        if r is not None and r.ndim > 0 and r.shape[0] != n_steps:
            raise ValueError(f"reward: multi-step records have T={n_steps} steps; got reward shape {tuple(r.shape)}")
        total = torch.zeros_like(w)
        for t in range(n_steps):
            r_t = None if r is None else (r if r.ndim == 0 else r[t])
            dw = self.rule.step(pre[t], post[t], w.detach(), reward=r_t)
            w.add_(dw)
            total += dw
        return total


# ============================================================================ a network experiment
# Florian 2007 section 4 trains small networks on XOR. Our scaled-down XOR (20+20 inputs, 20 hidden, a
# few hundred trials) collapses to a silent output on a CPU budget, so the notebook's default task is the
# simpler two-pattern discrimination below; XOR stays available as an exercise (patterns=XOR_PATTERNS).
XOR_PATTERNS = ((0, 0), (0, 1), (1, 0), (1, 1))
XOR_TARGETS = (0, 1, 1, 0)
DISCRIMINATION_PATTERNS = ((1, 0), (0, 1))
DISCRIMINATION_TARGETS = (1, 0)


@dataclass(frozen=True)
class RewardTaskConfig:
    """A small rate-coded reward-learning network in the spirit of Florian 2007 section 4 (CPU-sized).

    Input: two groups of ``n_per_input`` Poisson neurons, firing at ``rate_hz`` for a 1 and silent for
    a 0. Hidden: ``n_hidden`` LIF neurons (spikingjelly ``LIFNode``), output: one LIF neuron; both
    layers plastic (``plastic_hidden``), weights hard-bounded to ``[-w_max, w_max]``. The P patterns
    (default: "fire for (1, 0), stay silent for (0, 1)"; ``XOR_PATTERNS``/``XOR_TARGETS`` for XOR) run
    in parallel as a batch of P sharing the weights. Reward at every step and for every pattern
    (Florian's scheme): +1 when the output spikes and the target is 1, -1 when it spikes and the
    target is 0, else 0.

    Attributes:
        n_per_input: input neurons per input bit.  n_hidden: hidden neurons.
        rate_hz: input rate for a 1 (Hz).  trial_ms: trial length (ms).  n_trials: training trials.
        n_test_trials: trials (learning paused) to measure the firing rates before and after training.
        tau_m_ms: membrane time constant (ms).  noise_std: std of a Gaussian current added each step
            (exploration).  w_max: weight bound.  w_in_init: input->hidden weights start uniform in
            ``[0, w_in_init]``.  w_out_init_low, w_out_init_high: hidden->output start uniform in this
            range.  dt: step (ms).
    """

    n_per_input: int = 20
    n_hidden: int = 20
    rate_hz: float = 40.0
    trial_ms: int = 200
    n_trials: int = 30
    n_test_trials: int = 5
    tau_m_ms: float = 10.0
    noise_std: float = 0.1
    w_max: float = 1.0
    w_in_init: float = 0.2
    w_out_init_low: float = -0.1
    w_out_init_high: float = 0.4
    plastic_hidden: bool = True
    patterns: tuple = DISCRIMINATION_PATTERNS
    targets: tuple = DISCRIMINATION_TARGETS
    dt: float = 1.0

    def __post_init__(self):
        if not self.w_out_init_low < self.w_out_init_high:
            raise ValueError("w_out_init_low must be < w_out_init_high")
        check_float("w_in_init", self.w_in_init, minimum=0.0)
        for name in ("n_per_input", "n_hidden", "trial_ms", "n_trials", "n_test_trials"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("rate_hz", "tau_m_ms", "w_max", "dt"):
            check_positive(name, getattr(self, name))
        check_float("noise_std", self.noise_std, minimum=0.0)
        if len(self.patterns) != len(self.targets) or not self.patterns:
            raise ValueError("patterns and targets must be non-empty and of equal length")
        if any(len(p) != 2 or set(p) - {0, 1} for p in self.patterns) or set(self.targets) - {0, 1}:
            raise ValueError("patterns must be pairs of 0/1 bits and targets 0/1")
        if self.rate_hz * self.dt / 1000.0 > 1.0:
            raise ValueError(f"rate_hz * dt must be <= 1000 (at most one spike per step), got {self.rate_hz}")


def _reward_trial(net, learners, gen, cfg: RewardTaskConfig, *, learn: bool) -> torch.Tensor:
    """One trial of all P patterns (batch P); returns output spike counts ``[P]``."""
    from spikingjelly.activation_based import functional

    lin_ih, lif_h, lin_ho, lif_o = net
    functional.reset_net(lif_h)
    functional.reset_net(lif_o)
    bits = torch.tensor(cfg.patterns, dtype=torch.float32)  # [P, 2]
    n_pat = bits.shape[0]
    p_fire = (bits.repeat_interleave(cfg.n_per_input, dim=1) * cfg.rate_hz * cfg.dt / 1000.0)  # [4, n_in]
    target = torch.tensor(cfg.targets, dtype=torch.float32)
    counts = torch.zeros(n_pat)
    n_steps = int(round(cfg.trial_ms / cfg.dt))
    for learner in learners:
        learner.reset()
        if learn:
            learner.resume()
        else:
            learner.pause()
    for _ in range(n_steps):
        x = (torch.rand(p_fire.shape, generator=gen) < p_fire).float()
        h = lif_h(lin_ih(x) + cfg.noise_std * torch.randn(n_pat, lin_ih.out_features, generator=gen))
        o = lif_o(lin_ho(h) + cfg.noise_std * torch.randn(n_pat, 1, generator=gen))
        counts += o[:, 0]
        if learn:
            reward = o[:, 0] * (2.0 * target - 1.0)  # +1 right spike, -1 wrong spike, 0 silent
            for learner in learners:
                learner.step(reward)
    return counts


def run_reward_task(
    rule: str = "mstdpet",
    *,
    params: FlorianParams | None = None,
    config: RewardTaskConfig = RewardTaskConfig(),
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Train the small network of :class:`RewardTaskConfig` with MSTDP or MSTDPET; return rates and curves.

    The same ``seed`` gives the same initial weights, input spikes and noise, so MSTDP and MSTDPET
    runs with one seed differ only by the rule.

    Args:
        rule: ``"mstdp"`` or ``"mstdpet"``.
        params: :class:`FlorianParams` (``w_min``/``w_max`` are set from ``config.w_max``); default
            ``gamma`` 0.001 for MSTDP and 0.01 for MSTDPET (a rewarded step moves MSTDPET's weight by
            ~gamma zeta/tau_z, so it needs a larger gamma for a comparable speed).
        config: :class:`RewardTaskConfig`.  seed: the one seed.  progress: tqdm bar over trials.

    Returns:
        dict with ``counts`` ``[n_trials, P]`` (output spikes per training trial and pattern),
        ``rate_before_hz`` and ``rate_after_hz`` ``[P]`` (learning paused), ``patterns``, ``targets``,
        ``solved`` (every target-1 rate above every target-0 rate after training), ``margin_hz``
        (lowest target-1 rate minus highest target-0 rate, after training), ``w_hidden_out``.
    """
    from spikingjelly.activation_based import neuron

    check_choice("rule", rule, ("mstdp", "mstdpet"))
    check_int("seed", seed, minimum=0)
    if not isinstance(config, RewardTaskConfig):
        raise ValueError(f"config must be an RewardTaskConfig, got {type(config).__name__}")
    if params is None:
        params = FlorianParams(gamma=0.001 if rule == "mstdp" else 0.01)
    params = FlorianParams(**{**params.__dict__, "w_min": -config.w_max, "w_max": config.w_max})
    gen = torch.Generator().manual_seed(seed)
    n_in = 2 * config.n_per_input
    lin_ih = nn.Linear(n_in, config.n_hidden, bias=False)
    lin_ho = nn.Linear(config.n_hidden, 1, bias=False)
    with torch.no_grad():
        # Positive-leaning initial weights so that hidden and output neurons fire at the start (a silent
        # output never gets a reward, so it could never learn).
        lin_ih.weight.copy_(torch.rand(config.n_hidden, n_in, generator=gen) * config.w_in_init)
        lo, hi = config.w_out_init_low, config.w_out_init_high
        lin_ho.weight.copy_(lo + (hi - lo) * torch.rand(1, config.n_hidden, generator=gen))
    tau_steps = config.tau_m_ms / config.dt
    lif_h = neuron.LIFNode(tau=tau_steps, decay_input=False, v_threshold=1.0, v_reset=0.0)
    lif_o = neuron.LIFNode(tau=tau_steps, decay_input=False, v_threshold=1.0, v_reset=0.0)
    net = (lin_ih, lif_h, lin_ho, lif_o)
    per = rule == "mstdpet"
    learners = [FlorianLearner(lin_ho, lif_o, rule=rule, params=params, dt=config.dt, per_sample_eligibility=per)]
    if config.plastic_hidden:
        learners.append(FlorianLearner(lin_ih, lif_h, rule=rule, params=params, dt=config.dt,
                                       per_sample_eligibility=per))
    seconds = config.trial_ms / 1000.0
    try:
        with torch.no_grad(), _one_thread():
            before = torch.stack([_reward_trial(net, learners, gen, config, learn=False)
                                  for _ in range(config.n_test_trials)]).mean(0) / seconds
            counts = []
            for _ in tqdm(range(config.n_trials), disable=not progress, desc=f"reward task {rule}"):
                counts.append(_reward_trial(net, learners, gen, config, learn=True))
            after = torch.stack([_reward_trial(net, learners, gen, config, learn=False)
                                 for _ in range(config.n_test_trials)]).mean(0) / seconds
    finally:
        for learner in learners:
            learner.close()
    target = np.array(config.targets, dtype=bool)
    after_np = after.numpy().astype(float)
    margin = float(after_np[target].min() - after_np[~target].max())
    return {
        "rule": rule,
        "counts": torch.stack(counts).numpy().astype(float),
        "rate_before_hz": before.numpy().astype(float),
        "rate_after_hz": after_np,
        "patterns": np.array(config.patterns),
        "targets": np.array(config.targets),
        "margin_hz": margin,
        "solved": margin > 0,
        "w_hidden_out": lin_ho.weight.detach().numpy().copy(),
    }


# ============================================================================ figures
def plot_seed_figure(res: dict, *, title: str | None = None):
    """The 8-panel figure of the worked example: pre spikes, post spikes, traces, reward, eligibility,
    and w for STDP, MSTDP, MSTDPET. ``res`` is a :func:`run_seed_example` result. Returns the Figure."""
    import matplotlib.pyplot as plt

    t = res["t"]
    fig, axes = plt.subplots(8, 1, figsize=(7, 10), sharex=True)
    panels = [
        ("pre", "pre spikes", "k"), ("post", "post spikes", "k"), (None, "traces", None),
        ("reward", "reward r", "tab:purple"), ("eligibility", "z (MSTDPET)", "tab:green"),
        ("w_stdp", "w STDP", "tab:blue"), ("w_mstdp", "w MSTDP", "tab:orange"), ("w_mstdpet", "w MSTDPET", "tab:red"),
    ]
    for ax, (key, label, color) in zip(axes, panels):
        if key in ("pre", "post"):
            idx = np.flatnonzero(res[key])
            ax.vlines(t[idx], 0, 1, color=color)
            ax.set_yticks([])
        elif key is None:
            ax.plot(t, res["x_pre"], color="tab:blue", label="$P^+$ (pre)")
            ax.plot(t, res["x_post"], color="tab:red", label="$P^-$ (post)")
            ax.axhline(0, color="grey", lw=0.5)
            ax.legend(loc="upper right", fontsize="x-small", ncol=2)
        elif key == "reward":
            ax.step(t, res[key], where="post", color=color)
            ax.set_ylim(-1.3, 1.3)
        else:
            ax.plot(t, res[key], color=color)
        ax.set_ylabel(label, fontsize="small", rotation=0, ha="right", va="center")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (ms)")
    axes[-1].set_xlim(t[0], t[-1])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_orderings(runs: dict, *, keys: Sequence[str] = ("w_stdp", "w_mstdp", "w_mstdpet")):
    """Weights of several :func:`run_seed_example` results (``{label: res}``) overlaid, one panel per rule."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        for (label, res), style in zip(runs.items(), ("-", "--", ":", "-.")):
            ax.plot(res["t"], res[key], linestyle=style, label=label)
        ax.set_title(key.replace("w_", "w ").upper().replace("W ", "w "))
        ax.set_xlabel("time (ms)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("weight")
    axes[0].legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def plot_reward_task(results: dict):
    """Learning curves (output spikes per trial and pattern) and rates before/after, per rule.

    ``results`` maps a label to a :func:`run_reward_task` result. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results) + 1, figsize=(4 * (len(results) + 1), 3))
    for ax, (label, res) in zip(axes, results.items()):
        for k, (pattern, target) in enumerate(zip(res["patterns"], res["targets"])):
            ax.plot(np.arange(1, len(res["counts"]) + 1), res["counts"][:, k],
                    label=f"{tuple(int(b) for b in pattern)} -> {int(target)}", linestyle="-" if target else "--")
        ax.set_title(label)
        ax.set_xlabel("trial")
        ax.set_ylabel("output spikes / trial")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    ax = axes[-1]
    labels = list(results)
    n_pat = len(next(iter(results.values()))["targets"])
    width = 0.8 / (2 * len(labels))
    for i, label in enumerate(labels):
        res = results[label]
        x = np.arange(n_pat)
        ax.bar(x + (2 * i) * width, res["rate_before_hz"], width, label=f"{label} before", alpha=0.5)
        ax.bar(x + (2 * i + 1) * width, res["rate_after_hz"], width, label=f"{label} after")
    first = next(iter(results.values()))
    ax.set_xticks(np.arange(n_pat) + 0.4 - width / 2)
    ax.set_xticklabels([f"{tuple(int(b) for b in p)}->{int(t)}" for p, t in zip(first["patterns"], first["targets"])],
                       fontsize="small")
    ax.set_ylabel("output rate (Hz)")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


# Spike-time presets for the interactive demo (ms): name -> (pre times, post times).
SPIKE_PRESETS = {
    "seed example": (SEED_PRE_SPIKES_MS, SEED_POST_SPIKES_MS),
    "one causal pair (10 -> 15)": ((10,), (15,)),
    "one acausal pair (15 -> 10)": ((15,), (10,)),
    "bursts (overlapping traces)": ((10, 14, 18, 120, 124), (20, 24, 110, 116, 128)),
}


def seed_figure_panel(
    spikes: str = "seed example",
    ordering: str = "same-step",
    trace_mode: str = "all-to-all",
    a_plus: float = 0.2,
    a_minus: float = -0.2,
    tau_plus_ms: float = 20.0,
    tau_minus_ms: float = 20.0,
    tau_z_ms: float = 25.0,
    reward_switch_ms: float = SEED_REWARD_SWITCH_MS,
):
    """Recompute the worked example (cheap: 3 x 200 scalar steps) and draw its 8-panel figure.

    The plot function of notebook ``01``'s interactive demo; ``spikes`` names a :data:`SPIKE_PRESETS` entry.
    """
    check_choice("spikes", spikes, tuple(SPIKE_PRESETS))
    pre, post = SPIKE_PRESETS[spikes]
    res = run_seed_example(ordering, trace_mode, pre_times_ms=pre, post_times_ms=post,
                           reward_switch_ms=reward_switch_ms, a_plus=a_plus, a_minus=a_minus,
                           tau_plus_ms=tau_plus_ms, tau_minus_ms=tau_minus_ms, tau_z_ms=tau_z_ms)
    return plot_seed_figure(res, title=f"{spikes}: {ordering}, {trace_mode}")


def seed_values_table(runs: dict, times: Sequence[int] = (20, 100, 150, 200)) -> str:
    """A markdown table of w_STDP, w_MSTDP, w_MSTDPET at ``times`` for ``{label: run_seed_example(...)}``."""
    lines = ["| run | t (ms) | w_STDP | w_MSTDP | w_MSTDPET |", "|---|---|---|---|---|"]
    for label, res in runs.items():
        for t in times:
            k = int(np.flatnonzero(np.isclose(res["t"], t))[0])
            lines.append(f"| {label} | {t} | {res['w_stdp'][k]:.6f} | {res['w_mstdp'][k]:.6f} | {res['w_mstdpet'][k]:.6f} |")
    return "\n".join(lines)
