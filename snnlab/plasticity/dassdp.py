"""DA-SSDP: dopamine-gated spike-synchrony-dependent plasticity, added on top of gradient training.

For a weight ``W`` [C_out, C_in] (a linear layer or a 1x1 convolution) and a batch of B samples, each
sample b gives, per unit, a spike indicator (did it fire in the T steps) and a latency (step index of
its first -- or, as the released code does, its last -- spike; T when silent). At a 1x1 convolution
read per position (``dssa_tap="synapse"``) every position p is a synapse of the shared weight, and
b runs over (sample, position) pairs::

    l_boi   = post_bo pre_bi                                   coincidence
    g_boi   = exp(-(t_post_bo - t_pre_bi)^2 / (2 sigma^2))     timing kernel (sigma in time steps)
    phi_boi = g_boi (A+ l_boi - A- (1 - l_boi))                potentiation / baseline depression
    S_b     = mean_{o,i} l_boi                                 batch synchrony
    G_b     = clip(1 + k (S_b - mu_S) / sd_S, 0, 2)            dopamine gate
    dW      = clip(mean_b G_b phi_boi, -1, 1)                  added to W after the optimizer step

During ``warmup_epochs`` nothing is added; the pairs (S_b, loss_b) are summarised by their moments.
At the first step after warm-up the gate is fitted once: ``k = -corr(S, loss)``, ``mu_S``, ``sd_S``.

Reference: DA-SSDP (TMLR; arXiv:2512.07194) and its public code (NeuroSyd/DA-SSDP,
``SSDP-V5/model/train.py`` and ``models/spikingresformer.py``).

``variant="released"`` is the public code, line for line where it decides a number:

* classifier site: ``pre = (x.mean(0) > 0)`` of the pooled features and ``post = (logits.mean(0) > 0)``
  (``classifier_readout="time_mean"``); latencies from the per-step signs, T when silent;
* DSSA site: the first DSSA block of the last stage, read at the *block* input and output, a channel
  "spiking" when positive anywhere on its map (``dssa_tap="block"``); latency
  ``cumsum(0).argmax(0)``, i.e. the *last* spike (``latency="last"``), and 0 for a silent unit, the
  argmax of an all-zero cumsum (``dssa_silent_latency="zero"``);
* gate data: the *batch-mean* loss repeated once per sample (``gate_loss="batch"``), so k correlates each
  sample's synchrony with its batch's loss; A- = A_b = 5e-4.

``variant="paper"`` follows the text. The sentences it rests on (arXiv:2512.07194, abstract): "The rule
stores only binary spike indicators and first-spike latencies with a Gaussian kernel" -> indicators are
spikes of spiking neurons and latencies are first spikes (``latency="first"``); "minor weight
adjustments driven by concurrent spike firing" -> a coincidence is a pre- and a post-synaptic neuron
that both fire, so at the DSSA projection (a 1x1 convolution, one synapse per position) pre is the
LIF that feeds ``W_proj`` and post the LIF that reads its output (the next block's input LIF), compared
position by position (``dssa_tap="synapse"``); the per-sample loss is paired with the per-sample
synchrony (``gate_loss="sample"``); A- = 1e-4 (the text's value). The classifier's input in this
architecture is a time series of pooled real values, not spikes, and the text gives no rule for it; the
paper variant takes the released code's reading (``classifier_readout="time_mean"``), which marks about
half the units active. Reading "fired at least once" as "positive at some step" (``"any"``) marks 70-94%
of them and pushes every classifier weight up (cumulative mean dW +0.15 in a 4-epoch nano run on
mnist5k, about 7 times the initial weights' sd): the uniform drift this module avoids elsewhere. The
paper's learnable sigma is kept fixed (a hyperparameter, not a weight).

Under DDP the released code lets replicas drift apart; ``ddp_sync`` (on in both variants) all-reduces
the statistics so every rank adds the same dW. ``control="random"`` replaces each dW by a random matrix
of the same Frobenius norm (seeded): the control that keeps the size of the perturbation and removes
its structure.

Used by ``snnlab train`` (``dassdp:`` config section) and notebook 03_da_ssdp_spikingresformer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn as nn

from ..utils import check_choice, check_float, check_int
from .sites import TAPS

VARIANTS = ("released", "paper")
LATENCIES = ("first", "last")
GATES = ("fitted", "constant")
READOUTS = ("any", "time_mean")
GATE_LOSSES = ("sample", "batch")
SILENT_LATENCIES = ("T", "zero")
CONTROLS = ("none", "random")


# --------------------------------------------------------------------------- pure functions
def ssdp_delta(pre, post, t_pre, t_post, gate, a_plus, a_minus, sigma) -> torch.Tensor:
    """The DA-SSDP weight change for one batch (the reference form, O(B C_out C_in) memory).

    ``dW_oi = clip(mean_b G_b exp(-(t_post_bo - t_pre_bi)^2 / (2 sigma^2)) (A+ l_boi - A- (1 - l_boi)), -1, 1)``
    with ``l_boi = post_bo pre_bi``.

    Args:
        pre: pre-synaptic spike indicators ``pre_bi`` in {0, 1}, [B, C_in].
        post: post-synaptic spike indicators ``post_bo``, [B, C_out].
        t_pre: pre-synaptic latencies (time steps), [B, C_in].
        t_post: post-synaptic latencies (time steps), [B, C_out].
        gate: dopamine gate ``G_b``, [B].
        a_plus, a_minus: amplitudes ``A+``, ``A-`` (dimensionless, >= 0).
        sigma: width of the timing kernel (time steps, > 0).

    Returns:
        dW [C_out, C_in].
    """
    pre, post, t_pre, t_post, gate = _check_batch(pre, post, t_pre, t_post, gate)
    check_float("sigma", float(sigma), minimum=0.0, strict_minimum=True)
    l = post[:, :, None] * pre[:, None, :]
    g = torch.exp(-(t_post[:, :, None] - t_pre[:, None, :]) ** 2 / (2.0 * float(sigma) ** 2))
    phi = g * (a_plus * l - a_minus * (1.0 - l))
    return (gate[:, None, None] * phi).mean(0).clamp(-1.0, 1.0)


def fit_gate(synchrony: torch.Tensor, loss: torch.Tensor) -> tuple[float, float, float]:
    """Fit the dopamine gate once: ``k = -corr(S, loss)`` (Pearson), ``mu`` and population ``sd`` of S.

    Args:
        synchrony: batch synchrony values ``S_b`` [N]; loss: matching losses [N] (N >= 2).
    Returns:
        ``(k, mu, sd)`` as floats. A constant S or loss has no correlation: k = 0.
    """
    s = torch.as_tensor(synchrony, dtype=torch.float64).flatten()
    l = torch.as_tensor(loss, dtype=torch.float64).flatten()
    if s.numel() != l.numel() or s.numel() < 2:
        raise ValueError(f"synchrony and loss must be 1-D with the same length >= 2, got {s.numel()} and {l.numel()}")
    n = s.numel()
    return gate_from_moments(GateMoments(float(n), float(s.sum()), float((s * s).sum()), float(l.sum()),
                                         float((l * l).sum()), float((s * l).sum())))


def dopamine_gate(synchrony: torch.Tensor, k: float, mu: float, sd: float) -> torch.Tensor:
    """``G = clip(1 + k (S - mu) / sd, 0, 2)``; with ``sd == 0`` every z-score is 0, so G = 1."""
    s = torch.as_tensor(synchrony)
    if not math.isfinite(float(sd)) or float(sd) < 0:
        raise ValueError(f"sd must be a finite number >= 0, got {sd!r}")
    if float(sd) == 0.0:
        return torch.ones_like(s, dtype=torch.float32 if not s.is_floating_point() else s.dtype)
    return (1.0 + float(k) * (s - float(mu)) / float(sd)).clamp(0.0, 2.0)


def spike_latency(spikes: torch.Tensor, mode: str = "first", *, silent: str = "T") -> torch.Tensor:
    """Latency (time-step index) of each unit's first or last spike.

    Args:
        spikes: ``[T, ...]`` spike indicators (anything > 0 counts as a spike).
        mode: ``"first"`` (the paper) or ``"last"`` (what the released ``cumsum().argmax()`` computes).
        silent: the latency of a unit that never fires: ``"T"`` (after the window) or ``"zero"`` (what
            ``cumsum().argmax()`` of an all-zero column gives, at the released DSSA site).
    Returns:
        float tensor ``[...]``.
    """
    check_choice("mode", mode, LATENCIES)
    check_choice("silent", silent, SILENT_LATENCIES)
    s = spikes > 0
    T = s.shape[0]
    steps = torch.arange(T, device=s.device).view(T, *([1] * (s.dim() - 1)))
    if mode == "first":
        t = torch.where(s, steps, T).amin(0)
    else:
        t = torch.where(s, steps, -1).amax(0)
        t = torch.where(t < 0, T, t)
    if silent == "zero":
        t = torch.where(s.any(0), t, 0)
    return t.float()


class GateMoments(NamedTuple):
    """Sufficient statistics of (S, loss) pairs: count and the sums of S, S^2, L, L^2, S L."""

    n: float
    s: float
    ss: float
    l: float
    ll: float
    sl: float


def gate_from_moments(m: GateMoments) -> tuple[float, float, float]:
    """``(k, mu, sd)`` from :class:`GateMoments` (identical to :func:`fit_gate` on the raw pairs)."""
    if m.n < 2:
        raise ValueError(f"the gate needs at least 2 recorded samples, got n={m.n}")
    mu_s, mu_l = m.s / m.n, m.l / m.n
    var_s = max(m.ss / m.n - mu_s**2, 0.0)
    var_l = max(m.ll / m.n - mu_l**2, 0.0)
    cov = m.sl / m.n - mu_s * mu_l
    sd = math.sqrt(var_s)
    # relative tolerance: a variance at rounding level is a constant series (k = 0, not noise / noise)
    tiny_s = var_s <= 1e-12 * max(mu_s**2, 1e-300)
    tiny_l = var_l <= 1e-12 * max(mu_l**2, 1e-300)
    if tiny_s or tiny_l:
        return 0.0, mu_s, 0.0 if tiny_s else sd
    corr = max(-1.0, min(1.0, cov / math.sqrt(var_s * var_l)))
    return -corr, mu_s, sd


def _check_batch(pre, post, t_pre, t_post, gate):
    tensors = [torch.as_tensor(v) for v in (pre, post, t_pre, t_post, gate)]
    pre, post, t_pre, t_post, gate = (t.float() if not t.is_floating_point() else t for t in tensors)
    if pre.dim() != 2 or post.dim() != 2:
        raise ValueError(f"pre and post must be [B, C_in] and [B, C_out], got {tuple(pre.shape)} and {tuple(post.shape)}")
    if t_pre.shape != pre.shape:
        raise ValueError(f"t_pre must have the shape of pre {tuple(pre.shape)}, got {tuple(t_pre.shape)}")
    if t_post.shape != post.shape:
        raise ValueError(f"t_post must have the shape of post {tuple(post.shape)}, got {tuple(t_post.shape)}")
    if pre.shape[0] != post.shape[0] or gate.shape != (pre.shape[0],):
        raise ValueError(f"pre, post and gate must share the batch size; got {pre.shape[0]}, {post.shape[0]}, "
                         f"gate {tuple(gate.shape)}")
    return pre, post, t_pre, t_post, gate


def ssdp_sum_binned(pre, post, t_pre, t_post, gate, a_plus, a_minus, sigma, T) -> torch.Tensor:
    """``sum_b G_b phi_boi`` (no mean, no clip) for integer latencies in {0..T}, without the
    [B, C_out, C_in] tensor: the kernel takes only (T+1)^2 values, so with one-hot latencies
    ``sum_b G_b g_boi x_bo y_bi = sum_{u,v} K_uv sum_b (G_b x_bo [t_post_bo = u]) (y_bi [t_pre_bi = v])``,
    one matmul of [C_out, B (T+1)] by [B (T+1), C_in]. Equal to ``B * ssdp_delta`` before the clip."""
    B, O = post.shape
    I = pre.shape[1]
    steps = torch.arange(T + 1, device=pre.device, dtype=torch.float32)
    kernel = torch.exp(-(steps[:, None] - steps[None, :]) ** 2 / (2.0 * sigma**2))  # [U, V]
    post_oh = (t_post.round().long()[..., None] == torch.arange(T + 1, device=pre.device)).float()  # [B,O,U]
    pre_oh = (t_pre.round().long()[..., None] == torch.arange(T + 1, device=pre.device)).float()    # [B,I,V]
    g = gate.float()[:, None, None]
    left_all = (g * post_oh) @ kernel                                  # [B, O, V]
    left_l = (g * post.float()[..., None] * post_oh) @ kernel          # [B, O, V]
    lhs = torch.cat([left_l, left_all], 1).permute(1, 0, 2).reshape(2 * O, B * (T + 1))
    right_l = (pre.float()[..., None] * pre_oh).permute(0, 2, 1).reshape(B * (T + 1), I)
    right_all = pre_oh.permute(0, 2, 1).reshape(B * (T + 1), I)
    coinc = lhs[:O] @ right_l            # sum_b G g l
    total = lhs[O:] @ right_all          # sum_b G g
    return (a_plus + a_minus) * coinc - a_minus * total


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class DASSDPParams:
    """Settings of the DA-SSDP component (see :func:`variant_params` for the two named variants).

    Attributes:
        a_plus: potentiation amplitude ``A+``; a_minus: baseline depression ``A-`` (``A_b`` in the code).
        sigma: timing-kernel width (time steps). warmup_epochs: epochs without updates (gate data).
        latency: ``"first"`` or ``"last"`` spike. gate: ``"fitted"`` (k from the warm-up) or
        ``"constant"`` (k = 0, G = 1: the control that removes the dopamine signal).
        sites: sites the model names (``model.plasticity_sites``; SpikingResformer: ``"dssa_proj"``, the
        1x1 output projection of the first DSSA block of the last stage) or dotted module names of
        ``Linear`` / 1x1 ``Conv2d`` layers (``"classifier"``), read at their input and output.
        dssa_tap: the ``tap`` asked of a site the model names (:mod:`snnlab.plasticity.sites`): for
        ``dssa_proj``, ``"synapse"`` (pre: the LIF feeding the projection; post: the LIF reading it,
        i.e. the next block's input neuron; per position) or ``"block"`` (the DSSA block's
        input/output, positive anywhere on the map, as released).
        classifier_readout: the classifier's indicators: ``"any"`` (positive at some step) or
        ``"time_mean"`` (time-averaged input / logits positive, as released).
        gate_loss: the loss paired with each sample's synchrony in the warm-up: ``"sample"`` (its own)
            or ``"batch"`` (the batch mean, repeated, as released).
        dssa_silent_latency: latency of a silent unit at the sites the model names (``dssa_proj``), ``"T"``
        or ``"zero"`` (released).
        control: ``"none"`` or ``"random"`` (each dW replaced by seeded noise of the same norm).
        ddp_sync: all-reduce statistics and updates so every rank applies the same dW.
        variant: the name the defaults came from (for the record).
    """

    a_plus: float = 1.5e-3
    a_minus: float = 1e-4
    sigma: float = 1.0
    warmup_epochs: int = 0
    latency: str = "first"
    gate: str = "fitted"
    sites: tuple[str, ...] = ("classifier", "dssa_proj")
    dssa_tap: str = "synapse"
    classifier_readout: str = "time_mean"
    gate_loss: str = "sample"
    dssa_silent_latency: str = "T"
    control: str = "none"
    ddp_sync: bool = True
    variant: str = "paper"

    def __post_init__(self):
        check_float("a_plus", self.a_plus, minimum=0.0)
        check_float("a_minus", self.a_minus, minimum=0.0)
        check_float("sigma", self.sigma, minimum=0.0, strict_minimum=True)
        check_int("warmup_epochs", self.warmup_epochs, minimum=0)
        check_choice("latency", self.latency, LATENCIES)
        check_choice("gate", self.gate, GATES)
        check_choice("dssa_tap", self.dssa_tap, TAPS)
        check_choice("classifier_readout", self.classifier_readout, READOUTS)
        check_choice("gate_loss", self.gate_loss, GATE_LOSSES)
        check_choice("dssa_silent_latency", self.dssa_silent_latency, SILENT_LATENCIES)
        check_choice("control", self.control, CONTROLS)
        check_choice("variant", self.variant, VARIANTS)
        if not isinstance(self.ddp_sync, bool):
            raise ValueError(f"ddp_sync must be a bool, got {self.ddp_sync!r}")
        if isinstance(self.sites, str) or not self.sites or not all(isinstance(s, str) and s for s in self.sites):
            raise ValueError(f"sites must be a non-empty list of site names, got {self.sites!r}")


_VARIANT_DEFAULTS = {
    "released": dict(a_plus=1.5e-3, a_minus=5e-4, sigma=1.0, latency="last", dssa_tap="block",
                     classifier_readout="time_mean", gate_loss="batch", dssa_silent_latency="zero",
                     sites=("classifier", "dssa_proj")),
    "paper": dict(a_plus=1.5e-3, a_minus=1e-4, sigma=1.0, latency="first", dssa_tap="synapse",
                  classifier_readout="time_mean", gate_loss="sample", dssa_silent_latency="T",
                  sites=("classifier", "dssa_proj")),
}


def variant_params(variant: str = "paper", **overrides) -> DASSDPParams:
    """The named variant's parameters, with any field replaced by ``overrides`` (``None`` = keep)."""
    check_choice("variant", variant, VARIANTS)
    unknown = set(overrides) - set(DASSDPParams.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown DA-SSDP option(s) {sorted(unknown)}; allowed: {sorted(DASSDPParams.__dataclass_fields__)}")
    values = {**_VARIANT_DEFAULTS[variant], **{k: v for k, v in overrides.items() if v is not None}}
    if "sites" in values:
        values["sites"] = tuple(values["sites"])
    values["variant"] = variant
    return DASSDPParams(**values)


# --------------------------------------------------------------------------- the component
def _dist_active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class _Site:
    """One plastic weight, where its pre- and post-synaptic signals are read, and how.

    ``pre_tap``/``post_tap`` are ``(module, "input" | "output")``. ``readout`` turns a recorded activity
    into ``(seq [T, N, C] bool, indicator [N, C] float)`` with N = B rows, or B x positions rows for
    ``"position"``: ``"any"`` (positive at some step; a conv map positive anywhere), ``"time_mean"``
    (time-averaged value positive, the released classifier) or ``"position"`` (each position its own row)."""

    def __init__(self, name: str, weight: torch.Tensor, pre_tap, post_tap, *, readout: str = "any",
                 silent: str = "T"):
        self.name, self.weight = name, weight
        self.pre_tap, self.post_tap = pre_tap, post_tap
        self.readout, self.silent = readout, silent
        self.pre: tuple[torch.Tensor, torch.Tensor] | None = None    # (seq, indicator)
        self.post: tuple[torch.Tensor, torch.Tensor] | None = None
        self.drift = 0.0                                                # cumulative mean of applied dW
        self.moments = torch.zeros(6, dtype=torch.float64)              # GateMoments during warm-up
        self.gate: tuple[float, float, float] | None = None             # (k, mu, sd) once fitted


def _readout(x: torch.Tensor, readout: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``[T, B, C]`` or ``[T, B, C, H, W]`` activity -> ``(seq [T, N, C] bool, indicator [N, C] float)``."""
    x = x.detach()
    pos = x > 0
    if readout == "position":
        if pos.dim() != 5:
            raise ValueError(f"a per-position readout needs [T, B, C, H, W] activity, got {tuple(x.shape)}")
        T, B, C = pos.shape[:3]
        seq = pos.flatten(3).permute(0, 1, 3, 2).reshape(T, -1, C)   # rows: sample-major, then position
        return seq, seq.any(0).float()
    if pos.dim() == 5:   # a channel "fires" when positive anywhere on its map (the released convention)
        pos = pos.flatten(3).any(-1)
        x = None
    if readout == "time_mean":
        if x is None:
            raise ValueError("the time-mean readout is defined for [T, B, C] activity")
        return pos, (x.float().mean(0) > 0).float()
    return pos, pos.any(0).float()


class DASSDP:
    """DA-SSDP attached to a model: forward hooks read the sites' spikes, :meth:`step` applies the rule.

    Use::

        plast = DASSDP(model, variant_params("paper", warmup_epochs=5), seed=0)
        for epoch ...:
            plast.set_epoch(epoch)
            for x, y in batches:
                loss_b = criterion(model(x), y)           # per-sample losses [B]
                loss_b.mean().backward(); opt.step(); opt.zero_grad()
                diag = plast.step(loss_b)                 # after the optimizer step

    Sites are found without importing the model: a name in ``model.plasticity_sites`` is resolved by
    ``model.plasticity_site(name, tap=params.dssa_tap)`` (:mod:`snnlab.plasticity.sites`), any other
    name as a ``Linear`` / 1x1 ``Conv2d`` submodule read at its input and output.
    Spikes are recorded only in training mode. Under ``torch.distributed`` the gate moments and the
    per-site sums are all-reduced, so every rank fits the same gate and adds the same dW. ``seed``
    drives only ``control="random"``.
    """

    def __init__(self, model: nn.Module, params: DASSDPParams, *, seed: int = 0):
        if not isinstance(params, DASSDPParams):
            raise ValueError(f"params must be DASSDPParams, got {type(params).__name__}")
        self.params = params
        self.model = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        self.epoch = 0
        self.steps = 0
        self.rng = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        self.sites: list[_Site] = [self._resolve(name) for name in params.sites]
        self._handles = []
        for s in self.sites:
            for which in ("pre", "post"):
                module, side = getattr(s, f"{which}_tap")
                self._handles.append(module.register_forward_hook(self._make_hook(s, which, side)))

    # ----------------------------------------------------------------- sites
    def _resolve(self, name: str) -> _Site:
        model, p = self.model, self.params
        named = getattr(model, "plasticity_sites", ())
        if name in named:
            # a site the model names itself (SpikingResformer: "dssa_proj"), see snnlab.plasticity.sites
            site = model.plasticity_site(name, tap=p.dssa_tap)
            return _Site(name, site.weight, site.pre, site.post, readout=site.readout,
                         silent=p.dssa_silent_latency)
        try:
            module = model.get_submodule(name)
        except AttributeError as exc:
            hint = (f" and names no such plasticity site (it names {', '.join(map(repr, named))})" if named else
                    " and names no plasticity sites (a model names its own through plasticity_sites and "
                    "plasticity_site(name, tap=...): SpikingResformer names 'dssa_proj')")
            raise ValueError(f"sites: the model has no module {name!r}{hint}") from exc
        readout = p.classifier_readout if name == "classifier" else "any"
        if isinstance(module, nn.Linear):
            return _Site(name, module.weight, (module, "input"), (module, "output"), readout=readout)
        if isinstance(module, nn.Conv2d) and tuple(module.kernel_size) == (1, 1) and module.groups == 1:
            return _Site(name, module.weight, (module, "input"), (module, "output"))
        raise ValueError(f"sites: {name!r} is a {type(module).__name__}; DA-SSDP acts on Linear or 1x1 Conv2d weights")

    def _make_hook(self, site: _Site, which: str, side: str):
        def hook(module, inputs, output):
            if module.training:
                setattr(site, which, _readout(inputs[0] if side == "input" else output, site.readout))
        return hook

    def remove(self) -> None:
        """Detach the forward hooks (the component is unusable afterwards)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    # ----------------------------------------------------------------- schedule
    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_int("epoch", epoch, minimum=0)

    @property
    def in_warmup(self) -> bool:
        return self.epoch < self.params.warmup_epochs

    # ----------------------------------------------------------------- the rule
    def _fit(self, site: _Site) -> None:
        m = site.moments.clone()
        if self.params.ddp_sync and _dist_active():
            dev = site.weight.device
            m = m.to(dev)
            torch.distributed.all_reduce(m)
            m = m.cpu()
        if self.params.gate == "constant" or m[0] < 2:
            # no dopamine signal (the control), or no warm-up data to fit: G = 1 for every sample
            site.gate = (0.0, float(m[1] / m[0]) if m[0] > 0 else 0.0, 0.0)
        else:
            site.gate = gate_from_moments(GateMoments(*m.tolist()))

    @torch.no_grad()
    def step(self, loss_per_sample: torch.Tensor) -> dict[str, float]:
        """Apply one DA-SSDP step (call right after ``optimizer.step()``).

        Args:
            loss_per_sample: the batch's per-sample losses ``[B]`` (the gate's warm-up data: each sample's
                own, or their mean for every sample with ``gate_loss="batch"``).
        Returns:
            diagnostics: ``<site>/k``, ``/mu_S``, ``/sd_S``, ``/S``, ``/pre_rate``, ``/post_rate``,
            ``/post_unit_sd`` (sd over post units of their firing fraction: 0 when every unit does the same),
            ``/dw_abs`` (mean |dW|), ``/dw_mean``, ``/drift`` (cumulative mean of applied dW), ``/gate``.
        """
        p = self.params
        loss = loss_per_sample.detach().float().flatten()
        if p.gate_loss == "batch":
            loss = loss.mean().expand_as(loss)
        diag: dict[str, float] = {"warmup": float(self.in_warmup)}
        sync = p.ddp_sync and _dist_active()
        for site in self.sites:
            if site.pre is None or site.post is None:
                raise RuntimeError(f"DA-SSDP site {site.name!r}: no training forward pass was recorded "
                                   "since the last step (call step() once after each training batch)")
            (pre_seq, pre), (post_seq, post) = site.pre, site.post
            site.pre = site.post = None
            T, N = pre_seq.shape[:2]
            B = loss.numel()
            if N % B or post.shape[0] != N:
                raise ValueError(f"loss_per_sample has {B} values but site {site.name!r} recorded {N} pre and "
                                 f"{post.shape[0]} post rows")
            per = N // B                                        # positions per sample (1 unless per position)
            # S_b = mean_{o,i(,p)} post pre, without the outer product
            S = (post.mean(1) * pre.mean(1)).view(B, per).mean(1)
            name = site.name
            post_units = post.view(B, per, -1).mean((0, 1))
            if self.in_warmup:
                s64, l64 = S.double().cpu(), loss.double().cpu()
                site.moments += torch.stack([torch.tensor(float(B), dtype=torch.float64), s64.sum(),
                                             (s64 * s64).sum(), l64.sum(), (l64 * l64).sum(), (s64 * l64).sum()])
                diag.update({f"{name}/S": float(S.mean()), f"{name}/pre_rate": float(pre.mean()),
                             f"{name}/post_rate": float(post.mean()), f"{name}/post_unit_sd": float(post_units.std()),
                             f"{name}/dw_abs": 0.0, f"{name}/dw_mean": 0.0, f"{name}/drift": site.drift})
                continue
            if site.gate is None:
                self._fit(site)
            k, mu, sd = site.gate
            gate = dopamine_gate(S, k, mu, sd)
            t_pre = spike_latency(pre_seq, p.latency, silent=site.silent)
            t_post = spike_latency(post_seq, p.latency, silent=site.silent)
            total = ssdp_sum_binned(pre, post, t_pre, t_post, gate.repeat_interleave(per), p.a_plus, p.a_minus,
                                    p.sigma, T)
            stats = torch.cat([torch.stack([torch.tensor(float(N), device=S.device), torch.tensor(float(B), device=S.device),
                                            S.sum(), pre.sum() / pre.shape[1], post.sum() / post.shape[1], gate.sum()]),
                               post_units * B]).float()
            if sync:
                packed = torch.cat([total.flatten(), stats])
                torch.distributed.all_reduce(packed)
                total, stats = packed[:total.numel()].view_as(total), packed[total.numel():]
            rows, n = stats[0], stats[1]
            dw = (total / rows).clamp(-1.0, 1.0)
            if p.control == "random":
                noise = torch.randn(dw.shape, generator=self.rng).to(dw)
                dw = noise * (dw.norm() / noise.norm().clamp_min(1e-30))
            w = site.weight
            w.add_(dw.to(w.dtype).view(w.shape))
            dw_mean = float(dw.mean())
            site.drift += dw_mean
            diag.update({f"{name}/k": k, f"{name}/mu_S": mu, f"{name}/sd_S": sd,
                         f"{name}/S": float(stats[2] / n), f"{name}/pre_rate": float(stats[3] / rows),
                         f"{name}/post_rate": float(stats[4] / rows), f"{name}/gate": float(stats[5] / n),
                         f"{name}/post_unit_sd": float((stats[6:] / n).std()),
                         f"{name}/dw_abs": float(dw.abs().mean()), f"{name}/dw_mean": dw_mean,
                         f"{name}/drift": site.drift})
        self.steps += 1
        return diag

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to resume: epoch, steps and, per site, the warm-up moments, the gate
        and the drift. ``moments`` is ``[world, 6]``: under ``torch.distributed`` this is a collective
        (every rank calls it) that gathers each rank's own warm-up moments, because each rank records
        only its shard and the fit sums them once (:meth:`_fit`). Saving rank 0's alone made a resume
        during the warm-up fit another gate."""
        world = torch.distributed.get_world_size() if _dist_active() else 1
        sites = {}
        for s in self.sites:
            moments = s.moments.reshape(1, 6).clone()
            if world > 1:
                mine = s.moments.to(s.weight.device)
                parts = [torch.empty_like(mine) for _ in range(world)]
                torch.distributed.all_gather(parts, mine)
                moments = torch.stack([part.cpu() for part in parts])
            sites[s.name] = {"moments": moments, "gate": s.gate, "drift": s.drift}
        return {"params": asdict(self.params), "epoch": self.epoch, "steps": self.steps, "sites": sites,
                "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any], *, rank: int = 0, world: int = 1) -> None:
        """Restore :meth:`state_dict`; rank ``rank`` of ``world`` gets back its own warm-up moments.

        Resumed with another number of ranks, rank 0 takes the sum of all and the others start at zero:
        the fitted gate sums over ranks, so it is the same up to rounding."""
        names = {s.name for s in self.sites}
        if set(state["sites"]) != names:
            raise ValueError(f"DA-SSDP checkpoint has sites {sorted(state['sites'])}, this run has {sorted(names)}")
        self.epoch, self.steps = int(state["epoch"]), int(state["steps"])
        if "rng" in state:  # absent from checkpoints written before the random-dW control existed
            self.rng.set_state(state["rng"])
        for s in self.sites:
            saved = state["sites"][s.name]
            moments = saved["moments"].double()
            if moments.dim() == 1:  # a checkpoint written before moments were kept per rank
                moments = moments[None]
            if moments.shape[-1] != 6:
                raise ValueError(f"DA-SSDP site {s.name!r}: moments must be [world, 6], got {tuple(moments.shape)}")
            if moments.shape[0] == world:
                s.moments = moments[rank].clone()
            else:
                s.moments = moments.sum(0) if rank == 0 else torch.zeros(6, dtype=torch.float64)
            s.gate = None if saved["gate"] is None else tuple(float(v) for v in saved["gate"])
            s.drift = float(saved["drift"])
