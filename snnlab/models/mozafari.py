"""The deep convolutional spiking network of Mozafari et al. 2019, trained with STDP and R-STDP.

Mozafari, Ganjtabesh, Nowzari-Dalini, Thorpe, Masquelier (2019), Pattern Recognition 94:87-95,
doi:10.1016/j.patcog.2019.05.015. Used by ``notebooks/02_mozafari_rstdp.ipynb`` and
``benchmarks/mozafari.py``. This module holds the network, its training kernels and its file format
(:func:`save_network`, :func:`load_network`); the layer-wise trainer with checkpoints
(``MozafariTrainer``) and the figures of notebook 02 live in :mod:`snnlab.experiments.mozafari`.

Pipeline (28 x 28 input, T = 15 spike waves)::

    DoG(6) -> latency code -> pad 2 -> conv1 30@5x5, theta 15 -> max-pool 2 -> pad 1
           -> conv2 250@3x3, theta 10 -> max-pool 3 -> pad 2 -> conv3 200@5x5 (20 per class)

Neurons are non-leaky one-shot IF neurons (:mod:`snnlab.neurons`); pooling passes the earliest
spike. The decision layer has an infinite threshold: the network's answer is the class of the
conv3 neuron with the largest potential after the last wave (silent if all are 0). Layers are
trained one after the other: conv1 and conv2 with STDP under pointwise inhibition and k-WTA
(k 5, r 3 and k 8, r 1), the learning rate doubling every 500 samples; conv3 with R-STDP.

Why it is fast, and still the same algorithm:

* weights stay in [0, 1] and input waves are cumulative, so potentials never decrease; a neuron
  fires at all iff its potential after the last wave exceeds the threshold. The decision reads only
  the last wave, so **inference** needs one convolution per layer on the *final* spike maps
  (batched), and so does **R-STDP** (whose pre/post order is "pre fired at all or not");
* the frozen layers below the one being trained run batched once over the data set and their
  outputs are cached (for conv2 only their first 6 steps, by the same argument as below: a sample
  whose winners fire later is recomputed whole);
* the layer being trained keeps the paper's per-sample update order. Its potentials come from one
  convolution over several stacked waves (instead of one small one per step), spike times from a
  count over time, and only up to the step where the k-th winner has fired: the competition ranks
  earlier spikes first, so later steps cannot change the winners (:func:`stdp_train_step`);
  in R-STDP the potentials of a block of upcoming samples come from one matrix product and
  only the kernels changed since are recomputed per sample (:func:`rstdp_epoch`).

``reference_*`` implementations in ``benchmarks/mozafari.py`` run the straightforward per-sample,
per-time-step version; the tests check both give the same weights and decisions.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..encoding import LatencyCodeParams, encode_latency
from ..neurons import first_crossing_monotone, value_at
from ..plasticity.mozafari import (
    LearningRateSchedule,
    RewardRates,
    RSTDPParams,
    STDPBounds,
    adapted_rates,
    apply_update,
    compete,
    conv_stdp_update,
    pointwise_inhibition,
    rstdp_rates,
    stdp_delta,
)
from ..checkpoints import load_checkpoint, load_module_state, save_checkpoint
from ..errors import CheckpointError
from ..utils import check_float, check_int



# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class MozafariConfig:
    """Architecture and learning parameters (defaults: the paper, section 3.1 / the public port).

    Attributes:
        code: the DoG + latency input stage (T = ``code.n_steps``).
        features: feature maps of conv1, conv2, conv3.
        kernels: kernel sizes.
        pads: zero padding before each convolution.
        pools: max-pooling size (= stride) after conv1 and conv2.
        thresholds: firing thresholds of conv1 and conv2 (conv3: infinite).
        k_wta, radii: k-WTA winners and inhibition radius while training conv1 and conv2.
        pointwise_inhibition: apply pointwise inhibition while training conv1/conv2 (the paper: yes).
        n_classes: classes; conv3 features are split evenly among them (f // (features[2] / n)).
        weight_mean, weight_std: initial weights ~ N(mean, std), clipped to the bounds.
        schedule: STDP rates of conv1/conv2.
        stdp_bounds: weight range / soft bound of conv1/conv2.
        rstdp: R-STDP of conv3.
    """

    code: LatencyCodeParams = LatencyCodeParams()
    features: tuple[int, int, int] = (30, 250, 200)
    kernels: tuple[int, int, int] = (5, 3, 5)
    pads: tuple[int, int, int] = (2, 1, 2)
    pools: tuple[int, int] = (2, 3)
    thresholds: tuple[float, float] = (15.0, 10.0)
    k_wta: tuple[int, int] = (5, 8)
    radii: tuple[int, int] = (3, 1)
    pointwise_inhibition: bool = True
    n_classes: int = 10
    weight_mean: float = 0.8
    weight_std: float = 0.05
    schedule: LearningRateSchedule = LearningRateSchedule()
    stdp_bounds: STDPBounds = STDPBounds()
    rstdp: RSTDPParams = RSTDPParams()

    def __post_init__(self):
        for name, n in (("features", 3), ("kernels", 3), ("pads", 3), ("pools", 2),
                        ("thresholds", 2), ("k_wta", 2), ("radii", 2)):
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) != n:
                raise ValueError(f"{name} must be a tuple of {n} values, got {value!r}")
        for i, v in enumerate(self.features):
            check_int(f"features[{i}]", v, minimum=1)
        for i, v in enumerate(self.kernels):
            check_int(f"kernels[{i}]", v, minimum=1)
        for i, v in enumerate(self.pads):
            check_int(f"pads[{i}]", v, minimum=0)
        for i, v in enumerate(self.pools):
            check_int(f"pools[{i}]", v, minimum=1)
        for i, v in enumerate(self.thresholds):
            check_float(f"thresholds[{i}]", v, minimum=0.0)
        for i, v in enumerate(self.k_wta):
            check_int(f"k_wta[{i}]", v, minimum=1)
        for i, v in enumerate(self.radii):
            check_int(f"radii[{i}]", v, minimum=0)
        if not isinstance(self.pointwise_inhibition, bool):
            raise ValueError(f"pointwise_inhibition must be a bool, got {self.pointwise_inhibition!r}")
        check_int("n_classes", self.n_classes, minimum=2)
        if self.features[2] % self.n_classes:
            raise ValueError(f"features[2] ({self.features[2]}) must be a multiple of n_classes ({self.n_classes})")
        check_float("weight_mean", self.weight_mean)
        check_float("weight_std", self.weight_std, minimum=0.0)

    @property
    def n_steps(self) -> int:
        return self.code.n_steps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MozafariConfig":
        d = dict(d)
        d["code"] = LatencyCodeParams(**{**d["code"], "dog": tuple(tuple(s) for s in d["code"]["dog"])})
        d["schedule"] = LearningRateSchedule(**d["schedule"])
        d["stdp_bounds"] = STDPBounds(**d["stdp_bounds"])
        r = dict(d["rstdp"])
        r["bounds"] = STDPBounds(**r["bounds"])
        d["rstdp"] = RSTDPParams(**r)
        for name in ("features", "kernels", "pads", "pools", "thresholds", "k_wta", "radii"):
            d[name] = tuple(d[name])
        return cls(**d)


# --------------------------------------------------------------------------- spike-time helpers
def pad_times(times: torch.Tensor, pad: int, n_steps: int) -> torch.Tensor:
    """Zero-pad a spike map given as times: padded units never fire (time ``T``)."""
    if pad == 0:
        return times
    return F.pad(times, (pad, pad, pad, pad), value=n_steps)


def pool_times(times: torch.Tensor, size: int) -> torch.Tensor:
    """Max-pooling of spike waves = the earliest spike in each window (stride = size, floor)."""
    return -F.max_pool2d(-times.to(torch.float32), size).to(torch.int64)


def conv_potentials(in_times: torch.Tensor, w: torch.Tensor, n_steps: int, *, start: int = 0) -> torch.Tensor:
    """Potentials of a conv layer at steps ``start..n_steps-1``, all at once: ``V[t] = w * S[t]``.

    Args:
        in_times: ``[B, C, H, W]`` input first-spike times (padded already).
        w: ``[F, C, k, k]`` weights (non-negative).
        n_steps: the step to stop before (T for the whole time course).
        start: the first step computed (a later part of the time course can be added on demand).
    Returns:
        ``[n_steps - start, B, F, H', W']`` potentials.
    """
    b, n = in_times.shape[0], n_steps - start
    steps = torch.arange(start, n_steps, device=in_times.device).reshape(-1, 1, 1, 1, 1)
    waves = (in_times.unsqueeze(0) <= steps).to(w.dtype).reshape(n * b, *in_times.shape[1:])
    v = F.conv2d(waves, w)
    return v.reshape(n, b, *v.shape[1:])


def layer_times(in_times: torch.Tensor, w: torch.Tensor, threshold: float, n_steps: int,
                *, batch_size: int = 32, horizon: int | None = None) -> torch.Tensor:
    """First-spike times of a conv layer of one-shot IF neurons (no competition), batched.

    With a ``horizon`` only steps ``0..horizon-1`` are computed and later spikes are reported as
    ``T`` (never): exact for every spike before the horizon, at a fraction of the cost."""
    steps = n_steps if horizon is None else min(n_steps, check_int("horizon", horizon, minimum=1))
    out = []
    for start in range(0, in_times.shape[0], batch_size):
        v = conv_potentials(in_times[start:start + batch_size].to(torch.int64), w, steps)
        times = first_crossing_monotone(v, threshold)
        out.append(times.masked_fill_(times >= steps, n_steps))
    return torch.cat(out)


# --------------------------------------------------------------------------- the network
class MozafariNet(nn.Module):
    """The three-layer network; weights are buffers (learned by STDP, never by an optimizer).

    ``w1 [30, 6, 5, 5]``, ``w2 [250, 30, 3, 3]``, ``w3 [200, 250, 5, 5]``.
    """

    def __init__(self, config: MozafariConfig | None = None, *, seed: int = 0):
        super().__init__()
        self.config = config or MozafariConfig()
        c = self.config
        gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        in_ch = (len(c.code.dog), c.features[0], c.features[1])
        for i in range(3):
            w = torch.empty(c.features[i], in_ch[i], c.kernels[i], c.kernels[i])
            w.normal_(c.weight_mean, c.weight_std, generator=gen)
            bounds = c.stdp_bounds if i < 2 else c.rstdp.bounds
            self.register_buffer(f"w{i + 1}", w.clamp_(bounds.w_min, bounds.w_max))

    # ----------------------------------------------------------------- pieces
    def weight(self, layer: int) -> torch.Tensor:
        check_int("layer", layer, minimum=1, maximum=3)
        return getattr(self, f"w{layer}")

    def encode(self, images: torch.Tensor, *, batch_size: int = 512) -> torch.Tensor:
        """Images ``[B, 1, H, W]`` in [0, 1] -> input first-spike times ``[B, 6, H, W]`` (uint8)."""
        out = [encode_latency(images[i:i + batch_size], self.config.code).to(torch.uint8)
               for i in range(0, images.shape[0], batch_size)]
        return torch.cat(out)

    def layer_input_times(self, layer: int, times0: torch.Tensor, *, batch_size: int = 32,
                          horizon: int | None = None) -> torch.Tensor:
        """Padded input first-spike times of ``layer`` (1..3) from the encoded images, batched.

        The lower layers run without competition (as at test time). With a ``horizon``, spikes
        of the lower layers at step ``horizon`` or later are reported as ``T`` (see
        :func:`layer_times`); the encoded input itself is passed on whole."""
        c, t = self.config, self.config.n_steps
        times = times0.to(torch.int64)
        for lower in range(1, layer):
            times = layer_times(pad_times(times, c.pads[lower - 1], t), self.weight(lower),
                                c.thresholds[lower - 1], t, batch_size=batch_size, horizon=horizon)
            times = pool_times(times, c.pools[lower - 1])
        return pad_times(times, c.pads[layer - 1], t).to(torch.uint8)

    def final_spikes(self, layer: int, times0: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """Padded input of ``layer`` after the last wave, as 0/1 (fired at all), batched.

        Exact shortcut: with non-negative weights and cumulative waves, a neuron fires at some step
        iff its potential after the last step exceeds the threshold, and max-pooling of spike
        waves passes "fired at all" on."""
        c, t = self.config, self.config.n_steps
        out = []
        for start in range(0, times0.shape[0], batch_size):
            s = (times0[start:start + batch_size] < t).to(torch.float32)
            for lower in range(1, layer):
                s = F.pad(s, [c.pads[lower - 1]] * 4)
                s = (F.conv2d(s, self.weight(lower)) > c.thresholds[lower - 1]).to(torch.float32)
                s = F.max_pool2d(s, c.pools[lower - 1])
            out.append(F.pad(s, [c.pads[layer - 1]] * 4).to(torch.bool))
        return torch.cat(out)

    def output_potentials(self, s3: torch.Tensor) -> torch.Tensor:
        """conv3 potentials after the last wave ``[B, 200, h, w]`` from padded 0/1 inputs."""
        return F.conv2d(s3.to(torch.float32), self.w3)

    def decide(self, v3: torch.Tensor) -> torch.Tensor:
        """Decision rule: the class of the neuron with the largest final potential; -1 if silent.

        Infinite threshold in conv3: every neuron 'fires' at the last step if its potential is
        positive, and the winner is the largest (ties: the lowest (feature, row, column) index).
        """
        flat = v3.reshape(v3.shape[0], -1)
        best, idx = flat.max(dim=1)
        per_class = self.config.features[2] // self.config.n_classes
        feature = idx // (v3.shape[-1] * v3.shape[-2])
        return torch.where(best > 0, feature // per_class, torch.full_like(feature, -1))

    @torch.no_grad()
    def predict_times(self, times0: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """Decisions (class, or -1 for no decision) for encoded inputs, batched."""
        out = []
        for start in range(0, times0.shape[0], batch_size):
            s3 = self.final_spikes(3, times0[start:start + batch_size], batch_size=batch_size)
            out.append(self.decide(self.output_potentials(s3)))
        return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """Decisions for images ``[B, 1, H, W]`` in [0, 1] (returned on the CPU)."""
        return self.predict_times(self.encode(images.to(self.w1.device)), batch_size=batch_size).cpu()


# --------------------------------------------------------------------------- training steps
def layer_competition(v: torch.Tensor, threshold: float, *, pointwise: bool = True):
    """Spike times and potentials at spike time of one sample's layer, after pointwise inhibition.

    Args:
        v: ``[T, F, H, W]`` potentials of every step (non-decreasing in t).
        threshold: theta.
        pointwise: apply :func:`~snnlab.plasticity.mozafari.pointwise_inhibition`.
    Returns:
        ``(times, values)`` ``[F, H, W]`` (times ``T`` = never fired / inhibited).
    """
    n_steps = v.shape[0]
    times = first_crossing_monotone(v, threshold)
    values = value_at(v, times)
    if pointwise:
        times, values = pointwise_inhibition(times, values, n_steps)
    return times, values


#: Steps of conv1 / conv2 computed before the first try of :func:`stdp_train_step` while training
#: (only speed depends on it: the weights are bit-identical). conv2 needs more steps once conv1 is
#: trained: a trained conv1 sends few spikes (mnist5k after one conv1 epoch over 3000 images: 198 of
#: 7680 conv2 inputs by step 3, against ~1800 with the initial conv1), so the conv2 potentials rise
#: slowly and the 8th winner fires at step 3-7 instead of 1-2. The STDP rates grow with the samples
#: seen, so one epoch of the 3000 mnist5k images trains conv1 much further than one of the 1259
#: digits: that, not the images as such, is why conv2 is slower on real digits. Measured (benchmarks/
#: mozafari.py breakdown, 300 samples, one thread, loaded 2-core machine), a first try of 4 steps
#: instead of 3: mnist5k conv1 1 / 2 epochs 1.12x / 1.18x, digits 0.91x / 1.45x.
FIRST_STEPS = (3, 4)


def stdp_train_step(w: torch.Tensor, pre_times: torch.Tensor, *, threshold: float, n_steps: int,
                    k: int, radius: int, a_plus: float, a_minus: float, bounds: STDPBounds,
                    pointwise: bool = True, first_steps: int = 3, max_steps: int | None = None):
    """One STDP sample for conv1 or conv2 (fast form): competition, then the weight change.

    Potentials of several steps come from one convolution over the stacked cumulative waves, spike
    times from a count over time (potentials never decrease). Pointwise inhibition keeps, per
    position, the feature firing first (then the largest potential); k-WTA picks up to k winners
    (both: :func:`~snnlab.plasticity.mozafari.compete`); each winner's kernel gets
    :func:`~snnlab.plasticity.mozafari.stdp_delta`.

    Only the time course up to the last winner's spike is computed. The competition ranks earlier
    spikes first, so the neurons that fired by step t are ranked exactly as in the full time course
    and anything firing later ranks below them; once k winners are found among them, the later
    steps cannot change the outcome. The first ``first_steps`` steps are computed, then twice as
    many, and so on up to T. For the same reason the STDP update only needs to know which inputs
    fired by the winner's step. How many steps are needed depends on the layers below, not on the
    data set: with untrained conv1 weights the conv2 winners have nearly always fired within 3
    steps, once conv1 is trained (as when conv2 is trained) its input is sparse and the last conv2
    winner fires at step 3 or 4 for most samples (:data:`FIRST_STEPS`).

    Args:
        w: ``[F, C, k, k]`` weights.
        pre_times: ``[C, H_in, W_in]`` padded input first-spike times (``T`` = never).
        threshold, n_steps, k, radius: theta, T, k-WTA winners and radius.
        a_plus, a_minus, bounds: STDP rates and bounds in force.
        pointwise: pointwise inhibition on (the paper) or off (an ablation).
        first_steps: steps computed before the first try (only speed depends on it).
        max_steps: look no further than this many steps, for input times that are only known
            before that step (:meth:`MozafariNet.layer_input_times` with a ``horizon``).
    Returns:
        ``(new_w, winners, post_times)``; ``(w, None, None)`` if ``max_steps`` was too short to
        find the k winners (the caller then retries with complete input times).
    """
    first_steps = check_int("first_steps", first_steps, minimum=1)
    limit = n_steps if max_steps is None else min(n_steps, check_int("max_steps", max_steps, minimum=1))
    pre = pre_times[None].to(torch.int64)
    parts, stop = [], 0
    while True:
        start, stop = stop, min(limit, max(first_steps, 2 * stop))
        parts.append(conv_potentials(pre, w, stop, start=start)[:, 0])
        v = parts[0] if len(parts) == 1 else torch.cat(parts)
        # with only `stop` steps known, time `stop` means "not yet", which ranks like "never"
        times = first_crossing_monotone(v, threshold)
        winners = compete(times, value_at(v, times), k=k, radius=radius, n_steps=stop, pointwise=pointwise)
        if len(winners) == k or stop == n_steps:
            break
        if stop == limit:
            return w, None, None
    post = [int(times[f, y, x]) for f, y, x in winners]
    if not winners:
        return w, winners, post
    dw = conv_stdp_update(w, pre_times.to(torch.int64), winners, post, a_plus=a_plus,
                          a_minus=a_minus, bounds=bounds)
    return apply_update(w, dw, bounds), winners, post


def rstdp_train_step(w3: torch.Tensor, s3: torch.Tensor, label: int, rates: RewardRates, *,
                     n_steps: int, per_class: int, bounds: STDPBounds):
    """One R-STDP sample for conv3 (fast form): decide, then reward (STDP) or punish (anti-STDP).

    The winner is the neuron with the largest final potential; it 'fires' at the last step, so a
    pre-synaptic input counts as 'before' iff it fired at all.

    Args:
        w3: ``[F, C, k, k]``.
        s3: ``[C, H, W]`` padded 0/1 input (fired at all).
        label: the true class.
        rates: the R-STDP rates in force.
    Returns:
        ``(w3, decision)`` with decision -1 (silent, no update) or a class; ``w3`` is updated in
        place (only the winner's kernel changes).
    """
    n_f, kernel = w3.shape[0], w3.shape[-1]
    patches = F.unfold(s3[None].to(w3.dtype), kernel)[0]
    v = w3.reshape(n_f, -1) @ patches
    best = v.view(-1).argmax()
    if v.view(-1)[best] <= 0:
        return w3, -1
    f, pos = divmod(int(best), v.shape[1])
    decision = f // per_class
    a_plus, a_minus = rstdp_rates(decision == int(label), rates)
    pre = torch.where(patches[:, pos] > 0, 0, n_steps).reshape(w3.shape[1:])
    # in place: copying all 1.25 M weights per sample would cost more than the whole step
    w3[f] = apply_update(w3[f], stdp_delta(w3[f], pre, n_steps - 1, a_plus=a_plus,
                                           a_minus=a_minus, bounds=bounds), bounds)
    return w3, decision


def rstdp_epoch(w3: torch.Tensor, s3: torch.Tensor, labels: torch.Tensor, order, rates: RewardRates,
                params: RSTDPParams, *, n_steps: int, per_class: int, cache_block: int = 32):
    """One R-STDP epoch over ``order`` (fast form, same result as :func:`rstdp_train_step` in a loop).

    Samples are still processed one by one with the weights left by the previous sample. Speed
    comes from computing the potentials of ``cache_block`` upcoming samples in one matrix product
    and, per sample, recomputing only the rows (features) changed since: each decision changes one
    kernel, so a row is 'dirty' once its feature has won within the block.

    The adaptive rates are recomputed after every ``params.block`` samples and after the last
    (possibly shorter) block of the epoch from that block's hit and miss fractions.

    Args:
        w3: ``[F, C, k, k]`` weights, updated in place.
        s3: ``[N, C, H, W]`` padded 0/1 inputs of the whole set (cached final spikes).
        labels: ``[N]`` classes.
        order: sample indices of this epoch.
        rates: the rates in force at the start.
        params: :class:`~snnlab.plasticity.mozafari.RSTDPParams`.
        cache_block: samples per potential cache (only speed depends on it).
    Returns:
        ``(decisions, rates)``: ``[len(order)]`` decisions (-1 silent) and the rates in force at the end.
    """
    order = [int(i) for i in order]
    labels = labels.cpu()
    n_f, kernel = w3.shape[0], w3.shape[-1]
    wf = w3.view(n_f, -1)
    decisions = torch.empty(len(order), dtype=torch.int64)
    block_n = block_hit = block_miss = 0
    for c0 in range(0, len(order), cache_block):
        idx = order[c0:c0 + cache_block]
        patches = F.unfold(s3[idx].to(w3.dtype), kernel)                      # [B, C k k, L]
        n_b, n_k, n_l = patches.shape
        v_all = (wf @ patches.permute(1, 0, 2).reshape(n_k, n_b * n_l)).reshape(n_f, n_b, n_l)
        dirty: list[int] = []
        for j, i in enumerate(idx):
            v = v_all[:, j]
            if dirty:
                rows = torch.tensor(dirty, device=w3.device)
                v[rows] = wf[rows] @ patches[j]
            best = int(v.reshape(-1).argmax())
            f, pos = divmod(best, n_l)
            if v[f, pos] <= 0:
                decisions[c0 + j] = -1
            else:
                decision = f // per_class
                decisions[c0 + j] = decision
                correct = decision == int(labels[i])
                block_hit += int(correct)
                block_miss += int(not correct)
                a_plus, a_minus = rstdp_rates(correct, rates)
                pre = torch.where(patches[j, :, pos] > 0, 0, n_steps)
                wf[f] = apply_update(wf[f], stdp_delta(wf[f], pre, n_steps - 1, a_plus=a_plus,
                                                       a_minus=a_minus, bounds=params.bounds), params.bounds)
                if f not in dirty:
                    dirty.append(f)
            block_n += 1
            if block_n == params.block:
                rates = adapted_rates(params, block_hit / block_n, block_miss / block_n)
                block_n = block_hit = block_miss = 0
    if block_n:
        rates = adapted_rates(params, block_hit / block_n, block_miss / block_n)
    return decisions, rates


# --------------------------------------------------------------------------- the network's file
def save_network(net: MozafariNet, path: str | Path) -> Path:
    """Write the configuration and weights atomically (tensors and plain data, see :mod:`snnlab.checkpoints`)."""
    return save_checkpoint({"config": net.config.to_dict(),
                            "weights": {k: v.clone() for k, v in net.state_dict().items()}}, path)


def load_network(path: str | Path) -> MozafariNet:
    """Read a network written by :func:`save_network` (or a trainer checkpoint), as data only.

    Raises :class:`~snnlab.errors.CheckpointError` naming the file when it is missing, damaged, unsafe
    or not a Mozafari network."""
    state = load_checkpoint(path, what="load_network", kind="Mozafari network file", required=("config", "weights"))
    try:
        config = MozafariConfig.from_dict(state["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"load_network {path}: its configuration is not valid ({exc})") from exc
    net = MozafariNet(config)
    load_module_state(net, state["weights"], what="load_network", path=path)
    return net
