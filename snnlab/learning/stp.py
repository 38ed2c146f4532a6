"""Tsodyks-Markram short-term plasticity: synaptic depression and facilitation.

The model of Tsodyks & Markram (1997, PNAS 94:719, doi:10.1073/pnas.94.2.719) with the facilitation
variable of Tsodyks, Pawelzik & Markram (1998, Neural Computation 10:821,
doi:10.1162/089976698300017502). A synapse holds a fraction ``x`` of available resources and a
utilisation ``u``. Between presynaptic spikes

    dx/dt = (1 - x) / tau_d            (recovery from depression)
    du/dt = -u / tau_f                 (facilitation decays to 0)

and at a presynaptic spike, in this order (u is incremented *before* release, as in Tsodyks et al.):

    u+ = u- + U (1 - u-)
    r  = u+ x-                         (fraction of all resources released: the efficacy)
    x+ = x- - r

Without facilitation (``tau_f_ms = 0``) ``u`` is the constant ``U`` (the 1997 depression-only model).
The discrete step below integrates the decays exactly (exponentials of ``dt``), so for periodic input
with an inter-spike interval ``Delta`` that is a multiple of ``dt`` the steady state is exactly

    u* = U / (1 - (1 - U) e^{-Delta/tau_f}),
    x* = (1 - e^{-Delta/tau_d}) / (1 - (1 - u*) e^{-Delta/tau_d}),     r* = u* x*,

(:func:`tm_steady_state`; Tsodyks et al. 1998, eqs. 2-3 iterated to their fixed point), which the
tests check. Used by ``notebooks/06_three_factor_homeostasis_stp.ipynb``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..utils import check_float

__all__ = [
    "TMParams",
    "TMState",
    "tm_init",
    "tm_step",
    "tm_steady_state",
    "simulate_tm",
    "TsodyksMarkramSynapse",
    "DEPRESSING",
    "FACILITATING",
]


@dataclass(frozen=True)
class TMParams:
    """Parameters of the Tsodyks-Markram synapse.

    Attributes:
        U: utilisation increment per spike (release probability of a rested synapse), in (0, 1].
        tau_d_ms: recovery (depression) time constant tau_d, ms, > 0.
        tau_f_ms: facilitation time constant tau_f, ms, >= 0; 0 means no facilitation (u = U).
    """

    U: float = 0.5
    tau_d_ms: float = 200.0
    tau_f_ms: float = 0.0

    def __post_init__(self):
        check_float("U", self.U, minimum=0.0, maximum=1.0, strict_minimum=True)
        check_float("tau_d_ms", self.tau_d_ms, minimum=0.0, strict_minimum=True)
        check_float("tau_f_ms", self.tau_f_ms, minimum=0.0)


#: Depressing pyramidal-to-pyramidal synapse (Tsodyks & Markram 1997: U ~ 0.5, tau_rec ~ 800 ms).
DEPRESSING = TMParams(U=0.5, tau_d_ms=800.0, tau_f_ms=0.0)
#: Facilitating pyramidal-to-interneuron synapse (Markram et al. 1998: U ~ 0.03-0.1, tau_f ~ 1 s).
FACILITATING = TMParams(U=0.1, tau_d_ms=100.0, tau_f_ms=1000.0)


class TMState(NamedTuple):
    """Synaptic state: available resources ``x`` and utilisation ``u`` *just before* a spike."""

    x: torch.Tensor
    u: torch.Tensor


def tm_init(shape, *, params: TMParams, dtype=torch.float32, device=None) -> TMState:
    """The rested state: ``x = 1``; ``u = 0`` with facilitation, ``u = U`` without."""
    x = torch.ones(shape, dtype=dtype, device=device)
    u = torch.zeros_like(x) if params.tau_f_ms > 0 else torch.full_like(x, params.U)
    return TMState(x, u)


def tm_step(pre: torch.Tensor, state: TMState, *, params: TMParams, dt: float) -> tuple[torch.Tensor, TMState]:
    """One time step of the Tsodyks-Markram synapse; returns the released fraction and the new state.

    Discrete update (spike ``s`` in {0, 1} at the start of the step, decays exact over ``dt``)::

        u+ = u + s U (1 - u)                 (u = U always when tau_f = 0)
        r  = s u+ x
        x' = 1 - (1 - (x - r)) e^{-dt/tau_d}
        u' = u+ e^{-dt/tau_f}

    Args:
        pre: presynaptic spikes s, 0/1, any shape (``[B, n_in]``, or ``[B, n_out, n_in]`` for
            per-synapse state; it broadcasts against the state).
        state: :class:`TMState` (x, u) before this step, shape broadcastable with ``pre``.
        params: :class:`TMParams`.
        dt: time step, ms.

    Returns:
        ``(r, new_state)``: r = u+ x s, the released fraction (efficacy, dimensionless), to be
        multiplied by the absolute synaptic strength; shape of the broadcast.
    Reference: Tsodyks, Pawelzik & Markram 1998, eqs. 2-3. Notebook 06.
    """
    check_float("dt", dt, minimum=0.0, strict_minimum=True)
    x, u = state
    if params.tau_f_ms > 0:
        u_plus = u + pre * params.U * (1.0 - u)
    else:
        u_plus = u.new_full(torch.broadcast_shapes(u.shape, pre.shape), params.U)
    released = pre * u_plus * x
    decay_d = math.exp(-dt / params.tau_d_ms)
    x_new = 1.0 - (1.0 - (x - released)) * decay_d
    if params.tau_f_ms > 0:
        u_new = u_plus * math.exp(-dt / params.tau_f_ms)
    else:
        u_new = u_plus
    return released, TMState(x_new, u_new)


def tm_steady_state(rate_hz: float, *, params: TMParams) -> tuple[float, float, float]:
    """Closed-form steady state under periodic input at ``rate_hz``: ``(u*, x*, r* = u* x*)``.

    u* is the utilisation just after the spike's increment, x* the resources just before the spike:

        u* = U / (1 - (1 - U) e^{-Delta/tau_f})    (u* = U without facilitation)
        x* = (1 - e^{-Delta/tau_d}) / (1 - (1 - u*) e^{-Delta/tau_d}),   Delta = 1000 / rate_hz ms.
    """
    check_float("rate_hz", rate_hz, minimum=0.0, strict_minimum=True)
    delta = 1000.0 / rate_hz
    if params.tau_f_ms > 0:
        u_star = params.U / (1.0 - (1.0 - params.U) * math.exp(-delta / params.tau_f_ms))
    else:
        u_star = params.U
    ed = math.exp(-delta / params.tau_d_ms)
    x_star = (1.0 - ed) / (1.0 - (1.0 - u_star) * ed)
    return u_star, x_star, u_star * x_star


def simulate_tm(spikes: torch.Tensor, *, params: TMParams, dt: float = 1.0) -> dict:
    """Run :func:`tm_step` over a ``[T, ...]`` spike train; returns ``{"r", "x", "u"}`` each ``[T, ...]``.

    ``x`` and ``u`` are recorded just before each step (what the next spike would see).
    """
    if spikes.dim() < 1:
        raise ValueError(f"spikes must be [T, ...], got shape {tuple(spikes.shape)}")
    state = tm_init(spikes.shape[1:], params=params, dtype=spikes.dtype, device=spikes.device)
    rs, xs, us = [], [], []
    for s in spikes:
        xs.append(state.x)
        us.append(state.u)
        r, state = tm_step(s, state, params=params, dt=dt)
        rs.append(r)
    return {"r": torch.stack(rs), "x": torch.stack(xs), "u": torch.stack(us)}


class TsodyksMarkramSynapse(torch.nn.Module):
    """A projection ``[n_out, n_in]`` whose presynaptic efficacies follow :func:`tm_step`.

    The current into the postsynaptic neurons is ``I = (r) @ (A w)^T``: one (x, u) pair per presynaptic
    neuron (all synapses of one axon share their parameters here, so they share the state too).
    Buffers ``x`` and ``u`` are ``[B, n_in]``; call :meth:`reset` before a new sequence.
    """

    def __init__(self, weight: torch.Tensor, *, params: TMParams = TMParams(), dt: float = 1.0):
        super().__init__()
        if weight.dim() != 2:
            raise ValueError(f"weight must be [n_out, n_in], got shape {tuple(weight.shape)}")
        self.params = params
        self.dt = check_float("dt", dt, minimum=0.0, strict_minimum=True)
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("x", torch.empty(0))
        self.register_buffer("u", torch.empty(0))

    def reset(self, batch_size: int = 1) -> None:
        """Rest every synapse (``x = 1``, ``u`` = 0 or U) for a batch of ``batch_size``."""
        state = tm_init((batch_size, self.weight.shape[1]), params=self.params,
                        dtype=self.weight.dtype, device=self.weight.device)
        self.x, self.u = state

    def forward(self, pre: torch.Tensor) -> torch.Tensor:
        """One step: ``pre`` ``[B, n_in]`` spikes -> postsynaptic current ``[B, n_out]``."""
        if self.x.numel() == 0:
            raise RuntimeError("call reset(batch_size) before the first step")
        if pre.shape != self.x.shape:
            raise ValueError(f"pre must have shape {tuple(self.x.shape)}, got {tuple(pre.shape)}")
        r, (self.x, self.u) = tm_step(pre, TMState(self.x, self.u), params=self.params, dt=self.dt)
        return r @ self.weight.T


# --------------------------------------------------------------------------- figures (notebook 06)
def stp_response(*, params: TMParams, rate_hz: float = 20.0, n_spikes: int = 10, recovery_ms: float = 500.0,
                 dt: float = 1.0) -> dict:
    """A regular train of ``n_spikes`` at ``rate_hz`` followed by one probe spike ``recovery_ms`` later.

    Returns ``{"t_ms", "r", "x", "u", "spike_times_ms", "amplitudes"}`` (``amplitudes``: r at each spike).
    """
    check_float("rate_hz", rate_hz, minimum=0.0, strict_minimum=True)
    period = int(round(1000.0 / rate_hz / dt))
    times = [k * period for k in range(n_spikes)] + [(n_spikes - 1) * period + int(round(recovery_ms / dt))]
    n_steps = times[-1] + int(round(100 / dt))
    s = torch.zeros(n_steps, 1, dtype=torch.float64)
    s[times, 0] = 1.0
    out = simulate_tm(s, params=params, dt=dt)
    return {"t_ms": torch.arange(n_steps) * dt, "r": out["r"][:, 0], "x": out["x"][:, 0], "u": out["u"][:, 0],
            "spike_times_ms": torch.tensor(times) * dt, "amplitudes": out["r"][times, 0]}


def plot_stp(U: float = 0.5, tau_d_ms: float = 800.0, tau_f_ms: float = 0.0, rate_hz: float = 20.0):
    """Left: release r at each spike of a 20 Hz train plus a recovery probe, with x and u. Right:
    steady-state r* against rate (closed form) with the simulated last-spike values. Returns the Figure."""
    import matplotlib.pyplot as plt

    params = TMParams(U=U, tau_d_ms=tau_d_ms, tau_f_ms=tau_f_ms)
    res = stp_response(params=params, rate_hz=rate_hz)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
    ax1.plot(res["t_ms"], res["x"], label="x (resources)", color="tab:blue")
    ax1.plot(res["t_ms"], res["u"], label="u (utilisation)", color="tab:orange")
    ax1.stem(res["spike_times_ms"].numpy(), res["amplitudes"].numpy(), linefmt="k-", markerfmt="ko", basefmt=" ",
             label="release r = u x")
    ax1.set_xlabel("time (ms)")
    ax1.set_ylabel("x, u, r (fraction)")
    ax1.set_ylim(0.0, 1.05)
    ax1.set_title(f"U={U:g}, tau_d={tau_d_ms:g} ms, tau_f={tau_f_ms:g} ms, {rate_hz:g} Hz", fontsize=10)
    ax1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.22), ncol=3, frameon=False)
    rates = torch.logspace(0, 2, 40)
    r_star = [tm_steady_state(float(f), params=params)[2] for f in rates]
    ax2.loglog(rates, r_star, label="closed form r*", color="k")
    ax2.loglog(rates, [r * float(f) for r, f in zip(r_star, rates)], label="r* x rate (transmitted)", color="grey",
               linestyle="--")
    ax2.set_xlabel("input rate (Hz)")
    ax2.set_ylabel("r* (fraction); r* x rate (Hz)")
    ax2.set_title("steady state vs rate", fontsize=10)
    ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.22), ncol=2, frameon=False)
    fig.tight_layout()
    return fig
