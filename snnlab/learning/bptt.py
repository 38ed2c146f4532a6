"""Backpropagation through time (BPTT) and truncated BPTT for recurrent spiking networks.

**BPTT** unrolls the explicit time loop of :class:`snnlab.models.recurrent.RecurrentSNN` into one
graph and differentiates the whole-sequence loss E = sum_t E_t with autograd; the Heaviside spike
is differentiated through the surrogate of :mod:`snnlab.neurons` (Neftci, Mostafa & Zenke 2019,
doi:10.1109/MSP.2019.2931595). Credit flows back through the membrane (dh_t/dh_{t-1} = alpha),
through recurrent spikes and through threshold adaptation.

**Truncated BPTT with window k** (Williams & Peng 1990, Neural Computation 2:490,
doi:10.1162/neco.1990.2.4.490; their BPTT(h; h') with h = h' = k): the sequence is cut into windows
of k steps; the state at each window boundary is carried forward *in value* but detached, so the
gradient of the losses inside window w reaches only the steps of window w:

    g_TBPTT = sum_w d/dtheta [ sum_{t in w} E_t ]   with   s_{start(w)-1} treated as a constant.

With k = T there is one window and g_TBPTT = g_BPTT exactly. Memory for the autograd graph grows
with k instead of T; :class:`SavedTensorMeter` measures it deterministically by counting the bytes
autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``).

Used by ``notebooks/04_bptt_tbptt_eprop.ipynb``.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from ..utils import progress as progress_bar

from ..models.recurrent import RecurrentSNN, check_sequence
from ..utils import check_choice, check_float, check_int
from .recurrent import METHOD_COLOURS, SequenceTask, evaluate, loss_normaliser, minibatches, predict, sequence_loss


def named_parameters(net: RecurrentSNN) -> dict[str, torch.nn.Parameter]:
    """The trainable parameters by name (``w_in``, ``w_rec`` when recurrent, ``w_out``, ``b_out``)."""
    return {name: p for name, p in net.named_parameters()}


# --------------------------------------------------------------------------- memory meter
class SavedTensorMeter:
    """Counts the bytes autograd saves for the backward pass (the activations memory of BPTT).

    Inside ``with meter.window():`` every tensor autograd saves is recorded once per storage
    (parameters excluded: they live anyway); when the window closes its total is compared with the
    peak. Because the graph of a window is freed by its ``backward()``, the peak over windows is the
    peak activation memory of truncated BPTT. Deterministic (no RSS, no allocator noise).
    """

    def __init__(self, exclude: Iterator[torch.Tensor] = ()):
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.peak_bytes = 0
        self.window_bytes: list[int] = []
        self._seen: dict[int, int] | None = None

    def _pack(self, tensor: torch.Tensor):
        if self._seen is not None:
            storage = tensor.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in self._exclude and ptr not in self._seen:
                self._seen[ptr] = storage.nbytes()
        return tensor

    @staticmethod
    def _unpack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    @contextlib.contextmanager
    def window(self):
        """Record the tensors saved inside this block as one window of the graph."""
        self._seen = {}
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack):
                yield self
        finally:
            total = sum(self._seen.values())
            self.window_bytes.append(total)
            self.peak_bytes = max(self.peak_bytes, total)
            self._seen = None


# --------------------------------------------------------------------------- gradients
def bptt_gradients(net: RecurrentSNN, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
                   ) -> tuple[dict[str, torch.Tensor], float]:
    """Full BPTT: gradient of :func:`sequence_loss` over the whole sequence, by autograd.

    Args: x [T, B, n_in]; target [B]; mask [T]. Returns ({name: dE/dtheta}, E). Leaves ``.grad`` alone.
    """
    check_sequence(x, net.params.n_in)
    params = named_parameters(net)
    out = net(x)
    loss = sequence_loss(out.y, target, mask)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {name: (torch.zeros_like(p) if g is None else g) for (name, p), g in zip(params.items(), grads)}, float(loss.detach())


def tbptt_gradients(net: RecurrentSNN, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, k: int,
                    meter: SavedTensorMeter | None = None, carry_state: bool = True
                    ) -> tuple[dict[str, torch.Tensor], float]:
    """Truncated BPTT with window ``k``: the gradient summed over windows, state detached between them.

    The loss of each window is the window's share of the whole-sequence loss (same normaliser N), so
    the window losses add up to :func:`sequence_loss` and k = T reproduces :func:`bptt_gradients`.
    ``meter`` (a :class:`SavedTensorMeter`) measures the saved-tensor bytes of each window.
    ``carry_state=False`` is a control, not truncated BPTT: every window starts from the zero state
    (:meth:`RecurrentSNN.init_state`), so not even the *values* cross a window boundary.
    Returns ({name: g_TBPTT}, E).
    """
    check_sequence(x, net.params.n_in)
    t_total = x.shape[0]
    k = check_int("k", k, minimum=1)
    params = named_parameters(net)
    grads = {name: torch.zeros_like(p) for name, p in params.items()}
    normaliser = loss_normaliser(mask, x.shape[1])
    state = net.init_state(x.shape[1])
    total_loss = 0.0
    for start in range(0, t_total, k):
        stop = min(start + k, t_total)
        if carry_state:
            state = type(state)(*(s.detach() for s in state))   # carry the value, cut the graph
        else:
            state = net.init_state(x.shape[1])                   # control: forget the value too
        context = meter.window() if meter is not None else contextlib.nullcontext()
        with context:
            out = net(x[start:stop], state)
            loss = sequence_loss(out.y, target, mask[start:stop], normaliser=normaliser)
        state = out.state
        if loss.requires_grad:
            window_grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for (name, _), g in zip(params.items(), window_grads):
                if g is not None:
                    grads[name] += g
        total_loss += float(loss.detach())
    return grads, total_loss


def tbptt_memory(net: RecurrentSNN, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                 windows) -> dict[int, int]:
    """Peak saved-tensor bytes of truncated BPTT for each window k in ``windows`` (k = T is BPTT)."""
    result = {}
    for k in windows:
        meter = SavedTensorMeter(exclude=net.parameters())
        tbptt_gradients(net, x, target, mask, k=k, meter=meter)
        result[int(k)] = meter.peak_bytes
    return result


# --------------------------------------------------------------------------- training
def train(net: RecurrentSNN, train_task: SequenceTask, val_task: SequenceTask | None = None, *,
          method: str = "bptt", k: int | None = None, epochs: int = 10, batch_size: int = 32,
          lr: float = 1e-2, generator: torch.Generator | None = None, progress: bool = True,
          carry_state: bool = True) -> dict:
    """Train ``net`` with Adam on gradients from full BPTT (``method="bptt"``) or truncated BPTT
    with window ``k`` (``method="tbptt"``; one Adam step per minibatch, the window gradients summed).
    ``carry_state=False`` (truncated BPTT only) starts every window from the zero state during
    training (see :func:`tbptt_gradients`); evaluation always runs the whole sequence.

    Returns a history dict: ``train_loss`` (mean minibatch loss per epoch), ``val_accuracy`` and
    ``val_loss`` per epoch (when ``val_task`` is given). Runs on the network's device (the tasks are
    moved there once; the minibatch order is drawn on the CPU from ``generator``).
    """
    check_choice("method", method, ("bptt", "tbptt"))
    check_int("epochs", epochs, minimum=1)
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    if method == "tbptt":
        if k is None:
            raise ValueError("k (the truncation window) is required for method='tbptt'")
        check_int("k", k, minimum=1)
    dtype = net.w_in.dtype
    train_task = train_task.to(net.w_in.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    history = {"train_loss": [], "val_accuracy": [], "val_loss": []}
    for _ in progress_bar(range(epochs), desc=f"{method}" + (f" k={k}" if method == "tbptt" else ""),
                  disable=not progress, leave=False):
        losses = []
        for index in minibatches(len(train_task), batch_size, generator=generator):
            x = train_task.x[:, index].to(dtype)
            target = train_task.y[index]
            if method == "bptt":
                grads, loss = bptt_gradients(net, x, target, train_task.mask)
            else:
                grads, loss = tbptt_gradients(net, x, target, train_task.mask, k=k, carry_state=carry_state)
            apply_gradients(net, optimizer, grads)
            losses.append(loss)
        history["train_loss"].append(sum(losses) / len(losses))
        if val_task is not None:
            metrics = evaluate(net, val_task)
            history["val_accuracy"].append(metrics["accuracy"])
            history["val_loss"].append(metrics["loss"])
    return history


# --------------------------------------------------------------------------- what crosses a window boundary
STATE_PARTS = ("v", "a", "z", "y")


def state_at(net: RecurrentSNN, x: torch.Tensor, step: int):
    """The network state after the first ``step`` steps of ``x`` [T, B, n_in] (an :class:`RSNNState`,
    no graph): the values truncated BPTT carries across a window boundary at ``step``."""
    check_sequence(x, net.params.n_in)
    step = check_int("step", step, minimum=1, maximum=x.shape[0])
    with torch.no_grad():
        return net(x[:step].to(net.w_in.dtype)).state


@torch.no_grad()
def accuracy_with_reset(net: RecurrentSNN, task: SequenceTask, *, step: int, reset=STATE_PARTS) -> float:
    """Accuracy of ``net`` on ``task`` when the state parts in ``reset`` (names from ``STATE_PARTS``:
    membrane v, adaptation a, last spikes z, readout y) are set to zero after ``step`` steps and the
    rest of the sequence runs on. ``reset=()`` gives the plain accuracy (:func:`evaluate`)."""
    reset = tuple(reset)
    for name in reset:
        check_choice("reset", name, STATE_PARTS)
    task = task.to(net.w_in.device)
    x = task.x.to(net.w_in.dtype)
    state = state_at(net, x, step)
    state = state._replace(**{name: torch.zeros_like(getattr(state, name)) for name in reset})
    if step < x.shape[0]:
        y_rest = net(x[step:], state).y
        y_all = torch.cat([net(x[:step]).y, y_rest]) if step > 0 else y_rest
    else:
        y_all = net(x).y
    return float((predict(y_all, task.mask) == task.y).double().mean())


def linear_probe(features_train: torch.Tensor, labels_train: torch.Tensor, features_test: torch.Tensor,
                 labels_test: torch.Tensor, *, l2: float = 1e-3) -> float:
    """Test accuracy of an L2-regularised logistic regression (features standardised on the training
    set, fitted by L-BFGS, deterministic) that reads a binary label from ``features`` [N, D]."""
    ftr, fte = features_train.detach().double().cpu(), features_test.detach().double().cpu()
    ytr, yte = labels_train.cpu(), labels_test.cpu()
    if set(ytr.unique().tolist()) - {0, 1}:
        raise ValueError("linear_probe reads binary labels (0/1)")
    mean, std = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fte = (ftr - mean) / std, (fte - mean) / std
    w = torch.zeros(ftr.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(ftr @ w + b, ytr.double()) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return float((((fte @ w + b) > 0).long() == yte).double().mean())


def probe_carried_state(net: RecurrentSNN, train_task: SequenceTask, test_task: SequenceTask, *, step: int) -> dict:
    """How well a linear read-out finds the label in the state carried across a boundary at ``step``:
    {``"v"``, ``"a"``, ``"z"``, ``"all"``: test accuracy of :func:`linear_probe`} (a is omitted for
    LIF networks, where it is not used)."""
    s_train = state_at(net, train_task.x.to(net.w_in.device), step)
    s_test = state_at(net, test_task.x.to(net.w_in.device), step)
    parts = ("v", "a", "z") if net.params.beta != 0.0 else ("v", "z")
    result = {name: linear_probe(getattr(s_train, name), train_task.y, getattr(s_test, name), test_task.y)
              for name in parts}
    result["all"] = linear_probe(torch.cat([getattr(s_train, n) for n in parts], 1), train_task.y,
                                 torch.cat([getattr(s_test, n) for n in parts], 1), test_task.y)
    return result


def input_credit(net: RecurrentSNN, x: torch.Tensor, *, k: int | None = None) -> torch.Tensor:
    """Which inputs the (truncated) gradient of each readout step reaches: C[t, s] = sum over trials,
    channels and readout units of |dy_t/dx_s| when the sequence is cut into windows of ``k`` steps
    with the state detached at each boundary (``k=None``: no cut, BPTT). C[t, s] = 0 for s > t, and
    for s in an earlier window than t when truncated. Args: x [T, B, n_in]. Returns [T, T]."""
    check_sequence(x, net.params.n_in)
    t_total = x.shape[0]
    k = t_total if k is None else check_int("k", k, minimum=1)
    x = x.detach().to(net.w_in.dtype).clone().requires_grad_(True)
    state = net.init_state(x.shape[1])
    ys = []
    for start in range(0, t_total, k):
        state = type(state)(*(s.detach() for s in state))
        out = net(x[start:start + k], state)
        ys.append(out.y)
        state = out.state
    y = torch.cat(ys)
    credit = x.new_zeros(t_total, t_total)
    for t in range(t_total):
        for unit in range(y.shape[-1]):
            (g,) = torch.autograd.grad(y[t, :, unit].sum(), x, retain_graph=True)
            credit[t] += g.abs().sum(dim=(1, 2)).detach()
    return credit


def loss_steps_reaching(mask: torch.Tensor, k: int, steps) -> list[int]:
    """The loss steps t (``mask[t] > 0``) whose window of ``k`` steps (windows start at 0, k, 2k, ...)
    also holds one of ``steps`` (e.g. the cue steps): the loss steps whose truncated gradient can
    reach those inputs."""
    k = check_int("k", k, minimum=1)
    steps = list(steps)
    return [t for t in range(len(mask)) if float(mask[t]) > 0 and any(s // k == t // k and s <= t for s in steps)]


def plot_credit(credits: dict, *, cue_steps: int | None = None, mask: torch.Tensor | None = None):
    """One image per entry of ``credits`` ({title: C from :func:`input_credit`}): log10 of the credit
    C[t, s] of the readout at step t (rows) to the input at step s (columns), cue and loss steps
    marked. Returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(credits), figsize=(3.6 * len(credits) + 0.8, 3.6), squeeze=False)
    axes = axes[0]
    logs = {name: np.log10(c.cpu().numpy() + 1e-12) for name, c in credits.items()}
    vmax = max(float(v.max()) for v in logs.values())
    vmin = vmax - 6
    for ax, (name, image) in zip(axes, logs.items()):
        im = ax.imshow(np.clip(image, vmin, vmax), origin="lower", cmap="viridis", vmin=vmin, vmax=vmax,
                       aspect="auto")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("input step s (ms)")
        ax.set_ylabel("readout step t (ms)")
        if cue_steps is not None:
            ax.axvspan(-0.5, cue_steps - 0.5, ymin=0, ymax=0.03, color="C1")
        if mask is not None:
            rows = [t for t in range(len(mask)) if float(mask[t]) > 0]
            ax.axhspan(rows[0] - 0.5, rows[-1] + 0.5, xmin=0.97, xmax=1.0, color="C3")
    fig.tight_layout()
    fig.colorbar(im, ax=list(axes), label="log10 |dy_t / dx_s| (summed)", shrink=0.9)
    return fig


def apply_gradients(net: RecurrentSNN, optimizer: torch.optim.Optimizer, grads: dict[str, torch.Tensor]) -> None:
    """Write ``grads`` into ``.grad`` (every parameter must have one) and take one optimizer step."""
    params = named_parameters(net)
    missing = set(params) - set(grads)
    if missing:
        raise ValueError(f"grads lacks {sorted(missing)}")
    optimizer.zero_grad(set_to_none=True)
    for name, p in params.items():
        p.grad = grads[name].detach().clone()
    optimizer.step()


# --------------------------------------------------------------------------- figures
def plot_unrolled_graph(n_steps: int = 6, k: int | None = None, *, ax=None):
    """Draw the unrolled computational graph x_t -> h_t -> z_t -> y_t with h_{t-1} -> h_t and
    z_{t-1} -> h_t arrows; with window ``k`` the arrows crossing window boundaries are drawn cut
    (dashed grey: value passed forward, no gradient). Returns the ``Figure``."""
    import matplotlib.pyplot as plt

    check_int("n_steps", n_steps, minimum=1, maximum=20)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.4 * n_steps + 1, 3.2))
    else:
        fig = ax.figure
    rows = {"x": 0.0, "h": 1.0, "z": 2.0, "y": 3.0}
    for t in range(n_steps):
        for name, yy in rows.items():
            ax.text(t, yy, f"${name}_{{{t + 1}}}$", ha="center", va="center",
                    bbox=dict(boxstyle="round", fc="#e8eef7" if name in "hz" else "white", ec="0.4"))
        for a, b in (("x", "h"), ("h", "z"), ("z", "y")):
            ax.annotate("", xy=(t, rows[b] - 0.25), xytext=(t, rows[a] + 0.25),
                        arrowprops=dict(arrowstyle="->", color="0.2"))
        ax.text(t + 0.25, 3.45, f"$E_{{{t + 1}}}$", fontsize=8, color="C3")
        if t > 0:
            cut = k is not None and t % k == 0
            style = dict(arrowstyle="->", color="0.6" if cut else "C0", linestyle="--" if cut else "-")
            ax.annotate("", xy=(t - 0.22, rows["h"]), xytext=(t - 0.78, rows["h"]), arrowprops=style)
            ax.annotate("", xy=(t - 0.2, rows["h"] + 0.15), xytext=(t - 0.8, rows["z"] - 0.1), arrowprops=style)
            ax.annotate("", xy=(t - 0.2, rows["y"]), xytext=(t - 0.8, rows["y"]), arrowprops=style)
            if cut:
                ax.axvline(t - 0.5, color="C3", linestyle=":", linewidth=1)
    ax.set_xlim(-0.6, n_steps - 0.4)
    ax.set_ylim(-0.5, 3.8)
    ax.axis("off")
    title = "unrolled graph (BPTT: gradients follow every arrow back)" if k is None else \
        f"truncated BPTT, k = {k}: dashed arrows carry values but no gradient"
    ax.set_title(title, fontsize=10)
    return fig


def plot_window_results(results: dict, k: int | None = None, *, chance: float | None = None,
                        title: str = "truncated BPTT"):
    """Left: validation accuracy per epoch for each window k (``results[k]`` a history from
    :func:`train`), window ``k`` highlighted; right: final and best-epoch accuracy against k.
    Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not results:
        raise ValueError("results must hold at least one window")
    ks = sorted(results)
    k = ks[-1] if k is None else k
    if k not in results:
        raise ValueError(f"k={k} was not run; available windows: {ks}")
    colour = METHOD_COLOURS["tbptt"]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for kk in ks:
        acc = results[kk]["val_accuracy"]
        if kk != k:
            ax0.plot(range(1, len(acc) + 1), acc, color="0.75", linewidth=1)
    ax0.plot([], [], color="0.75", linewidth=1, label="other k")
    acc = results[k]["val_accuracy"]
    ax0.plot(range(1, len(acc) + 1), acc, color=colour, linewidth=2.5, label=f"k = {k}")
    finals = [results[kk]["val_accuracy"][-1] for kk in ks]
    best = [max(results[kk]["val_accuracy"]) for kk in ks]
    ax1.plot(ks, finals, "o-", color=colour, label="last epoch")
    ax1.plot(ks, best, "^:", color=colour, alpha=0.6, label="best epoch")
    ax1.plot([k], [results[k]["val_accuracy"][-1]], "o", color=colour, markersize=11, markerfacecolor="none")
    for ax in (ax0, ax1):
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle="--", linewidth=1)
        ax.set_ylabel("validation accuracy")
        ax.set_ylim(0.0 if chance is None else min(0.0, chance - 0.1), 1.08)
        ax.grid(alpha=0.3)
    ax0.set_xlabel("epoch")
    ax0.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax0.legend(fontsize="small", loc="lower right")
    ax1.set_xlabel("window k (steps)")
    ax1.set_xscale("log")
    ax1.set_xticks(ks)
    ax1.set_xticklabels([str(kk) for kk in ks])
    ax1.minorticks_off()
    ax1.legend(fontsize="small", loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_carried_state(histories: dict, bars: dict, *, chance: float = 0.5, title: str = ""):
    """Left: validation accuracy per epoch of the runs in ``histories`` ({label: (history, colour,
    linestyle)}); right: one bar per entry of ``bars`` ({label: (accuracy, colour)}). Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.1, 1]})
    for label, (history, colour, style) in histories.items():
        acc = history["val_accuracy"]
        ax0.plot(range(1, len(acc) + 1), acc, style, color=colour, label=label, linewidth=2, markersize=4)
    ax0.set_xlabel("epoch")
    ax0.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax0.set_ylabel("validation accuracy")
    ax0.set_ylim(0.0, 1.08)
    ax0.legend(fontsize="small", loc="lower left")
    labels = list(bars)
    ax1.barh(range(len(labels)), [bars[n][0] for n in labels], color=[bars[n][1] for n in labels])
    for i, n in enumerate(labels):
        ax1.text(bars[n][0] + 0.01, i, f"{bars[n][0]:.2f}", va="center", fontsize=9)
    ax1.set_yticks(range(len(labels)))
    ax1.set_yticklabels(labels, fontsize=9)
    ax1.invert_yaxis()
    ax1.set_xlim(0.0, 1.15)
    ax1.set_xlabel("accuracy on the validation trials")
    ax1.set_ylabel("measurement")
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
    ax0.axhline(chance, color="grey", linestyle="--", linewidth=1)
    ax1.axvline(chance, color="grey", linestyle="--", linewidth=1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_memory(memory: dict, *, ax=None):
    """Peak saved-tensor bytes (from :func:`tbptt_memory`) against window k. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    ks = sorted(memory)
    ax.plot(ks, [memory[k] / 1024 for k in ks], "o-", color=METHOD_COLOURS["tbptt"])
    ax.set_xticks(ks)
    ax.set_xlabel("window k (steps)")
    ax.set_ylabel("peak saved tensors (KiB)")
    ax.set_title("truncated BPTT memory")
    ax.grid(alpha=0.3)
    return ax
