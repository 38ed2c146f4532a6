"""Input encodings: DoG filters, thresholding, local normalisation, intensity-to-latency, rate coding.

The latency pipeline is the input stage of Mozafari et al. 2019 (Pattern Recognition 94:87,
doi:10.1016/j.patcog.2019.05.015), section 2.1, used by ``notebooks/02_mozafari_rstdp.ipynb``:

1. six difference-of-Gaussians (DoG) filters, on- and off-centre at 3x3, 7x7 and 13x13, applied to
   the image scaled to 0..255 (:func:`dog_kernel`, :func:`dog_bank`, :func:`dog_responses`);
2. responses below a threshold (50) set to 0;
3. local normalisation: each channel divided by its mean over a (2r+1) x (2r+1) window, r = 8
   (:func:`local_normalise`);
4. intensity-to-latency: the stronger a response, the earlier its single spike. Responses are ranked
   and cut into ``T`` = 15 bins of equal size, bin t spiking at step t (:func:`intensity_to_latency`).

Spikes are carried as *first-spike times*: an integer tensor with one entry per unit, ``t`` in
``0..T-1`` for a spike at step ``t`` and ``T`` for "never". The paper's cumulative spike waves
(a unit stays 1 from its spike on) are ``spike_waves(times, T)[t] = (times <= t)``. Every function
is batched over images and works for any image size.

Rate (Poisson) coding is a small extra used for comparisons (:func:`poisson_spikes`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .utils import check_float, check_int

#: The six DoG filters of Mozafari et al. 2019: (window size, sigma_1, sigma_2); on-centre when
#: sigma_1 < sigma_2 (centre Gaussian narrower), off-centre when swapped.
MOZAFARI_DOG = (
    (3, 3 / 9, 6 / 9),
    (3, 6 / 9, 3 / 9),
    (7, 7 / 9, 14 / 9),
    (7, 14 / 9, 7 / 9),
    (13, 13 / 9, 26 / 9),
    (13, 26 / 9, 13 / 9),
)


@dataclass(frozen=True)
class LatencyCodeParams:
    """Parameters of the DoG + latency input stage (defaults: Mozafari et al. 2019, section 2.1).

    Attributes:
        dog: filters as ``(size, sigma_1, sigma_2)`` (pixels); size odd.
        threshold: DoG responses below it are set to 0 (image scale 0..``intensity_scale``).
        intensity_scale: images in [0, 1] are multiplied by it before filtering (255 = 8-bit).
        norm_radius: r of the (2r+1)^2 local-mean window (pixels); 0 switches normalisation off.
        n_steps: T, the number of time steps (spike waves).
    """

    dog: tuple = MOZAFARI_DOG
    threshold: float = 50.0
    intensity_scale: float = 255.0
    norm_radius: int = 8
    n_steps: int = 15

    def __post_init__(self):
        if not isinstance(self.dog, tuple) or not self.dog:
            raise ValueError(f"dog must be a non-empty tuple of (size, sigma_1, sigma_2), got {self.dog!r}")
        for spec in self.dog:
            if len(spec) != 3:
                raise ValueError(f"dog: each filter must be (size, sigma_1, sigma_2), got {spec!r}")
            size = check_int("dog size", spec[0], minimum=1)
            if size % 2 == 0:
                raise ValueError(f"dog: window size must be odd, got {size}")
            check_float("dog sigma_1", spec[1], minimum=0.0, strict_minimum=True)
            check_float("dog sigma_2", spec[2], minimum=0.0, strict_minimum=True)
        check_float("threshold", self.threshold)
        check_float("intensity_scale", self.intensity_scale, minimum=0.0, strict_minimum=True)
        check_int("norm_radius", self.norm_radius, minimum=0)
        check_int("n_steps", self.n_steps, minimum=1, maximum=255)


def dog_kernel(size: int, sigma1: float, sigma2: float) -> torch.Tensor:
    """One difference-of-Gaussians kernel, zero-mean and scaled so its maximum is 1.

    .. math:: g(x, y) = \\frac{1}{2\\pi}\\Big(\\frac{1}{\\sigma_1^2} e^{-\\frac{x^2+y^2}{2\\sigma_1^2}}
              - \\frac{1}{\\sigma_2^2} e^{-\\frac{x^2+y^2}{2\\sigma_2^2}}\\Big),\\quad
              k = \\frac{g - \\bar g}{\\max(g - \\bar g)}

    over the integer grid ``-size//2 .. size//2`` (Mozafari et al. 2019, section 2.1).

    Args:
        size: window width (pixels), odd.
        sigma1: sigma_1 of the first (positive) Gaussian (pixels).
        sigma2: sigma_2 of the second (negative) Gaussian (pixels).
    Returns:
        ``[size, size]`` float32 kernel.
    """
    size = check_int("size", size, minimum=1)
    if size % 2 == 0:
        raise ValueError(f"size must be odd, got {size}")
    s1 = check_float("sigma1", sigma1, minimum=0.0, strict_minimum=True)
    s2 = check_float("sigma2", sigma2, minimum=0.0, strict_minimum=True)
    half = size // 2
    r = torch.arange(-half, half + 1, dtype=torch.float64)
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    g = (torch.exp(-0.5 * d2 / s1**2) / s1**2 - torch.exp(-0.5 * d2 / s2**2) / s2**2) / (2 * math.pi)
    g = g - g.mean()
    return (g / g.max()).to(torch.float32)


def dog_bank(specs=MOZAFARI_DOG) -> torch.Tensor:
    """Stack DoG kernels into a conv2d weight ``[n, 1, K, K]``, smaller ones zero-padded to the
    largest size K so all responses share one grid (same centre)."""
    kernels = [dog_kernel(*spec) for spec in specs]
    big = max(k.shape[-1] for k in kernels)
    padded = [F.pad(k, [(big - k.shape[-1]) // 2] * 4) for k in kernels]
    return torch.stack(padded)[:, None]


def _check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim not in (2, 3, 4):
        raise ValueError("images must be a tensor [H, W], [B, H, W] or [B, 1, H, W], got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    if images.ndim == 2:
        images = images[None, None]
    elif images.ndim == 3:
        images = images[:, None]
    if images.shape[1] != 1:
        raise ValueError(f"images must have one channel, got shape {tuple(images.shape)}")
    return images.to(torch.float32)


def dog_responses(images: torch.Tensor, *, specs=MOZAFARI_DOG, threshold: float = 50.0,
                  intensity_scale: float = 255.0) -> torch.Tensor:
    """DoG filter responses with the low ones removed: ``r_i = (k_i * (s I)) [>= threshold]``.

    Same-size ("zero-padded") convolution of the scaled image ``s I`` with each kernel; responses
    below ``threshold`` are set to 0 (Mozafari et al. 2019, section 2.1).

    Args:
        images: ``[B, 1, H, W]`` (or ``[B, H, W]``, ``[H, W]``) grey images in [0, 1].
        specs: the filters, ``(size, sigma_1, sigma_2)``.
        threshold: response threshold (image scale 0..``intensity_scale``).
        intensity_scale: s, the factor applied to the image first.
    Returns:
        ``[B, n_filters, H, W]`` float32.
    """
    x = _check_images(images) * float(intensity_scale)
    bank = dog_bank(specs).to(x.device)
    out = F.conv2d(x, bank, padding=bank.shape[-1] // 2)
    return torch.where(out < threshold, torch.zeros_like(out), out)


def local_normalise(x: torch.Tensor, radius: int = 8, eps: float = 1e-12) -> torch.Tensor:
    """Divide each channel by its local mean: ``y = x / (mean_{(2r+1)^2 window}(x) + eps)``.

    The mean always divides by (2r+1)^2 (zero padding at the borders), channel by channel.

    Args:
        x: ``[B, C, H, W]`` non-negative maps.
        radius: r (pixels); 0 returns ``x`` unchanged.
        eps: keeps empty windows finite.
    """
    radius = check_int("radius", radius, minimum=0)
    if radius == 0:
        return x
    b, c, h, w = x.shape
    size = 2 * radius + 1
    kernel = torch.full((1, 1, size, size), 1.0 / size**2, dtype=x.dtype, device=x.device)
    means = F.conv2d(x.reshape(b * c, 1, h, w), kernel, padding=radius).reshape(b, c, h, w)
    return x / (means + eps)


def intensity_to_latency(x: torch.Tensor, n_steps: int = 15) -> torch.Tensor:
    """Rank-order latency code: first-spike time of each unit, ``T`` (= ``n_steps``) for none.

    Per image, the non-zero values are ranked from strongest (rank 0) down; with
    ``n = floor(nnz / T)`` (at least 1) the unit of rank ``q`` spikes at step ``q // n`` if
    ``q < n T``, else never. So each step releases the same number ``n`` of new spikes, strongest
    first, and the ``nnz - nT`` weakest non-zero values stay silent, as in the paper's binning
    into T equal bins. Equal values keep their flat-index order (stable sort).

    Args:
        x: ``[B, ...]`` non-negative intensities (one image per row of the first axis).
        n_steps: T.
    Returns:
        int64 tensor shaped like ``x``, values in ``0..T``.
    """
    n_steps = check_int("n_steps", n_steps, minimum=1)
    flat = x.reshape(x.shape[0], -1)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=x.device).expand_as(order))
    nnz = (flat > 0).sum(dim=1, keepdim=True)
    per_step = torch.clamp(nnz // n_steps, min=1)
    times = ranks // per_step
    silent = (ranks >= per_step * n_steps) | (flat <= 0)
    times = torch.where(silent, torch.full_like(times, n_steps), times)
    return times.reshape(x.shape)


def spike_waves(times: torch.Tensor, n_steps: int, *, dtype=torch.float32) -> torch.Tensor:
    """Cumulative spike waves ``S[t] = 1[times <= t]``, shape ``[T, *times.shape]``.

    A unit that spiked stays 1 afterwards: this is how the non-leaky network sees its input.
    """
    n_steps = check_int("n_steps", n_steps, minimum=1)
    steps = torch.arange(n_steps, device=times.device).reshape(-1, *([1] * times.ndim))
    return (times.unsqueeze(0) <= steps).to(dtype)


def first_spike_times(waves: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`spike_waves`: the first step at which each unit is 1 (``T`` if never)."""
    n_steps = waves.shape[0]
    on = waves > 0
    first = on.to(torch.int64).argmax(dim=0)
    return torch.where(on.any(dim=0), first, torch.full_like(first, n_steps))


def encode_latency(images: torch.Tensor, params: LatencyCodeParams | None = None) -> torch.Tensor:
    """The whole input stage: DoG -> threshold -> local normalisation -> latency times.

    Args:
        images: ``[B, 1, H, W]`` grey images in [0, 1] (any H, W).
        params: :class:`LatencyCodeParams` (paper defaults if ``None``).
    Returns:
        int64 first-spike times ``[B, n_filters, H, W]`` in ``0..T`` (``T`` = never).
    """
    p = params or LatencyCodeParams()
    r = dog_responses(images, specs=p.dog, threshold=p.threshold, intensity_scale=p.intensity_scale)
    r = local_normalise(r, p.norm_radius)
    return intensity_to_latency(r, p.n_steps)


def poisson_spikes(rates_hz, n_steps: int | None = None, *, dt_ms: float = 1.0,
                   generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rate code: independent Bernoulli spikes, ``P(spike in a step of dt ms) = rate * dt / 1000``.

    The Bernoulli approximation of a Poisson process of rate ``rate`` (good while rate * dt << 1000);
    a probability above 1 is an error, not clipped. The one Poisson source of snnlab: the rate-code
    comparisons and the demos of ``snnlab.learning`` (homeostasis, reward, structural) draw from it.

    Args:
        rates_hz: firing rates (Hz), a number or a tensor, in [0, 1000 / dt_ms].
        n_steps: T, for rates constant in time: spikes ``[T, *rates_hz.shape]``. ``None``: one draw
            per entry of ``rates_hz`` (which may already carry a time axis, for rates that change in
            time): spikes shaped like ``rates_hz``.
        dt_ms: step length (ms), > 0.
        generator: a seeded ``torch.Generator`` for reproducible spikes (draws in row-major order).
        dtype: dtype of the uniform draws and of the spikes.
    Returns:
        0/1 spikes of ``dtype``.
    """
    if n_steps is not None:
        n_steps = check_int("n_steps", n_steps, minimum=1)
    dt_ms = check_float("dt_ms", dt_ms, minimum=0.0, strict_minimum=True)
    p = torch.as_tensor(rates_hz, dtype=dtype) * (dt_ms / 1000.0)
    if p.numel():
        p_min, p_max = float(p.min()), float(p.max())   # two scalars: cheaper than two .any() per step
        if p_min < 0 or p_max > 1:
            raise ValueError(f"rates_hz must lie in [0, 1000 / dt_ms] = [0, {1000.0 / dt_ms:g}] Hz, got rates "
                             f"from {p_min * 1000.0 / dt_ms:g} to {p_max * 1000.0 / dt_ms:g} Hz")
    shape = p.shape if n_steps is None else (n_steps, *p.shape)
    return (torch.rand(shape, generator=generator, dtype=dtype, device=p.device) < p).to(dtype)
