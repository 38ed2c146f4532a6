"""Recurrent LIF/ALIF spiking networks and the sequence tasks that BPTT, truncated BPTT and e-prop share.

One network, one explicit time loop, so the three learning algorithms see exactly the same forward
pass. The neuron is spikingjelly's soft-reset LIF (``neuron.LIFNode(decay_input=False,
v_reset=None)``, charge -> fire -> reset) with an optional adaptive threshold (ALIF, Bellec et al.
2018/2020); spikes go through a spikingjelly surrogate function (``surrogate.ATan`` or
``surrogate.Sigmoid``), whose derivative is the "pseudo-derivative" psi of e-prop.

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
surrogate gradients, doi:10.1109/MSP.2019.2931595.

Tasks: the offline digits as a sequence of rows (:func:`digits_sequence_task`) and a delayed-recall
task where memory across time matters (:func:`delayed_recall_task`). Used by
``notebooks/04_bptt_tbptt_eprop.ipynb``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils import check_choice, check_float, check_int

SURROGATES = ("atan", "sigmoid")
NEURONS = ("lif", "alif")
ENCODINGS = ("current", "spikes")


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
        surrogate: spikingjelly surrogate, ``"atan"`` (surrogate.ATan) or ``"sigmoid"``.
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


def make_surrogate(name: str = "atan", alpha: float = 2.0):
    """The spikingjelly surrogate spike function: Heaviside forward, smooth derivative backward.

    ``"atan"``: g'(x) = (alpha/2) / (1 + (pi/2 alpha x)^2); ``"sigmoid"``: g'(x) = alpha s(1-s),
    s = sigmoid(alpha x) (spikingjelly.activation_based.surrogate.ATan / Sigmoid).
    """
    from spikingjelly.activation_based import surrogate

    check_choice("surrogate", name, SURROGATES)
    check_float("surrogate_alpha", alpha, minimum=0.0, strict_minimum=True)
    return surrogate.ATan(alpha=alpha) if name == "atan" else surrogate.Sigmoid(alpha=alpha)


def surrogate_derivative(spike_fn, x: torch.Tensor) -> torch.Tensor:
    """The surrogate derivative g'(x) that ``spike_fn`` uses in its backward pass, as a tensor.

    Obtained from the surrogate's own backward (autograd on a detached copy), so e-prop's
    pseudo-derivative psi is by construction the same function BPTT differentiates through.
    """
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(spike_fn(x_).sum(), x_)
    return grad


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
        params: :class:`RSNNParams`; spike_fn: a spikingjelly surrogate (see :func:`make_surrogate`).
    Returns:
        (:class:`StepRecord`, new :class:`RSNNState`).
    """
    p = params
    a = p.rho * state.a + state.z                      # the threshold always sees the own spike
    current = x_t @ w_in.t()
    if w_rec is not None:
        z_rec = state.z.detach() if p.detach_recurrent else state.z
        current = current + z_rec @ w_rec.t()
    h = p.alpha * state.v + current
    threshold = p.v_threshold + p.beta * a
    z = spike_fn((h - threshold) / p.v_threshold)
    z_reset = z.detach() if p.detach_reset else z
    v = h - p.v_threshold * z_reset
    y = p.kappa * state.y + z @ w_out.t() + b_out
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
    W_out ~ N(0, (1/sqrt(H))^2), b_out = 0.
    """

    def __init__(self, params: RSNNParams, *, generator: torch.Generator | None = None,
                 in_gain: float = 1.0, rec_gain: float = 0.5, dtype: torch.dtype = torch.float32):
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


def digits_sequence_task(split, *, steps_per_row: int = 2, encoding: str = "current", gain: float = 1.0,
                         readout_steps: int | None = None, generator: torch.Generator | None = None
                         ) -> SequenceTask:
    """The offline digits as a sequence: row r of the image is the input during steps
    [r*steps_per_row, (r+1)*steps_per_row) (one input channel per column).

    Args:
        split: a :class:`snnlab.data.Split` (``x`` [N, 1, H, W] in [0, 1], ``y`` [N]).
        steps_per_row: time steps per image row; T = H * steps_per_row.
        encoding: ``"current"`` (x_t = gain * pixel) or ``"spikes"`` (Bernoulli(pixel) 0/1 spikes,
            drawn with ``generator``).
        gain: input scale for ``"current"``.
        readout_steps: the loss mask covers the last ``readout_steps`` steps (default: the second half).
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
                        f"loss on the last {readout_steps} steps")


def delayed_recall_task(n_trials: int, *, n_classes: int = 2, cue_steps: int = 5, delay_steps: int = 20,
                        recall_steps: int = 5, channels_per_class: int = 4, rate: float = 0.5,
                        noise_rate: float = 0.02, generator: torch.Generator | None = None) -> SequenceTask:
    """Delayed recall: a cue names one of ``n_classes``; after a silent delay, report it.

    Inputs (0/1 spikes): ``channels_per_class`` channels per class fire with probability ``rate`` per
    step during the cue; ``channels_per_class`` "recall" channels fire during the recall period;
    every channel fires with probability ``noise_rate`` otherwise. The loss mask covers the recall
    steps only, so the network must hold the cue across ``delay_steps`` steps; truncated BPTT with a
    window shorter than the delay cannot assign credit to the cue. T = cue + delay + recall.
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
                        f"recall {recall_steps} steps")


# --------------------------------------------------------------------------- training helpers
def minibatches(n: int, batch_size: int, *, generator: torch.Generator | None = None, shuffle: bool = True):
    """Yield index tensors covering range(n) in batches (a seeded permutation when ``shuffle``)."""
    check_int("batch_size", batch_size, minimum=1)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def evaluate(net: RecurrentSNN, task: SequenceTask, *, batch_size: int = 512) -> dict:
    """Accuracy, loss and mean firing rate (spikes per neuron per step) of ``net`` on ``task``."""
    dtype = net.w_in.dtype
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
    ax0.legend(fontsize="small", loc="upper left")
    for a in compare:
        if a != alpha:
            ax1.plot(x, surrogate_derivative(make_surrogate(name, a), x), color="0.7", linewidth=1)
    ax1.plot(x, surrogate_derivative(fn, x), color="C3", linewidth=2, label=f"g'(x), alpha={alpha:g} (backward)")
    ax1.set_xlabel("(h - A) / v_th")
    ax1.set_ylabel("pseudo-derivative psi")
    ax1.legend(fontsize="small")
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def atan_prime(u: float, alpha: float = 2.0) -> float:
    """The ATan surrogate's derivative as a plain float, g'(u) = (alpha/2) / (1 + (pi/2 alpha u)^2)
    (spikingjelly ``surrogate.ATan``); for hand calculations in notebook 04's exercise."""
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * u) ** 2)
