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

The worked example (the seed figure), the reward-learning network and the figures of notebook
``01_florian_stdp`` live in :mod:`snnlab.experiments.florian`; this module holds only the rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from ..utils import progress as progress_bar

from ..utils import check_choice, check_float, check_int, check_positive
from .traces import TRACE_MODES, decay_factor, trace_step

ORDERINGS = ("same-step", "delayed")
RULES = ("stdp", "mstdp", "mstdpet")
BATCH_REDUCTIONS = ("sum", "mean")


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
    for t in progress_bar(range(n_steps), disable=not progress, desc=rule):
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

