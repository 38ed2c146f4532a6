"""Structural plasticity: activity-dependent pruning of weak synapses and random regrowth.

A projection ``[n_out, n_in]`` carries a 0/1 connectivity mask. At each rewiring event the synapses
with the lowest *score* are pruned (the score is activity-dependent: by default the weight itself,
which STDP or another activity-dependent rule has shaped; a usage trace of pre/post coincidences works
too), and exactly as many new synapses grow at positions that were vacant, drawn uniformly at random
from a ``torch.Generator``. So the number of synapses is an invariant the function promises:

    scope "row":    every postsynaptic neuron keeps its fan-in  sum_j m_ij
    scope "global": the projection keeps its total              sum_ij m_ij

Per event, with n_i live synapses in row i (or n in total) and k_i = floor(f n_i):

    prune   P_i = the k_i live j with the smallest score_ij (ties: lowest index first)
    regrow  G_i = k_i positions drawn without replacement from {j : m_ij = 0} (vacant before pruning)
    m_ij <- m_ij - [j in P_i] + [j in G_i],   w_ij <- w_init for j in G_i,  w_ij <- 0 for j in P_i

This is the prune-and-regrow scheme of rewiring models such as Deep Rewiring (Bellec et al. 2018,
ICLR, arXiv:1711.05136) and the sparse evolutionary training of Mocanu et al. (2018, Nat. Commun.
9:2383, doi:10.1038/s41467-018-04316-3), here with a fixed count and a seeded generator.
The demo (:func:`simulate_rewiring`) lets pair STDP shape the weights of a sparse projection fed by a
correlated input group and noise; rewiring moves the synapses onto the correlated group.
Used by ``notebooks/07_structural_continual_federated_evolution.ipynb``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from ..utils import progress as progress_bar

from ..encoding import poisson_spikes
from ..neurons import LIFParams, lif_step
from ..utils import check_choice, check_float, check_int, derived_generator

__all__ = [
    "RewiringParams",
    "random_mask",
    "prune_and_regrow",
    "StructuralPlasticity",
    "random_score",
    "simulate_rewiring",
]


@dataclass(frozen=True)
class RewiringParams:
    """Prune-and-regrow parameters.

    Attributes:
        fraction: f, fraction of the live synapses replaced per event (per row or in total), [0, 1].
        w_init: weight given to a newly grown synapse.
        scope: ``"row"`` (each postsynaptic neuron keeps its fan-in) or ``"global"`` (total count kept).
    """

    fraction: float = 0.1
    w_init: float = 0.1
    scope: str = "row"

    def __post_init__(self):
        check_float("fraction", self.fraction, minimum=0.0, maximum=1.0)
        check_float("w_init", self.w_init)
        check_choice("scope", self.scope, ("row", "global"))


def random_mask(n_out: int, n_in: int, fan_in: int, *, generator: torch.Generator) -> torch.Tensor:
    """A boolean ``[n_out, n_in]`` mask with exactly ``fan_in`` randomly placed synapses per row."""
    check_int("n_out", n_out, minimum=1)
    check_int("n_in", n_in, minimum=1)
    check_int("fan_in", fan_in, minimum=0, maximum=n_in)
    keys = torch.rand(n_out, n_in, generator=generator)
    rank = _ranks(keys)
    return rank < fan_in


def _ranks(keys: torch.Tensor) -> torch.Tensor:
    """Rank of each entry within its row (0 = smallest); stable, so ties go to the lower index."""
    order = torch.argsort(keys, dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(keys.shape[1], device=keys.device).expand_as(order))
    return rank


def prune_and_regrow(w: torch.Tensor, mask: torch.Tensor, score: torch.Tensor | None = None, *,
                     params: RewiringParams, generator: torch.Generator):
    """One rewiring event: prune the lowest-score live synapses, regrow as many at random vacant sites.

    Args:
        w: weights w, ``[n_out, n_in]`` (0 where the mask is 0).
        mask: connectivity m, bool ``[n_out, n_in]``.
        score: pruning score, ``[n_out, n_in]``; ``None`` means ``|w|`` (weakest synapses go first).
        params: :class:`RewiringParams`.
        generator: the ``torch.Generator`` that draws the regrowth sites (same seed, same sites).
    Returns:
        ``(new_w, new_mask, pruned, grown)``; ``pruned`` and ``grown`` are bool masks of what changed.
    Raises:
        ValueError: if some row (or the projection) has fewer vacant sites than synapses to regrow.
    Reference: module docstring (Bellec et al. 2018; Mocanu et al. 2018). Notebook 07.
    """
    if w.dim() != 2 or mask.shape != w.shape:
        raise ValueError(f"w and mask must both be [n_out, n_in]; got {tuple(w.shape)} and {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
    if score is None:
        score = w.abs()
    elif score.shape != w.shape:
        raise ValueError(f"score must have the shape of w {tuple(w.shape)}, got {tuple(score.shape)}")
    shape = w.shape
    if params.scope == "global":
        w2, m2, s2 = w.reshape(1, -1), mask.reshape(1, -1), score.reshape(1, -1)
    else:
        w2, m2, s2 = w, mask, score
    n_live = m2.sum(dim=1)
    n_move = torch.floor(params.fraction * n_live.to(torch.float64)).to(torch.long)
    n_vacant = (~m2).sum(dim=1)
    short = n_vacant < n_move
    if short.any():
        row = int(torch.nonzero(short)[0])
        raise ValueError(
            f"params.fraction={params.fraction}: row {row} must regrow {int(n_move[row])} synapses but has "
            f"only {int(n_vacant[row])} vacant sites; lower the fraction or the density"
        )
    # random keys, one per site: the k smallest among the vacant sites are the regrowth sites
    keys = torch.rand(m2.shape, generator=generator).to(w.device).masked_fill(m2, math.inf)
    scores = s2.masked_fill(~m2, math.inf)
    k = int(n_move.max()) if n_move.numel() else 0
    if k > 0 and bool((n_move == k).all()) and k < m2.shape[1]:
        # the usual case (every row moves the same number): top-k selections, O(n log k) per row.
        # The k smallest live scores form a unique set unless the k-th and (k+1)-th tie; such rows
        # are redone with the stable ranking, so the result is always "lowest index first" on ties.
        values, prune_idx = torch.topk(scores, k + 1, dim=1, largest=False, sorted=True)
        pruned = torch.zeros_like(m2).scatter_(1, prune_idx[:, :k], True)
        tied = values[:, k - 1] == values[:, k]
        if tied.any():
            pruned[tied] = m2[tied] & (_ranks(scores[tied]) < k)
        _, grow_idx = torch.topk(keys, k, dim=1, largest=False)
        grown = torch.zeros_like(m2).scatter_(1, grow_idx, True)
    else:
        pruned = m2 & (_ranks(scores) < n_move[:, None])
        grown = ~m2 & (_ranks(keys) < n_move[:, None])
    new_mask = (m2 & ~pruned) | grown
    new_w = torch.where(grown, torch.full_like(w2, params.w_init), w2 * new_mask)
    return new_w.reshape(shape), new_mask.reshape(shape), pruned.reshape(shape), grown.reshape(shape)


class StructuralPlasticity(torch.nn.Module):
    """A masked projection that rewires itself: holds ``weight`` and ``mask`` buffers and a generator.

    ``forward(pre)`` returns ``pre @ (w * m)^T``; :meth:`rewire` applies :func:`prune_and_regrow`.
    """

    def __init__(self, weight: torch.Tensor, mask: torch.Tensor, *, params: RewiringParams = RewiringParams(),
                 seed: int = 0):
        super().__init__()
        if weight.shape != mask.shape or weight.dim() != 2:
            raise ValueError("weight and mask must both be [n_out, n_in]")
        self.params = params
        self.seed = check_int("seed", seed, minimum=0)
        self.generator = torch.Generator().manual_seed(seed)
        self.register_buffer("mask", mask.to(torch.bool).clone())
        self.register_buffer("weight", weight.detach().clone() * self.mask)

    def forward(self, pre: torch.Tensor) -> torch.Tensor:
        return pre @ (self.weight * self.mask).T

    @torch.no_grad()
    def rewire(self, score: torch.Tensor | None = None) -> tuple[int, int]:
        """One rewiring event; returns (number pruned, number grown)."""
        self.weight, self.mask, pruned, grown = prune_and_regrow(
            self.weight, self.mask, score, params=self.params, generator=self.generator)
        return int(pruned.sum()), int(grown.sum())


def random_score(w: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """A pruning score that ignores activity: uniform on [0, 1), one per site, drawn on the CPU from
    ``generator`` and moved to ``w``'s device. With it, pruning and regrowth are both random (the
    control of notebook 07's Coding Exercise 1)."""
    return torch.rand(w.shape, generator=generator).to(w.device)


# --------------------------------------------------------------------------- demo
@torch.no_grad()
def simulate_rewiring(*, n_in: int = 100, n_signal: int = 10, n_out: int = 10, fan_in: int = 20,
                      duration_ms: float = 15000.0, rewire_every_ms: float = 250.0, rate_hz: float = 10.0,
                      correlation: float = 0.9, params: RewiringParams = RewiringParams(fraction=0.25, w_init=0.15),
                      stdp=None, lif: LIFParams = LIFParams(), w_init_max: float = 0.3, rewire: bool = True,
                      score_fn=None, dt: float = 1.0, seed: int = 0, progress: bool = True,
                      device: str | torch.device = "cpu") -> dict:
    """A sparse projection shaped by STDP and rewired by :func:`prune_and_regrow`.

    Inputs: the first ``n_signal`` fire together (each joins the events of one shared Poisson
    process of rate ``rate_hz`` with probability ``correlation``, and fires independently otherwise
    at the rate that keeps its mean at ``rate_hz``); the others fire independently at ``rate_hz``.
    Each of ``n_out`` LIF neurons starts with ``fan_in`` random inputs (one step of synaptic delay).
    Pair STDP (Florian 2007, via
    :func:`snnlab.plasticity.florian.stdp_step`, depression-dominated, weights in [0, 2 w_init_max])
    strengthens the inputs that fire together and drive spikes; every ``rewire_every_ms`` the
    weakest ``params.fraction`` of each neuron's synapses are pruned and as many regrown at random.
    ``score_fn(w, generator=...)`` replaces the pruning score |w| (e.g. :func:`random_score`); its
    generator is derived from ``seed`` (key ``"score"``), apart from the regrowth sites' generator.

    Returns ``{"t_ms", "signal_fraction" [n_events + 1] (fraction of all synapses that come from the
    signal group), "n_synapses" [n_events + 1, n_out], "mask0", "mask", "w", "is_signal"}``, recorded
    every ``rewire_every_ms`` (also with ``rewire=False``), on the CPU. The projection, neurons and
    STDP traces live on ``device``; the wiring, weights, input spikes and regrowth sites are drawn on the
    CPU from ``seed`` and moved, so every device sees the same random numbers.
    """
    from ..plasticity.florian import FlorianParams, init_state, stdp_step

    check_int("n_signal", n_signal, minimum=0, maximum=n_in)
    check_int("fan_in", fan_in, minimum=1, maximum=n_in)
    check_float("duration_ms", duration_ms, minimum=0.0, strict_minimum=True)
    check_float("rewire_every_ms", rewire_every_ms, minimum=0.0, strict_minimum=True)
    check_float("correlation", correlation, minimum=0.0, maximum=1.0)
    check_int("seed", seed, minimum=0)
    if stdp is None:
        stdp = FlorianParams(a_plus=1.0, a_minus=-1.5, gamma=0.01, w_min=0.0, w_max=1.5 * w_init_max)
    gen = torch.Generator().manual_seed(seed)
    rewire_gen = derived_generator(seed, "rewire")
    score_gen = derived_generator(seed, "score")
    mask = random_mask(n_out, n_in, fan_in, generator=gen)
    mask0 = mask.clone()
    w = (w_init_max * torch.rand(n_out, n_in, generator=gen) * mask).to(device)
    mask = mask.to(device)
    is_signal = torch.arange(n_in) < n_signal
    p_event = rate_hz * dt / 1000.0
    # independent rate of a signal input so that its mean rate stays rate_hz
    own = torch.where(is_signal, torch.tensor(rate_hz * (1 - correlation)), torch.tensor(rate_hz))
    state = init_state(1, n_in, n_out, rule="stdp", device=device)
    v = torch.zeros(1, n_out, device=device)
    alpha = lif.decay(dt)
    n_steps = int(round(duration_ms / dt))
    every = max(1, int(round(rewire_every_ms / dt)))
    t_rec = [0.0]
    signal = is_signal.to(device)
    frac = [float((mask & signal).sum() / mask.sum())]
    counts = [mask.sum(dim=1)]
    block, last_pre = None, torch.zeros(1, n_in, device=device)
    for k in progress_bar(range(n_steps), disable=not progress, desc="rewiring", leave=False):
        if k % every == 0:  # draw the inputs of one rewiring interval at once (fewer small tensor ops)
            n_block = min(every, n_steps - k)
            events = (torch.rand(n_block, 1, 1, generator=gen) < p_event).float()
            joins = ((torch.rand(n_block, 1, n_in, generator=gen) < correlation) & is_signal).float()
            block = torch.maximum(events * joins,
                                  poisson_spikes(own.expand(n_block, 1, n_in), dt_ms=dt, generator=gen)).to(device)
        pre = block[k % every]
        # one step of synaptic delay: input spikes of step k-1 drive the neurons at step k, so a causal
        # pair is pre-before-post for STDP (at zero lag a same-step pair potentiates and depresses at once)
        post, _, v = lif_step(last_pre @ w.T, v, alpha=alpha, v_threshold=lif.v_threshold, reset=lif.reset)
        last_pre = pre
        dw, state = stdp_step(pre, post, state, w, params=stdp, dt=dt)
        w = (w + dw) * mask
        if (k + 1) % every == 0:  # a rewiring event (recorded also when rewiring is off, for comparison)
            if rewire:
                score = None if score_fn is None else score_fn(w, generator=score_gen)
                w, mask, _, _ = prune_and_regrow(w, mask, score, params=params, generator=rewire_gen)
            t_rec.append((k + 1) * dt)
            frac.append(float((mask & signal).sum() / mask.sum()))
            counts.append(mask.sum(dim=1))
    return {"t_ms": torch.tensor(t_rec), "signal_fraction": torch.tensor(frac), "n_synapses": torch.stack(counts).cpu(),
            "mask0": mask0, "mask": mask.cpu(), "w": w.cpu(), "is_signal": is_signal}


def plot_rewiring(results: dict, *, colors: dict | None = None):
    """Fraction of synapses from the correlated group over time, per named run (``colors`` by name),
    and the first run's masks at the start and the end."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    first = next(iter(results.values()))
    colors = colors or {}
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.4), gridspec_kw={"width_ratios": [1.4, 1, 1]})
    chance = float(first["is_signal"].float().mean())
    axes[0].axhline(chance, color="grey", linestyle=":", label="chance (random wiring)")
    for label, res in results.items():
        axes[0].plot(res["t_ms"] / 1000.0, res["signal_fraction"], marker=".", color=colors.get(label), label=label)
    axes[0].set_xlabel("time (s)")
    axes[0].set_ylabel("fraction of synapses\nfrom correlated group")
    axes[0].set_ylim(0, 1)
    axes[0].legend(fontsize="small", loc="upper left")
    cmap = ListedColormap(["white", "black"])
    first_name = next(iter(results))
    for ax, key, title in ((axes[1], "mask0", "connectivity at start"), (axes[2], "mask", f"end ({first_name})")):
        im = ax.imshow(first[key].numpy().astype(float), aspect="auto", cmap=cmap, vmin=0, vmax=1,
                       interpolation="nearest")
        ax.axvline(int(first["is_signal"].sum()) - 0.5, color="tab:red")
        ax.set_xlabel("input (red: end of correlated)")  # short: the panels are 2.4 in wide
        ax.set_ylabel("neuron")
        ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_title(title, fontsize="medium")
    bar = fig.colorbar(im, ax=axes[2], ticks=[0, 1])
    bar.ax.set_yticklabels(["absent", "synapse"])
    fig.tight_layout()
    return fig
