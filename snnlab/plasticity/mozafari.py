"""STDP and reward-modulated STDP with the competition of Mozafari et al. 2019.

Mozafari, Ganjtabesh, Nowzari-Dalini, Thorpe, Masquelier (2019), "Bio-inspired digit recognition
using reward-modulated spike-timing-dependent plasticity in deep convolutional networks",
Pattern Recognition 94:87-95, doi:10.1016/j.patcog.2019.05.015 (sections 2.3-2.5). Used by
``snnlab.models.mozafari`` and ``notebooks/02_mozafari_rstdp.ipynb``.

Spikes are first-spike times (int, ``T`` = never fired), potentials are the neurons' potentials at
their own spike time (the value the competition compares). Maps are ``[F, H, W]`` (features,
rows, columns); conv weights are ``[F, C, k, k]``.

* :func:`pointwise_inhibition`: at each position only the earliest feature survives (ties in time:
  the larger potential).
* :func:`k_winners`: up to k winners, earliest first (then largest potential); a winner inhibits its
  whole feature map and every feature within a square of radius r around it. :func:`compete` is
  both in one faster pass (what training uses).
* :func:`stdp_delta` / :func:`conv_stdp_update`: ``dw = a w (1 - w)`` with ``a = a+`` if the input
  spiked no later than the winner, ``a-`` otherwise (including inputs that never spiked).
* :func:`scheduled_rates`: a+ starts at 0.004 and doubles every 500 samples up to 0.15,
  ``a- = -0.75 a+``.
* :func:`adapted_rates`: R-STDP; a correct decision applies STDP (a_r+, a_r-) = (0.004, -0.003), a
  wrong one anti-STDP (a_p+, a_p-) = (-0.004, 0.0005); the reward rates are scaled by the miss
  fraction and the punishment rates by the hit fraction of the previous block of samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..utils import check_float, check_int

Winner = tuple[int, int, int]


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class LearningRateSchedule:
    """STDP rates of the unsupervised layers (section 2.4 of the paper).

    ``a+ = min(a_plus * factor**d, a_plus_max)`` and ``a- = minus_ratio * a+`` where
    ``d = floor(n / every)`` and n is the 1-based count of samples this layer has been trained on.

    Attributes:
        a_plus: initial a+ (0.004).
        minus_ratio: a- / a+ (-0.75, so the initial a- is -0.003).
        factor: growth factor (2).
        every: samples between growths (500).
        a_plus_max: cap of a+ (0.15).
    """

    a_plus: float = 0.004
    minus_ratio: float = -0.75
    factor: float = 2.0
    every: int = 500
    a_plus_max: float = 0.15

    def __post_init__(self):
        check_float("a_plus", self.a_plus, minimum=0.0, strict_minimum=True)
        check_float("minus_ratio", self.minus_ratio, maximum=0.0)
        check_float("factor", self.factor, minimum=1.0)
        check_int("every", self.every, minimum=1)
        check_float("a_plus_max", self.a_plus_max, minimum=self.a_plus)


@dataclass(frozen=True)
class STDPBounds:
    """Weight range and the multiplicative soft bound ``(w - w_min)(w_max - w)``."""

    w_min: float = 0.0
    w_max: float = 1.0
    soft_bound: bool = True

    def __post_init__(self):
        check_float("w_min", self.w_min)
        check_float("w_max", self.w_max, minimum=self.w_min, strict_minimum=True)
        if not isinstance(self.soft_bound, bool):
            raise ValueError(f"soft_bound must be a bool, got {self.soft_bound!r}")


@dataclass(frozen=True)
class RSTDPParams:
    """Reward-modulated STDP of the decision layer (section 2.5 of the paper).

    Attributes:
        reward_plus, reward_minus: (a_r+, a_r-) applied after a correct decision (0.004, -0.003).
        punish_plus, punish_minus: (a_p+, a_p-) applied after a wrong one (-0.004, 0.0005): the
            input that helped the wrong winner is depressed, the silent input potentiated.
        adaptive: scale the reward rates by the miss fraction and the punishment rates by the hit
            fraction of the previous block (the paper's remedy against over-fitting).
        block: samples per block for the hit/miss fractions (the public port: 1000).
        initial_hit: hit fraction assumed before the first block ends (``None``: 1 / n_classes,
            i.e. chance; the paper leaves it open).
        bounds: weight range and soft bound.
    """

    reward_plus: float = 0.004
    reward_minus: float = -0.003
    punish_plus: float = -0.004
    punish_minus: float = 0.0005
    adaptive: bool = True
    block: int = 1000
    initial_hit: float | None = None
    bounds: STDPBounds = STDPBounds()

    def __post_init__(self):
        for name in ("reward_plus", "reward_minus", "punish_plus", "punish_minus"):
            check_float(name, getattr(self, name))
        if not isinstance(self.adaptive, bool):
            raise ValueError(f"adaptive must be a bool, got {self.adaptive!r}")
        check_int("block", self.block, minimum=1)
        if self.initial_hit is not None:
            check_float("initial_hit", self.initial_hit, minimum=0.0, maximum=1.0)
        if not isinstance(self.bounds, STDPBounds):
            raise ValueError(f"bounds must be an STDPBounds, got {type(self.bounds).__name__}")


class RewardRates(NamedTuple):
    """The four R-STDP rates in force: reward (a_r+, a_r-) and punishment (a_p+, a_p-)."""

    reward_plus: float
    reward_minus: float
    punish_plus: float
    punish_minus: float


# --------------------------------------------------------------------------- schedules
def scheduled_rates(n_samples: int, schedule: LearningRateSchedule = LearningRateSchedule()):
    """(a+, a-) in force for the ``n_samples``-th training sample of a layer (1-based count).

    .. math:: a^+ = \\min(a^+_0 f^{\\lfloor n / N \\rfloor}, a^+_{max}),\\qquad a^- = \\rho a^+
    """
    n = check_int("n_samples", n_samples, minimum=0)
    growths = n // schedule.every
    if schedule.factor > 1.0:
        # past this many growths a+ is capped anyway (and factor**growths could overflow)
        growths = min(growths, math.ceil(math.log(schedule.a_plus_max / schedule.a_plus, schedule.factor)) + 1)
    a_plus = min(schedule.a_plus * schedule.factor ** growths, schedule.a_plus_max)
    return a_plus, schedule.minus_ratio * a_plus


def adapted_rates(params: RSTDPParams, hit_fraction: float, miss_fraction: float) -> RewardRates:
    """R-STDP rates after a block with the given hit and miss fractions (silent counts in neither).

    .. math:: a_r^{\\pm} \\leftarrow a_r^{\\pm} \\frac{N_{miss}}{N},\\qquad
              a_p^{\\pm} \\leftarrow a_p^{\\pm} \\frac{N_{hit}}{N}

    With ``params.adaptive`` False the base rates are returned unchanged.
    """
    hit = check_float("hit_fraction", hit_fraction, minimum=0.0, maximum=1.0)
    miss = check_float("miss_fraction", miss_fraction, minimum=0.0, maximum=1.0)
    if hit + miss > 1.0 + 1e-9:
        raise ValueError(f"hit_fraction + miss_fraction must be <= 1, got {hit} + {miss}")
    if not params.adaptive:
        hit = miss = 1.0
    return RewardRates(params.reward_plus * miss, params.reward_minus * miss,
                       params.punish_plus * hit, params.punish_minus * hit)


# --------------------------------------------------------------------------- competition
def _check_maps(times: torch.Tensor, values: torch.Tensor) -> None:
    if times.shape != values.shape or times.ndim < 3:
        raise ValueError(f"times and values must be [..., F, H, W] of one shape, got "
                         f"{tuple(times.shape)} and {tuple(values.shape)}")


def pointwise_inhibition(times: torch.Tensor, values: torch.Tensor, n_steps: int):
    """Keep, at each position, only the feature that fired first (ties: the larger potential).

    .. math:: f^*(y, x) = \\arg\\max_{f: t_f = t_{min}(y,x)} V_f(y, x),\\qquad
              t_{min}(y, x) = \\min_f t_f(y, x)

    All other features at that position are silenced (time ``T``, potential 0). Exact ties in
    both time and potential go to the lowest feature index.

    Args:
        times: ``[..., F, H, W]`` int first-spike times (``T`` = never).
        values: ``[..., F, H, W]`` potentials at those times.
        n_steps: T.
    Returns:
        ``(times, values)`` after inhibition.
    """
    _check_maps(times, values)
    t_min = times.min(dim=-3, keepdim=True).values
    candidate = (times == t_min) & (t_min < n_steps)
    score = torch.where(candidate, values.to(torch.float64), torch.full_like(values, -torch.inf, dtype=torch.float64))
    best = score.argmax(dim=-3, keepdim=True)
    keep = torch.zeros_like(candidate).scatter_(-3, best, True) & candidate
    return (torch.where(keep, times, torch.full_like(times, n_steps)),
            torch.where(keep, values, torch.zeros_like(values)))


def k_winners(times: torch.Tensor, values: torch.Tensor, *, k: int, radius: int, n_steps: int) -> list[Winner]:
    """k-winners-take-all with inhibition radius (section 2.3 of the paper).

    Neurons that fired are ranked by spike time (earliest first) and then by their potential at
    spike time (largest first). The best one wins; it inhibits its whole feature map and, in every
    feature map, the square of positions within ``radius`` (Chebyshev distance, the winner's own
    position included); repeat up to k times or until no firing neuron is left. Exact ties go to
    the lowest flat index (feature, row, column).

    Args:
        times: ``[F, H, W]`` int first-spike times (``T`` = never).
        values: ``[F, H, W]`` potentials at spike time.
        k: number of winners wanted.
        radius: r (positions).
        n_steps: T.
    Returns:
        list of ``(feature, row, column)``, best first (may be shorter than k).
    """
    return compete(times, values, k=k, radius=radius, n_steps=n_steps, pointwise=False)


def compete(times: torch.Tensor, values: torch.Tensor, *, k: int, radius: int, n_steps: int,
            pointwise: bool = True) -> list[Winner]:
    """The winners of a layer's competition: :func:`pointwise_inhibition` (if ``pointwise``), then
    :func:`k_winners`; the same result, computed on the list of neurons that fired only.

    Args:
        times, values, k, radius, n_steps: as in :func:`k_winners`.
        pointwise: apply pointwise inhibition first (the paper's conv1/conv2 training).
    Returns:
        list of ``(feature, row, column)``, best first (may be shorter than k).
    """
    _check_maps(times, values)
    if times.ndim != 3:
        raise ValueError(f"times must be [F, H, W], got {tuple(times.shape)}")
    k = check_int("k", k, minimum=1)
    radius = check_int("radius", radius, minimum=0)
    n_f, h, w = times.shape
    if pointwise:
        # per position the earliest feature, then the largest potential among those (max over
        # features returns the lowest index on exact ties): one candidate per position
        t_min = times.min(dim=0).values.reshape(-1)
        score = torch.where(times == t_min.reshape(h, w), values, -torch.inf)
        best, feature = score.reshape(n_f, -1).max(dim=0)
        pos = torch.nonzero(t_min < n_steps).squeeze(1)
        t_c, v_c, flat = t_min[pos], best[pos], feature[pos] * (h * w) + pos
    else:
        flat = torch.nonzero(times.reshape(-1) < n_steps).squeeze(1)
        t_c, v_c = times.reshape(-1)[flat], values.reshape(-1)[flat]
    if flat.numel() == 0:
        return []
    v_c = v_c.to(torch.float64)
    # lexicographic (earlier, then larger) in one number: a step is worth more than any potential
    key = (n_steps - t_c).to(torch.float64) * (float(v_c.max() - v_c.min()) + 1.0) + (v_c - v_c.min())
    # candidates best first; exact ties by the lowest flat index (feature, row, column)
    by_flat = torch.argsort(flat)
    key, flat = key[by_flat], flat[by_flat]
    order = torch.argsort(key, descending=True, stable=True)
    winners: list[Winner] = []
    for idx in flat[order].tolist():
        f, rem = divmod(idx, h * w)
        y, x = divmod(rem, w)
        if any(f == wf or (abs(y - wy) <= radius and abs(x - wx) <= radius) for wf, wy, wx in winners):
            continue                              # inhibited by an earlier winner
        winners.append((f, y, x))
        if len(winners) == k:
            break
    return winners


# --------------------------------------------------------------------------- STDP
def soft_bound_factor(w: torch.Tensor, bounds: STDPBounds = STDPBounds()) -> torch.Tensor:
    """``(w - w_min)(w_max - w)`` (= w(1-w) on [0, 1]) or 1 without the soft bound."""
    if not bounds.soft_bound:
        return torch.ones_like(w)
    return (w - bounds.w_min) * (bounds.w_max - w)


def stdp_delta(w: torch.Tensor, pre_times: torch.Tensor, post_time, *, a_plus: float,
               a_minus: float, bounds: STDPBounds = STDPBounds()) -> torch.Tensor:
    """Weight change of one winner's kernel (section 2.4, eq. of the simplified STDP).

    .. math:: \\Delta w_{ij} = \\begin{cases} a^+ w_{ij}(1 - w_{ij}) & t_j \\le t_i \\\\
              a^- w_{ij}(1 - w_{ij}) & \\text{otherwise (later or never)} \\end{cases}

    Only the order matters, not the time difference.

    Args:
        w: the winner's kernel ``[C, k, k]`` (or any shape).
        pre_times: first-spike times of its receptive field, same shape (``T`` = never).
        post_time: t_i, the winner's spike time (step); an int, or a tensor that broadcasts
            against ``w`` (several winners' kernels stacked, one time each).
        a_plus, a_minus: the rates (a+ > 0 and a- < 0 for STDP; swapped signs for anti-STDP).
        bounds: the soft bound.
    """
    if pre_times.shape != w.shape:
        raise ValueError(f"pre_times {tuple(pre_times.shape)} must match w {tuple(w.shape)}")
    rate = torch.where(pre_times <= post_time, a_plus, a_minus).to(w.dtype)
    return rate * soft_bound_factor(w, bounds)


def receptive_field(pre_times: torch.Tensor, y: int, x: int, kernel: int) -> torch.Tensor:
    """The ``[C, k, k]`` input window of output position (y, x) (input already padded)."""
    return pre_times[:, y:y + kernel, x:x + kernel]


def conv_stdp_update(w: torch.Tensor, pre_times: torch.Tensor, winners: list[Winner],
                     post_times: list[int], *, a_plus: float, a_minus: float,
                     bounds: STDPBounds = STDPBounds()) -> torch.Tensor:
    """Weight change of a convolutional layer for a list of winners (shared kernels).

    Each winner (f, y, x) changes kernel f by :func:`stdp_delta` over its receptive field. Winners
    have distinct features (k-WTA guarantees it), so the changes never overlap.

    Args:
        w: weights ``[F, C, k, k]``.
        pre_times: padded input first-spike times ``[C, H_in, W_in]``.
        winners: ``(feature, row, column)`` list.
        post_times: each winner's spike time.
        a_plus, a_minus, bounds: as in :func:`stdp_delta`.
    Returns:
        dw ``[F, C, k, k]`` (zero for features without a winner).
    """
    if len(winners) != len(post_times):
        raise ValueError(f"winners ({len(winners)}) and post_times ({len(post_times)}) must have one length")
    features = [f for f, _, _ in winners]
    if len(set(features)) != len(features):
        dup = next(f for f in features if features.count(f) > 1)
        raise ValueError(f"feature {dup} appears twice among the winners")
    dw = torch.zeros_like(w)
    if not winners:
        return dw
    kernel = w.shape[-1]
    rows = torch.tensor(features, device=w.device)
    # all winners at once: their receptive fields side by side, one stdp_delta for the lot
    fields = torch.stack([receptive_field(pre_times, y, x, kernel) for _, y, x in winners])
    post = torch.tensor([int(t) for t in post_times], device=w.device).reshape(-1, *[1] * (w.dim() - 1))
    dw[rows] = stdp_delta(w[rows], fields, post, a_plus=a_plus, a_minus=a_minus, bounds=bounds)
    return dw


def apply_update(w: torch.Tensor, dw: torch.Tensor, bounds: STDPBounds = STDPBounds()) -> torch.Tensor:
    """``clamp(w + dw, w_min, w_max)`` (a new tensor)."""
    return (w + dw).clamp_(bounds.w_min, bounds.w_max)


def rstdp_rates(correct: bool, rates: RewardRates) -> tuple[float, float]:
    """(a+, a-) for :func:`stdp_delta` after a decision: reward -> STDP, punishment -> anti-STDP."""
    if correct:
        return rates.reward_plus, rates.reward_minus
    return rates.punish_plus, rates.punish_minus
