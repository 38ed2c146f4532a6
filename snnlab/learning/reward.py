"""Reward-modulated STDP with eligibility traces at network scale, on a task where reward is delayed.

The three factors: presynaptic spikes, postsynaptic spikes, and a neuromodulator that arrives *later*.
STDP does not change the weight directly; it tags the synapse with an eligibility trace that decays
slowly, and a dopamine signal turns whatever tag is left into a weight change. This is Izhikevich's
(2007, Cerebral Cortex 17:2443, doi:10.1093/cercor/bhl152, eqs. 1-3) answer to the distal-reward
problem, written with the Florian (2007) rules of :mod:`snnlab.plasticity.florian`:

    z_ij(t) = z_ij(t-dt) e^{-dt/tau_z} + zeta_ij(t) / tau_z        (MSTDPET eligibility, Izhikevich's c)
    d(t)    = d(t-dt) e^{-dt/tau_da} + R(t)                          (dopamine: R = reward pulses)
    dw_ij   = gamma dt d(t) z_ij(t)                                  (Izhikevich's s' = c d)

i.e. Florian's MSTDPET with the reward r(t) = d(t), the dopamine concentration (Izhikevich: tau_c = 1 s,
tau_da = 200 ms). With ``rule="mstdp"`` there is no eligibility trace: dw = gamma d(t) zeta(t), so
only spikes that coincide with dopamine count: the control that fails when reward is late.

The delayed-reward task that notebook ``06_three_factor_homeostasis_stp`` trains with this rule, and
its figures, live in :mod:`snnlab.experiments.reward`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..plasticity.florian import FlorianParams, FlorianState, init_state, mstdp_step, mstdpet_step
from ..utils import check_choice, check_float, check_int

__all__ = [
    "DopamineParams",
    "RSTDPState",
    "rstdp_init",
    "dopamine_step",
    "rstdp_step",
    "RewardModulatedSTDP",
    "DEFAULT_RULE",
]

RULES = ("mstdpet", "mstdp")

#: Florian traces (tau+ = tau- = 20 ms, balanced A+ = -A-: uncorrelated firing tags nothing on
#: average) with Izhikevich's tau_c = 1 s eligibility; weights kept in [0, 0.1].
DEFAULT_RULE = FlorianParams(a_plus=1.0, a_minus=-1.0, tau_plus_ms=20.0, tau_minus_ms=20.0, tau_z_ms=1000.0,
                             gamma=0.06, w_min=0.0, w_max=0.1)


@dataclass(frozen=True)
class DopamineParams:
    """The neuromodulator: ``d <- d e^{-dt/tau_da} + R``; the rule sees ``d - baseline``.

    Attributes:
        tau_da_ms: decay of the dopamine concentration, ms, > 0. Izhikevich (2007) used 200 ms; the
            default here is 100 ms, so that one trial's dopamine has decayed to e^{-3} = 0.05 when the
            next stimulus of notebook 06's task starts (300 ms later). That is not nothing: the
            no-eligibility control (MSTDP) makes almost all its weight change from this remainder
            meeting the next stimulus (notebook 06, Section 2; ``weight_change_split``).
        baseline: tonic level subtracted before modulating (0: only rewards move weights).
    """

    tau_da_ms: float = 100.0
    baseline: float = 0.0

    def __post_init__(self):
        check_float("tau_da_ms", self.tau_da_ms, minimum=0.0, strict_minimum=True)
        check_float("baseline", self.baseline)


class RSTDPState(NamedTuple):
    """Florian traces/eligibility (:class:`~snnlab.plasticity.florian.FlorianState`) and dopamine d (scalar)."""

    florian: FlorianState
    dopamine: torch.Tensor


def rstdp_init(batch_size: int, n_pre: int, n_post: int, *, rule: str = "mstdpet", dtype=torch.float32,
               device=None) -> RSTDPState:
    """Zero traces, zero eligibility and zero dopamine."""
    check_choice("rule", rule, RULES)
    return RSTDPState(init_state(batch_size, n_pre, n_post, rule=rule, dtype=dtype, device=device),
                      torch.zeros((), dtype=dtype, device=device))


def dopamine_step(d: torch.Tensor, reward_pulse, *, params: DopamineParams, dt: float) -> torch.Tensor:
    """``d(t) = d(t-dt) e^{-dt/tau_da} + R(t)`` (exact decay; R is the reward delivered this step)."""
    return d * math.exp(-dt / params.tau_da_ms) + reward_pulse


def rstdp_step(pre: torch.Tensor, post: torch.Tensor, state: RSTDPState, w: torch.Tensor, *, reward_pulse=0.0,
               rule: str = "mstdpet", params: FlorianParams = DEFAULT_RULE,
               dopamine: DopamineParams = DopamineParams(), dt: float = 1.0) -> tuple[torch.Tensor, RSTDPState]:
    """One step of dopamine-modulated STDP on a whole ``[n_post, n_pre]`` projection.

    Discrete update (Izhikevich 2007 eqs. 1-3 in Florian's form)::

        d(t)  = d(t-dt) e^{-dt/tau_da} + R(t)
        "mstdpet": z(t) = z(t-dt) e^{-dt/tau_z} + zeta(t)/tau_z ;  dw = gamma dt (d(t) - d0) z(t)
        "mstdp":   dw = gamma (d(t) - d0) zeta(t)

    with zeta the Florian point eligibility (:func:`snnlab.plasticity.florian.point_eligibility`),
    traces, ordering and bounds as set by ``params``.

    Args:
        pre: presynaptic spikes, 0/1, ``[B, n_pre]``.  post: postsynaptic spikes, ``[B, n_post]``.
        state: :class:`RSTDPState`.  w: weights ``[n_post, n_pre]`` (read for the bounds).
        reward_pulse: R(t), the reward delivered at this step (scalar, dimensionless; 0 most steps).
        rule: ``"mstdpet"`` (with eligibility trace) or ``"mstdp"`` (without).
        params: :class:`~snnlab.plasticity.florian.FlorianParams` (A+-, tau+-, tau_z, gamma, bounds).
        dopamine: :class:`DopamineParams`.  dt: time step, ms.
    Returns:
        ``(dw, new_state)``: dw ``[n_post, n_pre]`` (not applied here).
    Reference: Izhikevich 2007; Florian 2007 (doi:10.1162/neco.2007.19.6.1468). Notebook 06.
    """
    check_choice("rule", rule, RULES)
    d = dopamine_step(state.dopamine, reward_pulse, params=dopamine, dt=dt)
    modulator = d - dopamine.baseline
    step = mstdpet_step if rule == "mstdpet" else mstdp_step
    dw, florian = step(pre, post, state.florian, w, reward=modulator, params=params, dt=dt)
    return dw, RSTDPState(florian, d)


class RewardModulatedSTDP(torch.nn.Module):
    """Stateful wrapper of :func:`rstdp_step` for one projection (traces, eligibility, dopamine as buffers)."""

    def __init__(self, n_pre: int, n_post: int, *, rule: str = "mstdpet", params: FlorianParams = DEFAULT_RULE,
                 dopamine: DopamineParams = DopamineParams(), dt: float = 1.0):
        super().__init__()
        self.n_pre = check_int("n_pre", n_pre, minimum=1)
        self.n_post = check_int("n_post", n_post, minimum=1)
        self.rule = check_choice("rule", rule, RULES)
        self.params, self.dopamine, self.dt = params, dopamine, check_float("dt", dt, minimum=0.0, strict_minimum=True)
        self.state: RSTDPState | None = None

    def reset(self, batch_size: int = 1) -> None:
        """Zero traces, eligibility and dopamine for a batch of ``batch_size``."""
        self.state = rstdp_init(batch_size, self.n_pre, self.n_post, rule=self.rule)

    @torch.no_grad()
    def step(self, pre: torch.Tensor, post: torch.Tensor, w: torch.Tensor, reward_pulse=0.0) -> torch.Tensor:
        """Advance one step and return ``dw`` (the caller adds it to ``w``)."""
        if self.state is None:
            raise RuntimeError("call reset(batch_size) before the first step")
        dw, self.state = rstdp_step(pre, post, self.state, w, reward_pulse=reward_pulse, rule=self.rule,
                                    params=self.params, dopamine=self.dopamine, dt=self.dt)
        return dw
