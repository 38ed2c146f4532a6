"""SpikingResformer (Shi, Hao & Yu, CVPR 2024): dual spike self-attention (DSSA) and group-wise
spiking feed-forward (GWFFN) blocks on multi-step spikingjelly LIF neurons.

Every tensor inside the network is multi-step, ``[T, B, C, H, W]``. A static image ``[B, C, H, W]``
is repeated ``T`` times; event frames ``[B, T, C, H, W]`` are moved to time-first. Stages::

    prologue (stem) -> [Downsample ->] {DSSA, GWFFN} x n  (per stage) -> avgpool -> Linear per step
    -> mean over T  =  logits [B, num_classes]

DSSA (paper Eq. 9-12, ``p`` the patch size, ``h`` heads, ``N'`` tokens after the patch conv)::

    S  = LIF(X)
    Y  = BN(Conv_{p x p, stride p}(S))             split per head into Y1, Y2   [.., C/h, N']
    A  = LIF(Y1^T S / sqrt(r_x C / h))             r_x: EMA of the firing rate of S (per head)
    O  = LIF(Y2 A / sqrt(r_A N'))                  r_A: EMA of the firing rate of A (per head)
    out = BN(Conv_1x1(O)) + X                      (``proj``: the released DA-SSDP site)

GWFFN: ``U = BN(W_up LIF(X))`` (C -> 4C), ``V = BN(GroupConv3x3(LIF(U))) + U`` (``group_size``
channels per group), ``out = BN(W_down LIF(V)) + X``. Downsampling: ``BN(Conv3x3 stride 2 (LIF X))``.
Convolutions and the classifier have no bias; weights are truncated-normal (std 0.02).

LIF: tau 2, threshold 1, hard reset to 0, ATan surrogate (alpha 2), detached reset.
The firing-rate EMAs use momentum 0.999 and are updated in training only; they are buffers, so they
travel with checkpoints and DDP broadcasts them.

Plasticity sites: the model names ``"dssa_proj"`` (:meth:`SpikingResformer.plasticity_site`), so a local
rule such as DA-SSDP (:mod:`snnlab.plasticity.dassdp`) attaches to it without importing this module.

Reference: X. Shi, Z. Hao, Z. Yu, "SpikingResformer: Bridging ResNet and Vision Transformer in Spiking
Neural Networks", CVPR 2024, arXiv:2403.14302. Used by ``notebooks/03_da_ssdp_spikingresformer.ipynb``
and ``snnlab train``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron, surrogate

from ..plasticity.sites import TAPS, PlasticitySite
from ..utils import check_choice, check_int

NEURONS = ("lif", "plif")


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class SpikingResformerConfig:
    """Architecture of one SpikingResformer variant.

    Attributes:
        planes: channels per stage ``C_s``.
        num_heads: attention heads per stage ``h_s`` (``C_s`` divisible by ``h_s``).
        patch_sizes: DSSA patch size per stage ``p_s``.
        blocks: number of (DSSA, GWFFN) pairs per stage.
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool, /4) or ``"cifar"`` (3x3/1 conv, /1).
        in_channels, num_classes, img_size (pixels), T (time steps), group_size (GWFFN channels per
        group), neuron (``"lif"`` or ``"plif"``: parametric LIF with learned tau, as the released
        DVS model), ffn_ratio (GWFFN expansion).
    """

    planes: tuple[int, ...]
    num_heads: tuple[int, ...]
    patch_sizes: tuple[int, ...]
    blocks: tuple[int, ...] = (1, 2, 3)
    stem: str = "imagenet"
    in_channels: int = 3
    num_classes: int = 1000
    img_size: int = 224
    T: int = 4
    group_size: int = 64
    neuron: str = "lif"
    ffn_ratio: int = 4

    def __post_init__(self):
        n = len(self.planes)
        for name in ("num_heads", "patch_sizes", "blocks"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have one entry per stage ({n}), got {getattr(self, name)}")
        for i, (c, h) in enumerate(zip(self.planes, self.num_heads)):
            check_int(f"planes[{i}]", c, minimum=1)
            check_int(f"num_heads[{i}]", h, minimum=1)
            if c % h:
                raise ValueError(f"num_heads[{i}]={h} must divide planes[{i}]={c}")
            if (c * self.ffn_ratio) % self.group_size:
                raise ValueError(f"group_size={self.group_size} must divide the GWFFN width {c * self.ffn_ratio}")
        check_choice("stem", self.stem, ("imagenet", "cifar"))
        check_choice("neuron", self.neuron, NEURONS)
        check_int("in_channels", self.in_channels, minimum=1)
        check_int("num_classes", self.num_classes, minimum=1)
        check_int("T", self.T, minimum=1)
        check_int("img_size", self.img_size, minimum=1)
        side = self.img_size // (4 if self.stem == "imagenet" else 1)
        for i, p in enumerate(self.patch_sizes):
            side = side if i == 0 else side // 2
            if side < p or side % p:
                raise ValueError(
                    f"img_size={self.img_size}: stage {i} has a {side}x{side} map, which patch_sizes[{i}]={p} "
                    f"does not tile; choose an img_size divisible by {(4 if self.stem == 'imagenet' else 1) * 2 ** (len(self.planes) - 1) * max(self.patch_sizes)}")


_IMAGENET = dict(blocks=(1, 2, 3), patch_sizes=(4, 2, 1), stem="imagenet")
VARIANTS: dict[str, SpikingResformerConfig] = {
    "ti": SpikingResformerConfig(planes=(64, 192, 384), num_heads=(1, 3, 6), **_IMAGENET),
    "s": SpikingResformerConfig(planes=(64, 256, 512), num_heads=(1, 4, 8), **_IMAGENET),
    "m": SpikingResformerConfig(planes=(64, 384, 768), num_heads=(1, 6, 12), **_IMAGENET),
    "l": SpikingResformerConfig(planes=(128, 512, 1024), num_heads=(2, 8, 16), **_IMAGENET),
    # CIFAR: the ti widths with a 3x3 stride-1 stem (no /4), 32x32 input, 10 classes.
    "cifar": SpikingResformerConfig(planes=(64, 192, 384), num_heads=(1, 3, 6), blocks=(1, 2, 3),
                                    patch_sizes=(4, 2, 1), stem="cifar", num_classes=10, img_size=32),
    # DVS (the released DVS-Gesture/CIFAR10-DVS design): half widths, PLIF, 32 channels per group.
    "dvs": SpikingResformerConfig(planes=(32, 96, 192), num_heads=(1, 3, 6), blocks=(1, 2, 3),
                                  patch_sizes=(4, 2, 1), stem="cifar", in_channels=2, num_classes=10,
                                  img_size=64, T=10, group_size=32, neuron="plif"),
    # CPU teaching model: one block per stage, 16x16 input.
    "nano": SpikingResformerConfig(planes=(32, 64, 128), num_heads=(1, 2, 4), blocks=(1, 1, 1),
                                   patch_sizes=(4, 2, 1), stem="cifar", in_channels=1, num_classes=10,
                                   img_size=16, group_size=32),
}
PUBLISHED_PARAMS_M = {"ti": 11.18, "s": 17.81, "m": 35.60, "l": 60.38, "cifar": 10.79}


def make_neuron(kind: str = "lif") -> nn.Module:
    """A multi-step LIF (tau 2, v_th 1, hard reset 0, ATan alpha 2, detached reset) or PLIF."""
    common = dict(decay_input=True, v_threshold=1.0, v_reset=0.0,
                  surrogate_function=surrogate.ATan(alpha=2.0), detach_reset=True, step_mode="m")
    if kind == "lif":
        return neuron.LIFNode(tau=2.0, **common)
    if kind == "plif":
        return neuron.ParametricLIFNode(init_tau=2.0, **common)
    raise ValueError(f"neuron must be one of {NEURONS}, got {kind!r}")


# --------------------------------------------------------------------------- small pieces
class DropPath(nn.Module):
    """Stochastic depth on a residual branch: zero a sample's branch with probability ``p`` and scale
    the survivors by ``1/(1-p)`` (same mask for all time steps). Identity in eval mode or at p = 0."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [T, B, ...]
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (1, x.shape[1]) + (1,) * (x.dim() - 2)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, padding: int | None = None):
    pad = k // 2 if padding is None else padding
    return layer.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False, step_mode="m")


def bn(c: int):
    return layer.BatchNorm2d(c, step_mode="m")


class DSSA(nn.Module):
    """Dual spike self-attention (see the module docstring for the equations).

    Args:
        dim: channels ``C``; num_heads: ``h``; tokens: ``N'`` (patches per image); patch_size: ``p``.
    """

    def __init__(self, dim: int, num_heads: int, tokens: int, patch_size: int, *, neuron_kind="lif",
                 momentum: float = 0.999, drop_path: float = 0.0):
        super().__init__()
        self.dim, self.num_heads, self.tokens, self.momentum = dim, num_heads, tokens, momentum
        self.act_in = make_neuron(neuron_kind)
        self.qkv = conv(dim, 2 * dim, patch_size, stride=patch_size, padding=0)
        self.norm = bn(2 * dim)
        self.act_attn = make_neuron(neuron_kind)
        self.act_out = make_neuron(neuron_kind)
        self.proj = conv(dim, dim, 1)
        self.norm_proj = bn(dim)
        self.drop_path = DropPath(drop_path)
        self.register_buffer("rate_x", torch.zeros(1, 1, num_heads, 1, 1))
        self.register_buffer("rate_attn", torch.zeros(1, 1, num_heads, 1, 1))
        self.register_buffer("rates_initialised", torch.zeros((), dtype=torch.bool))

    def _rate(self, name: str, batch_rate: torch.Tensor) -> torch.Tensor:
        """EMA of the per-head firing rate (training), the stored EMA (eval). Before the first training
        step the EMA is empty, so the batch's own rate is used rather than dividing by zero."""
        ema = getattr(self, name)
        if self.training:
            with torch.no_grad():
                if not bool(self.rates_initialised):
                    ema.copy_(batch_rate)
                else:
                    ema.mul_(self.momentum).add_(batch_rate, alpha=1.0 - self.momentum)
            return ema
        return ema if bool(self.rates_initialised) else batch_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        h = self.num_heads
        s = self.act_in(x)
        y = self.norm(self.qkv(s)).reshape(T, B, h, 2 * C // h, -1)
        y1, y2 = y[:, :, :, : C // h], y[:, :, :, C // h:]
        s_h = s.reshape(T, B, h, C // h, H * W)
        r_x = self._rate("rate_x", s_h.detach().float().mean((0, 1, 3, 4), keepdim=True))
        attn = torch.matmul(y1.transpose(-1, -2), s_h) / torch.sqrt(r_x.clamp_min(1e-6) * (C // h))
        attn = self.act_attn(attn)  # [T, B, h, N', HW]
        r_a = self._rate("rate_attn", attn.detach().float().mean((0, 1, 3, 4), keepdim=True))
        out = torch.matmul(y2, attn) / torch.sqrt(r_a.clamp_min(1e-6) * self.tokens)
        if self.training:
            self.rates_initialised.fill_(True)
        out = self.act_out(out.reshape(T, B, C, H, W))
        return x + self.drop_path(self.norm_proj(self.proj(out)))


class GWFFN(nn.Module):
    """Group-wise spiking feed-forward block: 1x1 up (ratio r), grouped 3x3 with an inner residual,
    1x1 down, outer residual."""

    def __init__(self, dim: int, *, ratio: int = 4, group_size: int = 64, neuron_kind="lif",
                 drop_path: float = 0.0):
        super().__init__()
        inner = dim * ratio
        self.act_up, self.up, self.norm_up = make_neuron(neuron_kind), conv(dim, inner, 1), bn(inner)
        self.act_mid = make_neuron(neuron_kind)
        self.mid = conv(inner, inner, 3, groups=inner // group_size)
        self.norm_mid = bn(inner)
        self.act_down, self.down, self.norm_down = make_neuron(neuron_kind), conv(inner, dim, 1), bn(dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.norm_up(self.up(self.act_up(x)))
        v = self.norm_mid(self.mid(self.act_mid(u))) + u
        return x + self.drop_path(self.norm_down(self.down(self.act_down(v))))


class Downsample(nn.Module):
    """``BN(Conv3x3, stride 2 (LIF(X)))``: halves the map, changes the width."""

    def __init__(self, cin: int, cout: int, *, neuron_kind="lif"):
        super().__init__()
        self.act, self.conv, self.norm = make_neuron(neuron_kind), conv(cin, cout, 3, stride=2), bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.act(x)))


# --------------------------------------------------------------------------- the network
class SpikingResformer(nn.Module):
    """The full network. ``forward(x)`` takes ``[B, C, H, W]`` (repeated T times) or event frames
    ``[B, T, C, H, W]`` and returns logits ``[B, num_classes]`` (the per-step linear head averaged
    over T). Call :func:`reset` (or ``spikingjelly.activation_based.functional.reset_net``) between
    batches; :meth:`forward` does it itself at the start, so a forgotten reset cannot leak state."""

    def __init__(self, config: SpikingResformerConfig, *, drop_path: float = 0.0):
        super().__init__()
        self.config = config
        c, nk = config, config.neuron
        if c.stem == "imagenet":
            self.prologue = nn.Sequential(conv(c.in_channels, c.planes[0], 7, stride=2), bn(c.planes[0]),
                                          layer.MaxPool2d(3, 2, 1, step_mode="m"))
            side = c.img_size // 4
        else:
            self.prologue = nn.Sequential(conv(c.in_channels, c.planes[0], 3), bn(c.planes[0]))
            side = c.img_size
        n_blocks = 2 * sum(c.blocks)
        rates = [drop_path * i / max(1, n_blocks - 1) for i in range(n_blocks)]
        self.stages = nn.ModuleList()
        k = 0
        for i, (dim, heads, p, nb) in enumerate(zip(c.planes, c.num_heads, c.patch_sizes, c.blocks)):
            mods: list[nn.Module] = []
            if i > 0:
                mods.append(Downsample(c.planes[i - 1], dim, neuron_kind=nk))
                side //= 2
            for _ in range(nb):
                mods.append(DSSA(dim, heads, (side // p) ** 2, p, neuron_kind=nk, drop_path=rates[k]))
                mods.append(GWFFN(dim, ratio=c.ffn_ratio, group_size=c.group_size, neuron_kind=nk,
                                  drop_path=rates[k + 1]))
                k += 2
            self.stages.append(nn.Sequential(*mods))
        self.avgpool = layer.AdaptiveAvgPool2d((1, 1), step_mode="m")
        self.classifier = layer.Linear(c.planes[-1], c.num_classes, bias=False, step_mode="m")
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def to_steps(self, x: torch.Tensor) -> torch.Tensor:
        """Input to multi-step ``[T, B, C, H, W]``: repeat a static image, or move frames' T first."""
        if x.dim() == 4:
            return x.unsqueeze(0).expand(self.config.T, *x.shape).contiguous()
        if x.dim() == 5:
            return x.transpose(0, 1).contiguous()
        raise ValueError(f"x must be [B, C, H, W] or [B, T, C, H, W], got shape {tuple(x.shape)}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled last-stage features ``[T, B, C_last]`` (the classifier's input)."""
        x = self.prologue(self.to_steps(x))
        for stage in self.stages:
            x = stage(x)
        return self.avgpool(x).flatten(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self)
        return self.classifier(self.features(x)).mean(0)

    #: The plasticity sites this model names (see :mod:`snnlab.plasticity.sites`): rules that attach to
    #: the model, such as DA-SSDP, ask :meth:`plasticity_site` for them instead of importing the model.
    plasticity_sites: tuple[str, ...] = ("dssa_proj",)

    def plasticity_site(self, name: str, *, tap: str = "synapse") -> PlasticitySite:
        """The named plasticity site: its weight and where its pre- and post-synaptic spikes are read.

        ``"dssa_proj"``: ``W_proj`` (``proj``), the 1x1 output projection of the first DSSA block of the
        last stage (the released DA-SSDP site).

        * ``tap="synapse"``: pre = the spikes entering ``proj`` (its input: ``act_out``'s output), post =
          the output of the first spiking neuron of the next block in the last stage (the neuron that
          reads the block's output, e.g. the GWFFN's ``act_up``), one row per (sample, position): a 1x1
          convolution is one synapse per position (``readout="position"``).
        * ``tap="block"``: the DSSA block's input and output, a channel active when positive anywhere on
          its map (``readout="any"``; what the released code reads).

        Args:
            name: one of :attr:`plasticity_sites`.  tap: ``"synapse"`` or ``"block"``.
        Returns:
            a :class:`~snnlab.plasticity.sites.PlasticitySite`.
        """
        check_choice("name", name, self.plasticity_sites)
        check_choice("tap", tap, TAPS)
        last = list(self.stages[-1])
        where = [i for i, m in enumerate(last) if isinstance(m, DSSA)]
        if not where:
            raise ValueError("sites: 'dssa_proj' needs a SpikingResformer whose last stage has a DSSA block")
        block = last[where[0]]
        if tap == "block":
            return PlasticitySite(block.proj.weight, (block, "input"), (block, "output"), readout="any")
        # the post-synaptic neurons of W_proj: the first LIF that reads the block's output
        reader = _first_neuron(last[where[0] + 1]) if where[0] + 1 < len(last) else None
        if reader is None:
            raise ValueError("sites: 'dssa_proj' with dssa_tap 'synapse' needs a spiking block after the DSSA "
                             "block in the last stage (its input neurons read the projection)")
        return PlasticitySite(block.proj.weight, (block.proj, "input"), (reader, "output"), readout="position")

    def dssa_blocks(self) -> list[tuple[str, DSSA]]:
        """``(qualified name, module)`` of every DSSA block, in depth order."""
        return [(n, m) for n, m in self.named_modules() if isinstance(m, DSSA)]

    def head_names(self) -> tuple[str, ...]:
        return ("classifier.",)

    def backbone_state_dict(self) -> dict:
        return {k: v for k, v in self.state_dict().items() if not k.startswith(self.head_names())}


def _first_neuron(module: nn.Module) -> nn.Module | None:
    """The first spiking neuron (spikingjelly ``BaseNode``) inside ``module``, in definition order."""
    return next((m for m in module.modules() if isinstance(m, neuron.BaseNode)), None)


def build_config(variant: str = "nano", **overrides) -> SpikingResformerConfig:
    """The named variant's configuration with fields replaced by ``overrides`` (e.g. ``num_classes``)."""
    check_choice("variant", variant, tuple(VARIANTS))
    base = VARIANTS[variant]
    unknown = set(overrides) - set(SpikingResformerConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown SpikingResformer option(s) {sorted(unknown)}")
    for key in ("planes", "num_heads", "patch_sizes", "blocks"):
        if key in overrides and overrides[key] is not None:
            overrides[key] = tuple(overrides[key])
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def spikingresformer(variant: str = "nano", *, drop_path: float = 0.0, **overrides) -> SpikingResformer:
    """Build a variant: ``ti``, ``s``, ``m``, ``l`` (ImageNet), ``cifar``, ``dvs`` or ``nano`` (CPU)."""
    return SpikingResformer(build_config(variant, **overrides), drop_path=drop_path)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def layer_report(model: SpikingResformer, x: torch.Tensor, *, training: bool = False) -> list[dict]:
    """Run one batch and list, per spiking neuron layer, its output shape ``[T, B, ...]`` and firing
    rate (spikes per neuron per step). Uses forward hooks that are removed before returning.

    ``training=False`` runs in eval mode (BN running statistics: an untrained network is nearly
    silent there); ``training=True`` uses the batch's statistics, as during training, and therefore
    also updates the BN running statistics and the DSSA firing-rate EMAs once."""
    rows, handles = [], []
    for name, mod in model.named_modules():
        if isinstance(mod, neuron.BaseNode):
            def hook(m, inp, out, name=name):
                rows.append({"layer": name, "shape": tuple(out.shape), "rate": float(out.float().mean())})
            handles.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.train(training)
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows


@torch.no_grad()
def dssa_signals(block: DSSA, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run one DSSA block once in training mode on ``x`` ``[T, B, C, H, W]`` and return what it computes
    on the way to its attention map (its neurons are reset first; like any training step, the call
    updates the block's BN statistics and firing-rate EMAs).

    Returns:
        ``s``: the input spikes ``S = LIF(X)`` ``[T, B, C, H, W]``; ``y``: ``BN(Conv_{p x p}(S))``
        ``[T, B, 2C, H/p, W/p]`` (its first ``C`` channels of each head's ``2C/h`` are ``Y_1``);
        ``rate_x``: the rate ``r_x`` the scaling used, per head ``[1, 1, h, 1, 1]`` (the batch's own
        rate on a block's first training call, the EMA afterwards); ``attn_input``: the input of the
        attention neuron, ``Y_1^T S / sqrt(r_x C / h)`` ``[T, B, h, N', H W]``; ``attn``: its spikes ``A``.
    """
    if x.dim() != 5 or x.shape[2] != block.dim:
        raise ValueError(f"x must be [T, B, {block.dim}, H, W], got shape {tuple(x.shape)}")
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str, use_input: bool = False):
        def hook(module, inputs, output):
            seen[name] = (inputs[0] if use_input else output).detach().clone()
        return hook

    handles = [block.act_in.register_forward_hook(keep("s")), block.norm.register_forward_hook(keep("y")),
               block.act_attn.register_forward_hook(keep("attn_input", use_input=True)),
               block.act_attn.register_forward_hook(keep("attn"))]
    was_training = block.training
    block.train(True)
    try:
        functional.reset_net(block)
        block(x)
    finally:
        for h in handles:
            h.remove()
        block.train(was_training)
        functional.reset_net(block)
    seen["rate_x"] = block.rate_x.detach().clone()
    return seen
