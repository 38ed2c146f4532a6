"""A recurrent LIF/ALIF spiking network with a leaky readout: the model that BPTT, truncated BPTT and
e-prop (``snnlab.learning.bptt``, ``snnlab.learning.eprop``) train.

One network, one explicit time loop, so the three learning algorithms see exactly the same forward
pass. The neurons are :func:`snnlab.neurons.alif_step` (soft reset, equal to spikingjelly's
``neuron.LIFNode(decay_input=False, v_reset=None)`` for beta = 0) with an optional adaptive threshold
(ALIF, Bellec et al. 2018/2020); spikes go through a surrogate spike function
(:func:`snnlab.neurons.make_surrogate`: ATan or Sigmoid), whose derivative is the
"pseudo-derivative" psi of e-prop.

Discrete update (dt explicit, alpha = exp(-dt/tau_mem), rho = exp(-dt/tau_adapt),
kappa = exp(-dt/tau_out)), for hidden neuron j at step t:

    a_t   = rho a_{t-1} + z_{t-1}                              (threshold adaptation, ALIF)
    h_t   = alpha v_{t-1} + W_in x_t + W_rec z_{t-1}           (charge; h is the pre-reset potential)
    z_t   = sg((h_t - A_t) / v_th),   A_t = v_th + beta a_t     (fire; Heaviside forward, surrogate back)
    v_t   = h_t - v_th z_t                                     (soft reset; z detached if detach_reset)
    y_t   = kappa y_{t-1} + W_out z_t + b_out                  (leaky linear readout)

References: Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass (2020) "A solution to the
learning dilemma for recurrent networks of spiking neurons", Nat. Commun. 11:3625,
doi:10.1038/s41467-020-17236-y (Methods, LIF and ALIF models); Neftci, Mostafa & Zenke (2019)
surrogate gradients, doi:10.1109/MSP.2019.2931595. The sequence tasks, the loss and the evaluation
live in ``snnlab.learning.recurrent``. Used by ``notebooks/04_bptt_tbptt_eprop.ipynb``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn

from ..neurons import SURROGATES, alif_step, leaky_integrator_step, make_surrogate
from ..utils import check_choice, check_float, check_int

NEURONS = ("lif", "alif")

__all__ = ["NEURONS", "RSNNParams", "RSNNState", "StepRecord", "rsnn_step", "RSNNOutput", "RecurrentSNN",
           "check_sequence"]


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class RSNNParams:
    """Parameters of a recurrent spiking network (time in ms).

    Attributes:
        n_in, n_hidden, n_out: numbers of input channels, hidden neurons and readout units.
        neuron: ``"lif"`` or ``"alif"`` (adaptive threshold A_t = v_th + beta a_t).
        tau_mem_ms: membrane time constant tau_m (alpha = exp(-dt/tau_m)).
        tau_adapt_ms: threshold-adaptation time constant tau_a (rho = exp(-dt/tau_a)); ALIF only.
        beta_adapt: adaptation strength beta (threshold units per spike); ALIF only.
        tau_out_ms: readout time constant (kappa = exp(-dt/tau_out)); 0 gives a memoryless readout.
        v_threshold: firing threshold v_th (also the soft-reset amount).
        dt_ms: time step dt.
        surrogate: ``"atan"`` (:class:`snnlab.neurons.ATan`) or ``"sigmoid"`` (spikingjelly's Sigmoid).
        surrogate_alpha: the surrogate's slope parameter (spikingjelly's ``alpha``).
        recurrent: whether hidden neurons are recurrently connected (no autapses).
        detach_reset: stop the gradient through the reset term (spikingjelly's ``detach_reset``;
            e-prop assumes it).
        detach_recurrent: stop the gradient through recurrent spikes W_rec z_{t-1}; with this,
            BPTT computes exactly what e-prop computes (Bellec et al. 2020, "stop_z_gradients").
    """

    n_in: int
    n_hidden: int
    n_out: int
    neuron: str = "lif"
    tau_mem_ms: float = 20.0
    tau_adapt_ms: float = 200.0
    beta_adapt: float = 0.2
    tau_out_ms: float = 20.0
    v_threshold: float = 1.0
    dt_ms: float = 1.0
    surrogate: str = "atan"
    surrogate_alpha: float = 2.0
    recurrent: bool = True
    detach_reset: bool = True
    detach_recurrent: bool = False

    def __post_init__(self):
        for name in ("n_in", "n_hidden", "n_out"):
            check_int(name, getattr(self, name), minimum=1)
        check_choice("neuron", self.neuron, NEURONS)
        check_float("tau_mem_ms", self.tau_mem_ms, minimum=0.0, strict_minimum=True)
        check_float("tau_adapt_ms", self.tau_adapt_ms, minimum=0.0, strict_minimum=True)
        check_float("beta_adapt", self.beta_adapt, minimum=0.0)
        check_float("tau_out_ms", self.tau_out_ms, minimum=0.0)
        check_float("v_threshold", self.v_threshold, minimum=0.0, strict_minimum=True)
        check_float("dt_ms", self.dt_ms, minimum=0.0, strict_minimum=True)
        check_choice("surrogate", self.surrogate, SURROGATES)
        check_float("surrogate_alpha", self.surrogate_alpha, minimum=0.0, strict_minimum=True)
        for name in ("recurrent", "detach_reset", "detach_recurrent"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def alpha(self) -> float:
        """Membrane decay per step, exp(-dt/tau_mem)."""
        return math.exp(-self.dt_ms / self.tau_mem_ms)

    @property
    def rho(self) -> float:
        """Threshold-adaptation decay per step, exp(-dt/tau_adapt)."""
        return math.exp(-self.dt_ms / self.tau_adapt_ms)

    @property
    def kappa(self) -> float:
        """Readout decay per step, exp(-dt/tau_out) (0 when tau_out_ms = 0)."""
        return 0.0 if self.tau_out_ms == 0 else math.exp(-self.dt_ms / self.tau_out_ms)

    @property
    def beta(self) -> float:
        """Effective adaptation strength: beta_adapt for ALIF, 0 for LIF."""
        return self.beta_adapt if self.neuron == "alif" else 0.0


# --------------------------------------------------------------------------- state and step
class RSNNState(NamedTuple):
    """Network state after a step: post-reset potential v, adaptation a, spikes z [B, n_hidden];
    readout y [B, n_out]."""

    v: torch.Tensor
    a: torch.Tensor
    z: torch.Tensor
    y: torch.Tensor


class StepRecord(NamedTuple):
    """What one step produced: spikes z, pre-reset potential h, threshold A [B, H]; readout y [B, K]."""

    z: torch.Tensor
    h: torch.Tensor
    threshold: torch.Tensor
    y: torch.Tensor


def rsnn_step(x_t: torch.Tensor, state: RSNNState, w_in: torch.Tensor, w_rec: torch.Tensor | None,
              w_out: torch.Tensor, b_out: torch.Tensor, *, params: RSNNParams, spike_fn
              ) -> tuple[StepRecord, RSNNState]:
    """One time step of the recurrent LIF/ALIF network (module docstring has the equations).

    Args:
        x_t: input x_t [B, n_in] (currents or 0/1 spikes).
        state: previous :class:`RSNNState`.
        w_in: W_in [n_hidden, n_in]; w_rec: W_rec [n_hidden, n_hidden] with a zero diagonal, or None.
        w_out: W_out [n_out, n_hidden]; b_out: b_out [n_out].
        params: :class:`RSNNParams`; spike_fn: a surrogate spike function (:func:`snnlab.neurons.make_surrogate`).
    Returns:
        (:class:`StepRecord`, new :class:`RSNNState`).
    """
    p = params
    current = x_t @ w_in.t()
    if w_rec is not None:
        z_rec = state.z.detach() if p.detach_recurrent else state.z
        current = current + z_rec @ w_rec.t()
    z, h, threshold, v, a = alif_step(current, state.v, state.a, state.z, alpha=p.alpha, rho=p.rho, beta=p.beta,
                                      v_threshold=p.v_threshold, spike_fn=spike_fn, detach_reset=p.detach_reset)
    y = leaky_integrator_step(z @ w_out.t(), state.y, alpha=p.kappa) + b_out
    return StepRecord(z, h, threshold, y), RSNNState(v, a, z, y)


class RSNNOutput(NamedTuple):
    """Histories over a sequence, time first: y [T, B, K], z/h/threshold [T, B, H]; final state."""

    y: torch.Tensor
    z: torch.Tensor
    h: torch.Tensor
    threshold: torch.Tensor
    state: RSNNState


class RecurrentSNN(nn.Module):
    """A recurrent LIF/ALIF network with a leaky linear readout; a thin wrapper around :func:`rsnn_step`.

    Parameters ``w_in`` [H, I], ``w_rec`` [H, H] (when ``params.recurrent``; its diagonal is masked
    to zero in the forward pass), ``w_out`` [K, H], ``b_out`` [K]. Initialisation is seeded through
    ``generator``: W_in ~ N(0, (in_gain/sqrt(I))^2), W_rec ~ N(0, (rec_gain/sqrt(H))^2),
    W_out ~ N(0, (1/sqrt(H))^2), b_out = 0, drawn on the CPU (from ``generator``, or torch's global
    CPU generator) and then moved to ``device``, so every device starts from the same weights.
    """

    def __init__(self, params: RSNNParams, *, generator: torch.Generator | None = None,
                 in_gain: float = 1.0, rec_gain: float = 0.5, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu"):
        super().__init__()
        if not isinstance(params, RSNNParams):
            raise ValueError(f"params must be an RSNNParams, got {type(params).__name__}")
        check_float("in_gain", in_gain, minimum=0.0)
        check_float("rec_gain", rec_gain, minimum=0.0)
        self.params = params
        self.spike_fn = make_surrogate(params.surrogate, params.surrogate_alpha)
        i, h, k = params.n_in, params.n_hidden, params.n_out

        def randn(*shape):
            return torch.randn(*shape, generator=generator, dtype=dtype)

        self.w_in = nn.Parameter(randn(h, i) * (in_gain / math.sqrt(i)))
        if params.recurrent:
            self.w_rec = nn.Parameter(randn(h, h) * (rec_gain / math.sqrt(h)))
            self.register_buffer("rec_mask", 1.0 - torch.eye(h, dtype=dtype))
        else:
            self.register_parameter("w_rec", None)
            self.register_buffer("rec_mask", None)
        self.w_out = nn.Parameter(randn(k, h) / math.sqrt(h))
        self.b_out = nn.Parameter(torch.zeros(k, dtype=dtype))
        self.to(device)

    def masked_w_rec(self) -> torch.Tensor | None:
        """W_rec with its diagonal set to zero (no autapses), or None for a feed-forward layer."""
        return None if self.w_rec is None else self.w_rec * self.rec_mask

    def init_state(self, batch_size: int) -> RSNNState:
        """All-zero state for a batch of ``batch_size`` sequences."""
        check_int("batch_size", batch_size, minimum=1)
        ref = self.w_in
        zeros_h = ref.new_zeros(batch_size, self.params.n_hidden)
        return RSNNState(zeros_h, zeros_h.clone(), zeros_h.clone(), ref.new_zeros(batch_size, self.params.n_out))

    def step(self, x_t: torch.Tensor, state: RSNNState) -> tuple[StepRecord, RSNNState]:
        """One step (see :func:`rsnn_step`)."""
        return rsnn_step(x_t, state, self.w_in, self.masked_w_rec(), self.w_out, self.b_out,
                         params=self.params, spike_fn=self.spike_fn)

    def forward(self, x: torch.Tensor, state: RSNNState | None = None) -> RSNNOutput:
        """Run the explicit time loop over ``x`` [T, B, n_in]; returns :class:`RSNNOutput`."""
        check_sequence(x, self.params.n_in)
        if state is None:
            state = self.init_state(x.shape[1])
        records = []
        for t in range(x.shape[0]):
            record, state = self.step(x[t], state)
            records.append(record)
        stacked = [torch.stack(items) for items in zip(*records)]
        return RSNNOutput(stacked[3], stacked[0], stacked[1], stacked[2], state)


def check_sequence(x, n_in: int) -> None:
    """Raise ValueError unless ``x`` is a float tensor [T, B, n_in]."""
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != n_in:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor [T, B, {n_in}] (time first), got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
