"""Plasticity sites: the weight a local rule changes and where it reads the spikes on either side.

A rule that attaches to a model (forward hooks, as :class:`snnlab.plasticity.dassdp.DASSDP` does) can
find a plain ``Linear`` or 1x1 ``Conv2d`` by its module name: its input is the pre-synaptic activity
and its output the post-synaptic one. Some synapses are not like that: their neurons sit in other
modules (the post-synaptic neuron of a residual block's projection is the first neuron of the next
block). A model names such sites itself, so that the rule never imports the model:

* ``model.plasticity_sites``: the tuple of names it offers (e.g. ``("dssa_proj",)`` for
  :class:`snnlab.models.spikingresformer.SpikingResformer`);
* ``model.plasticity_site(name, tap=...)``: the :class:`PlasticitySite` of that name.

A *tap* is ``(module, "input" | "output")``: the activity a forward hook reads there. ``tap=`` picks
which neurons stand for the synapse's two sides: ``"synapse"`` (the spiking neurons that feed the
weight and read its output) or ``"block"`` (the input and output of the block that holds the weight).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..utils import check_choice

#: Which neurons stand for a named site's pre- and post-synaptic side (see the module docstring).
TAPS = ("block", "synapse")
#: The activity a tap reads: the hooked module's input or output.
SIDES = ("input", "output")
#: How recorded activity ``[T, B, C(, H, W)]`` becomes one 0/1 indicator per row and unit: ``"any"``
#: (positive at some step; a conv map positive anywhere), ``"time_mean"`` (time-averaged value
#: positive) or ``"position"`` (every position of a conv map its own row: one synapse per position).
READOUTS = ("any", "time_mean", "position")


@dataclass(frozen=True, eq=False)
class PlasticitySite:
    """One plastic weight of a model and where its pre- and post-synaptic activity is read.

    Attributes:
        weight: the parameter the rule changes in place, ``[C_out, C_in]`` or ``[C_out, C_in, 1, 1]``.
        pre: ``(module, "input" | "output")`` whose activity is the pre-synaptic side.
        post: ``(module, "input" | "output")`` whose activity is the post-synaptic side.
        readout: one of :data:`READOUTS`.
    """

    weight: torch.Tensor
    pre: tuple[nn.Module, str]
    post: tuple[nn.Module, str]
    readout: str = "any"

    def __post_init__(self):
        if not isinstance(self.weight, torch.Tensor):
            raise ValueError(f"weight must be a tensor, got {type(self.weight).__name__}")
        for name in ("pre", "post"):
            tap = getattr(self, name)
            if not (isinstance(tap, tuple) and len(tap) == 2 and isinstance(tap[0], nn.Module)):
                raise ValueError(f"{name} must be a (module, 'input' | 'output') pair, got {tap!r}")
            check_choice(f"{name}[1]", tap[1], SIDES)
        check_choice("readout", self.readout, READOUTS)
