"""The small spiking classifier that ``learning.ewc``, ``learning.federated`` and ``learning.evolution``
share: 8x8 digits as a constant input current for ``n_steps`` steps into a hidden layer of LIF neurons
(:func:`snnlab.neurons.lif_step`, reset by subtraction, detached), read out by leaky non-spiking output
units (:func:`snnlab.neurons.leaky_integrator_step`) whose potential averaged over time gives the
logits; trained by BPTT with the ATan surrogate gradient (:func:`snnlab.neurons.atan_spike`, which
works under ``torch.func.vmap``: EWC's per-sample Fisher vmaps this model). The spike function sees
the distance to threshold v - theta (spikingjelly's convention, not divided by theta).

Weights may carry leading population dimensions (:func:`spiking_mlp_forward`), so a whole population
of networks runs in one batched forward pass (the genetic algorithm of ``learning.evolution``).
Used by ``notebooks/07_structural_continual_federated_evolution.ipynb``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from ..neurons import atan_spike, leaky_integrator_step, lif_decay, lif_step
from ..utils import check_float, check_int

__all__ = ["SpikingMLPConfig", "spiking_mlp_forward", "flatten_images", "SpikingMLP"]


@dataclass(frozen=True)
class SpikingMLPConfig:
    """Shape and dynamics of :class:`SpikingMLP`.

    Attributes:
        n_in: inputs (64 for 8x8 digits). n_hidden: LIF neurons. n_out: output units (classes).
        n_steps: simulation steps T. dt_ms: step, ms. tau_mem_ms: membrane time constant, ms.
        threshold: LIF threshold. surrogate_alpha: ATan sharpness alpha.
    """

    n_in: int = 64
    n_hidden: int = 64
    n_out: int = 10
    n_steps: int = 8
    dt_ms: float = 1.0
    tau_mem_ms: float = 10.0
    threshold: float = 1.0
    surrogate_alpha: float = 2.0

    def __post_init__(self):
        for name in ("n_in", "n_hidden", "n_out", "n_steps"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("dt_ms", "tau_mem_ms", "threshold", "surrogate_alpha"):
            check_float(name, getattr(self, name), minimum=0.0, strict_minimum=True)


def spiking_mlp_forward(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                        b2: torch.Tensor, *, config: SpikingMLPConfig) -> torch.Tensor:
    """Logits of the spiking MLP; weights may carry leading population dimensions ``[P, ...]``.

    With beta = e^{-dt/tau_mem}, for t = 1..T::

        v_t = beta v_{t-1} + W1 x + b1 ;  s_t = H(v_t - theta) ;  v_t <- v_t - theta sg(s_t)
        u_t = beta u_{t-1} + W2 s_t + b2 ;  logits = (1/T) sum_t u_t

    Args:
        x: input currents, ``[B, n_in]``.
        w1: ``[..., n_hidden, n_in]``; b1: ``[..., n_hidden]``; w2: ``[..., n_out, n_hidden]``;
        b2: ``[..., n_out]`` (``...`` = optional population dims, shared by all four).
        config: :class:`SpikingMLPConfig`.
    Returns:
        logits ``[..., B, n_out]``.
    """
    beta = lif_decay(config.tau_mem_ms, config.dt_ms)
    spike_fn = functools.partial(atan_spike, alpha=config.surrogate_alpha)
    current = x @ w1.transpose(-1, -2) + b1.unsqueeze(-2)
    v = torch.zeros_like(current)
    u = None
    total = 0.0
    for _ in range(config.n_steps):
        s, _, v = lif_step(current, v, alpha=beta, v_threshold=config.threshold, reset="subtract", spike_fn=spike_fn,
                           scale_by_threshold=False)
        out = s @ w2.transpose(-1, -2) + b2.unsqueeze(-2)
        u = out if u is None else leaky_integrator_step(out, u, alpha=beta)
        total = total + u
    return total / config.n_steps


def flatten_images(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` images -> ``[N, C*H*W]`` (a 2-D input passes through)."""
    return x.reshape(x.shape[0], -1) if x.dim() > 2 else x


class SpikingMLP(torch.nn.Module):
    """The small spiking classifier (see :func:`spiking_mlp_forward`); input images or ``[B, n_in]``.

    The weights are drawn on the CPU from ``seed`` and then moved to ``device``, so every device
    starts from the same network."""

    def __init__(self, config: SpikingMLPConfig = SpikingMLPConfig(), *, seed: int = 0,
                 device: str | torch.device = "cpu"):
        super().__init__()
        self.config = config
        gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        # input currents of order 1 so that hidden neurons fire from the first steps on
        self.w1 = torch.nn.Parameter(torch.randn(config.n_hidden, config.n_in, generator=gen)
                                     * (2.0 / math.sqrt(config.n_in)))
        self.b1 = torch.nn.Parameter(torch.zeros(config.n_hidden))
        self.w2 = torch.nn.Parameter(torch.randn(config.n_out, config.n_hidden, generator=gen)
                                     / math.sqrt(config.n_hidden))
        self.b2 = torch.nn.Parameter(torch.zeros(config.n_out))
        self.to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = flatten_images(x)
        if x.shape[-1] != self.config.n_in:
            raise ValueError(f"x must have {self.config.n_in} features, got shape {tuple(x.shape)}")
        return spiking_mlp_forward(x, self.w1, self.b1, self.w2, self.b2, config=self.config)
