"""Homeostatic synaptic scaling towards a target firing rate (Turrigiano 2008).

Turrigiano (2008, Cell 135:422, doi:10.1016/j.cell.2008.10.008) reviews how neurons scale *all* their
excitatory synapses up or down by a common factor when their average firing rate moves away from a
set point; the relative strengths (and so what Hebbian plasticity stored) are kept. The rate form used
here is that of van Rossum, Bi & Turrigiano (2000, J. Neurosci. 20:8812, eq. 3),
dw_ij/dt = w_ij (nu_target - nu_i) / (tau_s nu_target), with the rate nu_i read from a low-pass
filter of the neuron's own spikes. Discrete version, time step ``dt`` explicit (ms):

    nu_i  <- nu_i e^{-dt/tau_r} + (1 - e^{-dt/tau_r}) s_i 1000/dt      (Hz; mean equals the rate)
    dw_ij  = (dt / tau_s) w_ij (nu_target - nu_i) / nu_target

Biological scaling is slow (hours); in the notebook tau_s is seconds so that it can be watched.
The rule needs tau_s >> tau_r (the rate estimate must settle faster than the weights move).
The demo's neurons are :func:`snnlab.neurons.lif_step` (hard reset) fed by
:func:`snnlab.encoding.poisson_spikes`. Used by ``notebooks/06_three_factor_homeostasis_stp.ipynb``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from ..utils import progress as progress_bar

from ..encoding import poisson_spikes
from ..neurons import LIFParams, lif_step
from ..utils import check_float, check_int

__all__ = [
    "ScalingParams",
    "ScalingState",
    "scaling_init",
    "rate_trace_step",
    "synaptic_scaling_step",
    "SynapticScaling",
    "simulate_scaling",
]


# --------------------------------------------------------------------------- the rule
@dataclass(frozen=True)
class ScalingParams:
    """Synaptic scaling parameters.

    Attributes:
        target_rate_hz: the set point nu_target, Hz, > 0.
        tau_rate_ms: time constant tau_r of the rate estimate, ms, > 0.
        tau_scale_ms: scaling time constant tau_s, ms, > 0 (should be >> tau_rate_ms).
        w_max: optional upper bound on a weight after scaling (None: unbounded).
    """

    target_rate_hz: float = 10.0
    tau_rate_ms: float = 500.0
    tau_scale_ms: float = 5000.0
    w_max: float | None = None

    def __post_init__(self):
        check_float("target_rate_hz", self.target_rate_hz, minimum=0.0, strict_minimum=True)
        check_float("tau_rate_ms", self.tau_rate_ms, minimum=0.0, strict_minimum=True)
        check_float("tau_scale_ms", self.tau_scale_ms, minimum=0.0, strict_minimum=True)
        if self.w_max is not None:
            check_float("w_max", self.w_max, minimum=0.0, strict_minimum=True)


class ScalingState(NamedTuple):
    """The rate estimate nu (Hz) of each postsynaptic neuron, ``[B, n_out]``."""

    rate_hz: torch.Tensor


def scaling_init(batch_size: int, n_out: int, *, params: ScalingParams, dtype=torch.float32, device=None):
    """Start the rate estimate at the target (no scaling until the neuron's own activity says so)."""
    check_int("batch_size", batch_size, minimum=1)
    check_int("n_out", n_out, minimum=1)
    return ScalingState(torch.full((batch_size, n_out), params.target_rate_hz, dtype=dtype, device=device))


def rate_trace_step(post: torch.Tensor, rate_hz: torch.Tensor, *, tau_rate_ms: float, dt: float) -> torch.Tensor:
    """Exponential moving average of the instantaneous rate ``s 1000/dt`` (Hz), exact decay over ``dt``.

    ``nu <- nu a + (1 - a) s 1000/dt`` with ``a = e^{-dt/tau_r}``: for a stationary spike train of rate
    nu the expectation of the estimate is exactly nu.
    """
    a = math.exp(-dt / tau_rate_ms)
    return rate_hz * a + (1.0 - a) * post * (1000.0 / dt)


def synaptic_scaling_step(post: torch.Tensor, state: ScalingState, w: torch.Tensor, *,
                          params: ScalingParams, dt: float) -> tuple[torch.Tensor, ScalingState]:
    """Multiplicative synaptic scaling: every input weight of neuron i moves by the same factor.

    Discrete update::

        nu_i <- nu_i e^{-dt/tau_r} + (1 - e^{-dt/tau_r}) s_i 1000/dt
        dw_ij = (dt/tau_s) w_ij (nu_target - <nu_i>_B) / nu_target

    (the batch mean <.>_B when several independent trials run side by side; with ``w_max`` the update
    is limited so that w + dw <= w_max).

    Args:
        post: postsynaptic spikes s, 0/1, ``[B, n_out]``.
        state: :class:`ScalingState` (rate nu, Hz, ``[B, n_out]``).
        w: weights w, ``[n_out, n_in]`` (any unit; scaling is relative).
        params: :class:`ScalingParams`.
        dt: time step, ms.
    Returns:
        ``(dw, new_state)``; dw ``[n_out, n_in]``, to be added to ``w`` by the caller.
    Reference: Turrigiano 2008; van Rossum, Bi & Turrigiano 2000 eq. 3. Notebook 06.
    """
    check_float("dt", dt, minimum=0.0, strict_minimum=True)
    if post.dim() != 2 or w.dim() != 2 or post.shape[1] != w.shape[0]:
        raise ValueError(f"post must be [B, n_out] and w [n_out, n_in]; got {tuple(post.shape)} and {tuple(w.shape)}")
    rate = rate_trace_step(post, state.rate_hz, tau_rate_ms=params.tau_rate_ms, dt=dt)
    # one factor per postsynaptic neuron, so the [n_out, n_in] work is a single multiplication
    factor = (dt / params.tau_scale_ms) * (params.target_rate_hz - rate.mean(dim=0)) / params.target_rate_hz
    dw = factor[:, None] * w
    if params.w_max is not None:
        dw = torch.minimum(dw, params.w_max - w)
    return dw, ScalingState(rate)


class SynapticScaling(torch.nn.Module):
    """Stateful wrapper of :func:`synaptic_scaling_step` holding the rate estimate as a buffer."""

    def __init__(self, n_out: int, *, params: ScalingParams = ScalingParams(), dt: float = 1.0):
        super().__init__()
        self.n_out = check_int("n_out", n_out, minimum=1)
        self.params = params
        self.dt = check_float("dt", dt, minimum=0.0, strict_minimum=True)
        self.register_buffer("rate_hz", torch.empty(0))

    def reset(self, batch_size: int = 1) -> None:
        """Set the rate estimate to the target for a batch of ``batch_size``."""
        self.rate_hz = scaling_init(batch_size, self.n_out, params=self.params).rate_hz

    @torch.no_grad()
    def step(self, post: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Update the rate estimate from ``post`` and return ``dw`` (the caller adds it to ``w``)."""
        if self.rate_hz.numel() == 0:
            raise RuntimeError("call reset(batch_size) before the first step")
        dw, (self.rate_hz,) = synaptic_scaling_step(post, ScalingState(self.rate_hz), w,
                                                    params=self.params, dt=self.dt)
        return dw


# --------------------------------------------------------------------------- demo
@torch.no_grad()
def simulate_scaling(*, n_in: int = 100, n_out: int = 20, input_rate_hz: float = 10.0,
                     duration_ms: float = 20000.0, dt: float = 1.0, params: ScalingParams = ScalingParams(),
                     lif: LIFParams = LIFParams(), w_mean_range: tuple[float, float] = (0.02, 0.12),
                     scaling: bool = True, record_every_ms: float = 250.0, seed: int = 0,
                     progress: bool = True, device: str | torch.device = "cpu") -> dict:
    """LIF neurons (``lif``, :func:`snnlab.neurons.lif_step`) driven by Poisson inputs through random
    weights, with or without synaptic scaling.

    Neuron i's weights start uniform in [0, 2 m_i], the means m_i evenly spaced over ``w_mean_range``
    (so the initial rates differ widely between neurons).
    Returns ``{"t_ms", "rate_hz" [n_rec, n_out], "mean_w" [n_rec, n_out], "w0", "w"}``: the rate
    estimate and the mean input weight of every neuron, sampled every ``record_every_ms``, on the CPU.
    The neurons and weights live on ``device``; weights and input spikes are drawn on the CPU from
    ``seed`` and moved, so every device sees the same inputs.
    """
    check_int("n_in", n_in, minimum=1)
    check_int("n_out", n_out, minimum=1)
    check_float("duration_ms", duration_ms, minimum=0.0, strict_minimum=True)
    check_float("dt", dt, minimum=0.0, strict_minimum=True)
    check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    lo, hi = w_mean_range
    if not 0 <= lo <= hi:
        raise ValueError(f"w_mean_range must be (low, high) with 0 <= low <= high, got {w_mean_range!r}")
    means = torch.linspace(lo, hi, n_out)
    w = (2.0 * means[:, None] * torch.rand(n_out, n_in, generator=gen)).to(device)
    w0 = w.clone()
    v = torch.zeros(1, n_out, device=device)
    # the rate estimate starts at the target, so that the first second does not scale on no data
    state = scaling_init(1, n_out, params=params, device=device)
    n_steps = int(round(duration_ms / dt))
    every = max(1, int(round(record_every_ms / dt)))
    alpha = lif.decay(dt)
    input_rates = torch.full((1, n_in), float(input_rate_hz))
    t_rec, rates, mean_w = [], [], []
    for k in progress_bar(range(n_steps), disable=not progress, desc="scaling", leave=False):
        pre = poisson_spikes(input_rates, dt_ms=dt, generator=gen).to(device)
        post, _, v = lif_step(pre @ w.T, v, alpha=alpha, v_threshold=lif.v_threshold, reset=lif.reset)
        if scaling:
            dw, state = synaptic_scaling_step(post, state, w, params=params, dt=dt)
            w = w + dw
        else:
            state = ScalingState(rate_trace_step(post, state.rate_hz, tau_rate_ms=params.tau_rate_ms, dt=dt))
        if (k + 1) % every == 0:
            t_rec.append((k + 1) * dt)
            rates.append(state.rate_hz[0].clone())
            mean_w.append(w.mean(dim=1))
    return {"t_ms": torch.tensor(t_rec), "rate_hz": torch.stack(rates).cpu(), "mean_w": torch.stack(mean_w).cpu(),
            "w0": w0.cpu(), "w": w.cpu()}


def plot_scaling(results: dict, *, target_rate_hz: float, colors: dict | None = None):
    """Rate estimates of every neuron against time for named runs (``{"label": simulate_scaling(...)}``).

    ``colors`` maps a run's label to its line colour (default: grey for a label containing "no scaling",
    green otherwise: one colour per method in notebook 06).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3), squeeze=False, sharey=True)
    for ax, (label, res) in zip(axes[0], results.items()):
        color = (colors or {}).get(label, "tab:grey" if "no scaling" in label else "tab:green")
        ax.plot(res["t_ms"] / 1000.0, res["rate_hz"], color=color, alpha=0.6, linewidth=0.8)
        ax.axhline(target_rate_hz, color="k", linestyle="--", label=f"target {target_rate_hz:g} Hz")
        ax.set_xlabel("time (s)")
        ax.set_title(f"{label} ({res['rate_hz'].shape[1]} neurons)", fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.2), frameon=False)
    axes[0][0].set_ylabel("rate estimate (Hz)")
    fig.tight_layout()
    return fig
