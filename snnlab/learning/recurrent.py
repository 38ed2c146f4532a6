"""Sequence tasks, the loss and the evaluation that BPTT, truncated BPTT and e-prop share.

The network they train is :class:`snnlab.models.recurrent.RecurrentSNN` (recurrent LIF/ALIF neurons
with a leaky readout y_t, time first); its neurons and surrogate live in :mod:`snnlab.neurons`.
The loss is a per-step cross-entropy weighted by a time mask,

    E = sum_t m_t sum_b CE(y_t^b, c^b) / N,      N = B sum_t m_t,

a sum over steps, so it splits into windows for truncated BPTT and gives e-prop an online error
dE/dy_t at every step (:func:`output_error`).

Tasks: the offline digits as a sequence of rows (:func:`digits_sequence_task`) and a delayed-recall
task where memory across time matters (:func:`delayed_recall_task`). Used by
``notebooks/04_bptt_tbptt_eprop.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.recurrent import RecurrentSNN
from ..neurons import make_surrogate, surrogate_derivative
from ..utils import check_choice, check_float, check_int

ENCODINGS = ("current", "spikes")

#: one colour per method in every figure of notebook 04 (matplotlib's cycle colours)
METHOD_COLOURS = {"bptt": "C0", "e-prop symmetric": "C1", "e-prop random": "C2", "tbptt": "C3",
                  "symmetric": "C1", "random": "C2", "control": "0.35"}


# --------------------------------------------------------------------------- loss and readout
def _check_targets(y_out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    if y_out.ndim != 3:
        raise ValueError(f"y_out must be [T, B, K], got shape {tuple(y_out.shape)}")
    if target.shape != (y_out.shape[1],):
        raise ValueError(f"target must be [B] = [{y_out.shape[1]}] class indices, got {tuple(target.shape)}")
    if mask.shape != (y_out.shape[0],):
        raise ValueError(f"mask must be [T] = [{y_out.shape[0]}] weights, got {tuple(mask.shape)}")


def loss_normaliser(mask: torch.Tensor, batch_size: int) -> float:
    """N = B * sum_t m_t, the constant that makes :func:`sequence_loss` a mean over batch and steps."""
    total = float(mask.sum())
    if total <= 0:
        raise ValueError("mask must have at least one positive weight")
    return total * batch_size


def sequence_loss(y_out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
                  normaliser: float | None = None) -> torch.Tensor:
    """Per-step cross-entropy weighted by a time mask: E = sum_t m_t sum_b CE(y_t^b, c^b) / N.

    A sum over steps, so it splits into windows for truncated BPTT and gives e-prop an online error
    at every step. ``normaliser`` N defaults to B sum_t m_t (pass the full-sequence N for a window).
    Args: y_out [T, B, K] readout; target [B] class indices; mask m [T] >= 0.
    """
    _check_targets(y_out, target, mask)
    if normaliser is None:
        normaliser = loss_normaliser(mask, y_out.shape[1])
    t, b, k = y_out.shape
    ce = F.cross_entropy(y_out.reshape(t * b, k), target.repeat(t), reduction="none").reshape(t, b)
    return (mask.to(ce.dtype)[:, None] * ce).sum() / normaliser


def output_error(y_t: torch.Tensor, target: torch.Tensor, weight: float, normaliser: float) -> torch.Tensor:
    """delta_t = dE/dy_t = m_t (softmax(y_t) - onehot(c)) / N: the online error of :func:`sequence_loss`.

    Args: y_t [B, K]; target [B]; weight m_t; normaliser N. Returns [B, K].
    """
    onehot = F.one_hot(target, y_t.shape[-1]).to(y_t.dtype)
    return (weight / normaliser) * (torch.softmax(y_t, dim=-1) - onehot)


def predict(y_out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Class decision: argmax_k sum_t m_t y_t[k] (the readout summed over the masked steps). [B]."""
    return (mask.to(y_out.dtype)[:, None, None] * y_out).sum(0).argmax(-1)


# --------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class SequenceTask:
    """A sequence classification data set: x [T, N, n_in] float, y [N] int64, mask [T] (loss weights)."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    n_classes: int
    description: str

    def __post_init__(self):
        if self.x.ndim != 3 or self.y.ndim != 1 or self.x.shape[1] != self.y.shape[0]:
            raise ValueError(f"x must be [T, N, n_in] and y [N]; got {tuple(self.x.shape)} and {tuple(self.y.shape)}")
        if self.mask.shape != (self.x.shape[0],):
            raise ValueError(f"mask must be [T] = [{self.x.shape[0]}], got {tuple(self.mask.shape)}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.x.shape[2])

    def subset(self, index: torch.Tensor) -> "SequenceTask":
        """The trials ``index`` (a LongTensor or slice) as a new task."""
        return SequenceTask(self.x[:, index], self.y[index], self.mask, self.n_classes, self.description)

    def to(self, device: str | torch.device) -> "SequenceTask":
        """The same task with ``x``, ``y`` and ``mask`` on ``device`` (itself when they are there already)."""
        device = torch.device(device)
        if self.x.device == device and self.y.device == device and self.mask.device == device:
            return self
        return SequenceTask(self.x.to(device), self.y.to(device), self.mask.to(device), self.n_classes,
                            self.description)


def digits_sequence_task(split, *, steps_per_row: int = 2, encoding: str = "current", gain: float = 1.0,
                         readout_steps: int | None = None, generator: torch.Generator | None = None,
                         device: str | torch.device = "cpu") -> SequenceTask:
    """The offline digits as a sequence: row r of the image is the input during steps
    [r*steps_per_row, (r+1)*steps_per_row) (one input channel per column).

    Args:
        split: a :class:`snnlab.data.Split` (``x`` [N, 1, H, W] in [0, 1], ``y`` [N]).
        steps_per_row: time steps per image row; T = H * steps_per_row.
        encoding: ``"current"`` (x_t = gain * pixel) or ``"spikes"`` (Bernoulli(pixel) 0/1 spikes,
            drawn with ``generator``).
        gain: input scale for ``"current"``.
        readout_steps: the loss mask covers the last ``readout_steps`` steps (default: the second half).
        device: where the task's tensors go (built on the CPU, spikes drawn there, then moved).
    """
    check_int("steps_per_row", steps_per_row, minimum=1)
    check_choice("encoding", encoding, ENCODINGS)
    check_float("gain", gain, minimum=0.0, strict_minimum=True)
    images = split.x
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"split.x must be [N, 1, H, W] grey images, got {tuple(images.shape)}")
    n, _, height, width = images.shape
    rows = images[:, 0].permute(1, 0, 2)                      # [H, N, W]
    x = rows.repeat_interleave(steps_per_row, dim=0)          # [T, N, W]
    if encoding == "spikes":
        x = torch.bernoulli(x.clamp(0, 1), generator=generator)
    else:
        x = gain * x
    t = x.shape[0]
    readout_steps = t // 2 if readout_steps is None else check_int("readout_steps", readout_steps, minimum=1, maximum=t)
    mask = torch.zeros(t)
    mask[t - readout_steps:] = 1.0
    return SequenceTask(x.contiguous(), split.y.clone(), mask, 10,
                        f"digits {height}x{width} as {t} steps ({steps_per_row}/row, {encoding}), "
                        f"loss on the last {readout_steps} steps").to(device)


def delayed_recall_task(n_trials: int, *, n_classes: int = 2, cue_steps: int = 5, delay_steps: int = 20,
                        recall_steps: int = 5, channels_per_class: int = 4, rate: float = 0.5,
                        noise_rate: float = 0.02, generator: torch.Generator | None = None,
                        device: str | torch.device = "cpu") -> SequenceTask:
    """Delayed recall: a cue names one of ``n_classes``; after a silent delay, report it.

    Inputs (0/1 spikes): ``channels_per_class`` channels per class fire with probability ``rate`` per
    step during the cue; ``channels_per_class`` "recall" channels fire during the recall period;
    every channel fires with probability ``noise_rate`` otherwise. The loss mask covers the recall
    steps only, so the network must hold the cue across ``delay_steps`` steps; truncated BPTT with a
    window shorter than the delay cannot assign credit to the cue. T = cue + delay + recall.
    Drawn on the CPU (``generator``), then moved to ``device``: every device gets the same trials.
    """
    check_int("n_trials", n_trials, minimum=1)
    check_int("n_classes", n_classes, minimum=2)
    check_int("cue_steps", cue_steps, minimum=1)
    check_int("delay_steps", delay_steps, minimum=0)
    check_int("recall_steps", recall_steps, minimum=1)
    check_int("channels_per_class", channels_per_class, minimum=1)
    check_float("rate", rate, minimum=0.0, maximum=1.0)
    check_float("noise_rate", noise_rate, minimum=0.0, maximum=1.0)
    t_total = cue_steps + delay_steps + recall_steps
    c = channels_per_class
    n_in = (n_classes + 1) * c
    labels = torch.randint(0, n_classes, (n_trials,), generator=generator)
    prob = torch.full((t_total, n_trials, n_in), noise_rate)
    cue_channels = labels[:, None] * c + torch.arange(c)[None, :]            # [N, c]
    trial_idx = torch.arange(n_trials)[:, None].expand(-1, c)
    prob[:cue_steps, trial_idx, cue_channels] = rate
    prob[t_total - recall_steps:, :, n_classes * c:] = rate
    x = torch.bernoulli(prob, generator=generator)
    mask = torch.zeros(t_total)
    mask[t_total - recall_steps:] = 1.0
    return SequenceTask(x, labels, mask, n_classes,
                        f"delayed recall: {n_classes} classes, cue {cue_steps} + delay {delay_steps} + "
                        f"recall {recall_steps} steps").to(device)


# --------------------------------------------------------------------------- training helpers
def minibatches(n: int, batch_size: int, *, generator: torch.Generator | None = None, shuffle: bool = True):
    """Yield index tensors covering range(n) in batches (a seeded permutation when ``shuffle``)."""
    check_int("batch_size", batch_size, minimum=1)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def evaluate(net: RecurrentSNN, task: SequenceTask, *, batch_size: int = 512) -> dict:
    """Accuracy, loss and mean firing rate (spikes per neuron per step) of ``net`` on ``task``
    (computed on the network's device)."""
    dtype = net.w_in.dtype
    task = task.to(net.w_in.device)
    correct, loss_sum, spikes = 0, 0.0, 0.0
    for index in minibatches(len(task), batch_size, shuffle=False):
        x = task.x[:, index].to(dtype)
        out = net(x)
        target = task.y[index]
        correct += int((predict(out.y, task.mask) == target).sum())
        loss_sum += float(sequence_loss(out.y, target, task.mask)) * len(index)
        spikes += float(out.z.mean()) * len(index)
    n = len(task)
    return {"accuracy": correct / n, "loss": loss_sum / n, "rate": spikes / n}


# --------------------------------------------------------------------------- figures
def plot_surrogate(alpha: float = 2.0, *, name: str = "atan", compare=(1.0, 2.0, 4.0, 8.0), x_range: float = 2.0):
    """The spike function H(x) with the surrogate's primitive g(x) and derivative g'(x) at slope
    ``alpha`` (bold), and g' at the slopes in ``compare`` (faint). x = (h - A)/v_th. Returns the Figure."""
    import matplotlib.pyplot as plt

    check_float("alpha", alpha, minimum=0.0, strict_minimum=True)
    x = torch.linspace(-x_range, x_range, 401, dtype=torch.float64)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.2))
    fn = make_surrogate(name, alpha)
    ax0.plot(x, (x >= 0).double(), color="k", label="Heaviside H(x) (forward)")
    ax0.plot(x, fn.primitive_function(x, alpha), color="C0", label=f"{name} primitive g(x), alpha={alpha:g}")
    ax0.set_xlabel("(h - A) / v_th")
    ax0.set_ylabel("spike output z")
    ax0.legend(fontsize="small", loc="upper left")
    for a in compare:
        if a != alpha:
            ax1.plot(x, surrogate_derivative(make_surrogate(name, a), x), color="0.7", linewidth=1)
    ax1.plot(x, surrogate_derivative(fn, x), color="C3", linewidth=2, label=f"g'(x), alpha={alpha:g} (backward)")
    ax1.plot([], [], color="0.7", linewidth=1, label="alpha = " + ", ".join(f"{a:g}" for a in compare if a != alpha))
    ax1.set_xlabel("(h - A) / v_th")
    ax1.set_ylabel("surrogate derivative g'(x)")
    ax1.legend(fontsize="small", loc="upper right")
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
