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
from .recurrent import SequenceTask, evaluate, loss_normaliser, minibatches, sequence_loss


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
                    meter: SavedTensorMeter | None = None) -> tuple[dict[str, torch.Tensor], float]:
    """Truncated BPTT with window ``k``: the gradient summed over windows, state detached between them.

    The loss of each window is the window's share of the whole-sequence loss (same normaliser N), so
    the window losses add up to :func:`sequence_loss` and k = T reproduces :func:`bptt_gradients`.
    ``meter`` (a :class:`SavedTensorMeter`) measures the saved-tensor bytes of each window.
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
        state = type(state)(*(s.detach() for s in state))   # carry the value, cut the graph
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
          lr: float = 1e-2, generator: torch.Generator | None = None, progress: bool = True) -> dict:
    """Train ``net`` with Adam on gradients from full BPTT (``method="bptt"``) or truncated BPTT
    with window ``k`` (``method="tbptt"``; one Adam step per minibatch, the window gradients summed).

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
                grads, loss = tbptt_gradients(net, x, target, train_task.mask, k=k)
            apply_gradients(net, optimizer, grads)
            losses.append(loss)
        history["train_loss"].append(sum(losses) / len(losses))
        if val_task is not None:
            metrics = evaluate(net, val_task)
            history["val_accuracy"].append(metrics["accuracy"])
            history["val_loss"].append(metrics["loss"])
    return history


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
    :func:`train`), window ``k`` highlighted; right: final accuracy against k. Returns the Figure."""
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("results must hold at least one window")
    ks = sorted(results)
    k = ks[-1] if k is None else k
    if k not in results:
        raise ValueError(f"k={k} was not run; available windows: {ks}")
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.2))
    for kk in ks:
        acc = results[kk]["val_accuracy"]
        epochs = range(1, len(acc) + 1)
        if kk == k:
            ax0.plot(epochs, acc, color="C3", linewidth=2.5, label=f"k = {kk}")
        else:
            ax0.plot(epochs, acc, color="0.75", linewidth=1)
    finals = [results[kk]["val_accuracy"][-1] for kk in ks]
    ax1.plot(ks, finals, "o-", color="C0")
    ax1.plot([k], [results[k]["val_accuracy"][-1]], "o", color="C3", markersize=10)
    for ax in (ax0, ax1):
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle="--", linewidth=1)
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
    ax0.set_xlabel("epoch")
    ax0.legend(fontsize="small")
    ax1.set_xlabel("window k (steps)")
    ax1.set_xscale("log")
    ax1.set_xticks(ks)
    ax1.set_xticklabels([str(kk) for kk in ks])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_memory(memory: dict, *, ax=None):
    """Peak saved-tensor bytes (from :func:`tbptt_memory`) against window k. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    ks = sorted(memory)
    ax.plot(ks, [memory[k] / 1024 for k in ks], "o-")
    ax.set_xlabel("window k (steps)")
    ax.set_ylabel("peak saved tensors (KiB)")
    ax.set_title("truncated BPTT memory")
    ax.grid(alpha=0.3)
    return ax
