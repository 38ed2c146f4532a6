"""e-prop (eligibility propagation; Bellec et al. 2020) for recurrent LIF and ALIF networks.

The gradient dE/dW_ji is factorised into a *learning signal* L_j^t (how much the loss wants neuron
j to spike now) times an *eligibility trace* e_ji^t (how much synapse i -> j could have changed that
spike), both available online, forward in time, with memory independent of the sequence length:

    dE/dW_ji  ~=  sum_t L_j^t  ebar_ji^t,        L_j^t = sum_k B_jk delta_k^t,   delta^t = dE/dy^t

Eligibility traces (Bellec et al. 2020, Nat. Commun. 11:3625, doi:10.1038/s41467-020-17236-y,
Methods: "Eligibility traces" for LIF and ALIF neurons), with the pseudo-derivative
psi_j^t = dz_j^t/dh_j^t = g'((h_j^t - A_j^t)/v_th) / v_th given by the surrogate g (snnlab.neurons):

    eps_v^t  = alpha eps_v^{t-1} + pre_i^t                          (pre = x_t for W_in, z_{t-1} for W_rec)
    eps_a^t  = psi_j^{t-1} eps_v^{t-1} + (rho - beta psi_j^{t-1}) eps_a^{t-1}     (ALIF only)
    e_ji^t   = psi_j^t (eps_v^t - beta eps_a^t)
    ebar^t   = kappa ebar^{t-1} + e^t                                 (the readout's filter)

Learning signal: symmetric feedback B = W_out^T (Bellec's "symmetric e-prop") or a fixed random
matrix (their "random e-prop", in the spirit of feedback alignment). The readout weights get their
exact gradient, dE/dW_out = sum_t delta^t zbar^t with zbar^t = kappa zbar^{t-1} + z^t.

The only approximation: L uses the *partial* derivative dE/dz_j^t (through the readout), dropping
the paths through other neurons' future spikes. So e-prop equals BPTT exactly when no such path
carries gradient: a feed-forward layer (no W_rec) or a recurrent network whose BPTT stops the
gradient through recurrent spikes, in both cases with the reset detached and symmetric feedback.
Tested in ``tests/learning/test_eprop.py``; used by ``notebooks/04_bptt_tbptt_eprop.ipynb``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from ..utils import progress as progress_bar

from ..models.recurrent import RecurrentSNN, check_sequence
from ..neurons import surrogate_derivative
from ..utils import check_choice, check_float, check_int
from .bptt import apply_gradients, bptt_gradients, named_parameters
from .recurrent import METHOD_COLOURS, SequenceTask, evaluate, loss_normaliser, minibatches, output_error, sequence_loss

FEEDBACK = ("symmetric", "random")


class EligibilityState(NamedTuple):
    """Traces of one weight matrix [n_post, n_pre] for a batch B.

    eps_v [B, n_pre] (the membrane component does not depend on the postsynaptic neuron because all
    neurons share alpha), eps_a [B, n_post, n_pre] (ALIF; None for LIF), ebar [B, n_post, n_pre]
    (kappa-filtered eligibility trace), psi [B, n_post] (the previous step's pseudo-derivative).
    """

    eps_v: torch.Tensor
    eps_a: torch.Tensor | None
    ebar: torch.Tensor
    psi: torch.Tensor


def init_eligibility(batch_size: int, n_post: int, n_pre: int, *, adaptive: bool,
                     like: torch.Tensor) -> EligibilityState:
    """All-zero traces (``like`` gives dtype and device)."""
    zeros = like.new_zeros(batch_size, n_post, n_pre)
    return EligibilityState(like.new_zeros(batch_size, n_pre), zeros.clone() if adaptive else None, zeros,
                            like.new_zeros(batch_size, n_post))


def eprop_step(pre: torch.Tensor, psi: torch.Tensor, learning_signal: torch.Tensor, state: EligibilityState, *,
               alpha: float, rho: float, beta: float, kappa: float) -> tuple[torch.Tensor, EligibilityState]:
    """One e-prop step for one weight matrix: update the traces, return this step's gradient share.

    grad_t[j, i] = sum_b L_j^t[b] ebar_ji^t[b], with the traces of the module docstring. The weight
    change is -lr * grad_t (or accumulate grad_t over the sequence and hand it to an optimiser).

    Args:
        pre: presynaptic activity at this step [B, n_pre] (x_t for W_in, z_{t-1} for W_rec).
        psi: pseudo-derivative psi^t [B, n_post] (1/mV-like units of 1/v_th).
        learning_signal: L^t [B, n_post].
        state: :class:`EligibilityState` from the previous step.
        alpha, rho, kappa: per-step decays of membrane, adaptation and readout (exp(-dt/tau));
        beta: adaptation strength (0 for LIF: then eps_a is not needed and may be None).
    Returns: (grad_t [n_post, n_pre], new state).
    """
    eps_a = None
    if beta != 0.0:
        if state.eps_a is None:
            raise ValueError("beta != 0 (ALIF) needs eps_a traces: init_eligibility(..., adaptive=True)")
        eps_a = (state.psi[:, :, None] * state.eps_v[:, None, :]
                 + (rho - beta * state.psi)[:, :, None] * state.eps_a)
    eps_v = alpha * state.eps_v + pre
    if eps_a is None:
        e = psi[:, :, None] * eps_v[:, None, :]
    else:
        e = psi[:, :, None] * (eps_v[:, None, :] - beta * eps_a)
    ebar = kappa * state.ebar + e
    grad = torch.einsum("bj,bji->ji", learning_signal, ebar)
    return grad, EligibilityState(eps_v, eps_a, ebar, psi)


def random_feedback(net: RecurrentSNN, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fixed random feedback matrix B^T [n_out, n_hidden] ~ N(0, 1/n_hidden), the scale of W_out;
    drawn on the CPU (``generator``) and moved to the network's device."""
    p = net.params
    b = torch.randn(p.n_out, p.n_hidden, generator=generator, dtype=net.w_out.dtype) / math.sqrt(p.n_hidden)
    return b.to(net.w_out.device)


class EpropResult(NamedTuple):
    """Gradients by parameter name, the sequence loss, and (``record=True``) trace histories:
    ``psi`` [T, B, H], ``e_in`` and ``ebar_in`` [T, B, H, n_in], ``learning_signal`` [T, B, H]."""

    grads: dict
    loss: float
    record: dict | None


@torch.no_grad()
def eprop_gradients(net: RecurrentSNN, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
                    feedback: str = "symmetric", feedback_weights: torch.Tensor | None = None,
                    record: bool = False, update_every: int | None = None,
                    optimizer: torch.optim.Optimizer | None = None) -> EpropResult:
    """Run the network forward once and compute e-prop gradients online (no backward pass).

    Args:
        net: a :class:`RecurrentSNN` (``detach_reset=True`` is e-prop's assumption, checked).
        x: inputs [T, B, n_in]; target: classes [B]; mask: loss weights m_t [T] (see sequence_loss).
        feedback: ``"symmetric"`` (B^T = W_out, read at every step) or ``"random"`` (``feedback_weights``
            [n_out, n_hidden], e.g. from :func:`random_feedback`; kept fixed).
        record: also return trace histories (memory T*B*H*n_in: small examples only).
        update_every: online learning; every ``update_every`` steps the gradient gathered since the
            last update is applied with ``optimizer`` and the network runs on with the new weights.
    Returns: :class:`EpropResult` with the total gradient over the sequence.
    """
    check_sequence(x, net.params.n_in)
    check_choice("feedback", feedback, FEEDBACK)
    p = net.params
    if not p.detach_reset:
        raise ValueError("net.params.detach_reset must be True for e-prop (its traces ignore the reset path)")
    if feedback == "random" and (feedback_weights is None or feedback_weights.shape != net.w_out.shape):
        raise ValueError(f"feedback='random' needs feedback_weights of shape {tuple(net.w_out.shape)} "
                         "(see random_feedback)")
    if update_every is not None:
        check_int("update_every", update_every, minimum=1)
        if optimizer is None:
            raise ValueError("update_every needs an optimizer to apply the online updates")
    t_total, batch, _ = x.shape
    adaptive = p.beta != 0.0
    normaliser = loss_normaliser(mask, batch)
    params = named_parameters(net)
    grads = {name: torch.zeros_like(q) for name, q in params.items()}
    pending = {name: torch.zeros_like(q) for name, q in params.items()}
    state = net.init_state(batch)
    traces_in = init_eligibility(batch, p.n_hidden, p.n_in, adaptive=adaptive, like=net.w_in)
    traces_rec = init_eligibility(batch, p.n_hidden, p.n_hidden, adaptive=adaptive, like=net.w_in) \
        if net.w_rec is not None else None
    zbar = net.w_in.new_zeros(batch, p.n_hidden)
    bbar = 0.0
    outputs, history = [], {"psi": [], "e_in": [], "ebar_in": [], "learning_signal": []}
    decays = dict(alpha=p.alpha, rho=p.rho, beta=p.beta, kappa=p.kappa)
    for t in range(t_total):
        z_prev = state.z
        step, state = net.step(x[t], state)
        outputs.append(step.y)
        psi = surrogate_derivative(net.spike_fn, (step.h - step.threshold) / p.v_threshold) / p.v_threshold
        delta = output_error(step.y, target, float(mask[t]), normaliser)             # [B, K]
        back = net.w_out if feedback == "symmetric" else feedback_weights
        signal = delta @ back                                                        # [B, H]
        g_in, traces_in = eprop_step(x[t], psi, signal, traces_in, **decays)
        pending["w_in"] += g_in
        if traces_rec is not None:
            g_rec, traces_rec = eprop_step(z_prev, psi, signal, traces_rec, **decays)
            pending["w_rec"] += g_rec * net.rec_mask
        zbar = p.kappa * zbar + step.z
        bbar = p.kappa * bbar + 1.0
        pending["w_out"] += delta.t() @ zbar
        pending["b_out"] += bbar * delta.sum(0)
        if record:
            history["psi"].append(psi)
            history["e_in"].append(traces_in.ebar - p.kappa * (history["ebar_in"][-1] if history["ebar_in"]
                                                               else torch.zeros_like(traces_in.ebar)))
            history["ebar_in"].append(traces_in.ebar)
            history["learning_signal"].append(signal)
        if update_every is not None and ((t + 1) % update_every == 0 or t + 1 == t_total):
            with torch.enable_grad():
                apply_gradients(net, optimizer, pending)
            for name in grads:
                grads[name] += pending[name]
                pending[name].zero_()
    if update_every is None:
        grads = pending
    loss = float(sequence_loss(torch.stack(outputs), target, mask))
    rec = {name: torch.stack(v) for name, v in history.items()} if record else None
    return EpropResult(grads, loss, rec)


def cosine_similarity(a: dict, b: dict, names=None) -> dict:
    """cos(a, b) per parameter name and over all of them together (``"all"``); 0 if a norm is 0."""
    names = list(a) if names is None else list(names)

    def cos(u, v):
        nu, nv = float(u.norm()), float(v.norm())
        return 0.0 if nu == 0 or nv == 0 else float((u * v).sum()) / (nu * nv)

    result = {name: cos(a[name].flatten(), b[name].flatten()) for name in names}
    result["all"] = cos(torch.cat([a[n].flatten() for n in names]), torch.cat([b[n].flatten() for n in names]))
    return result


def alignment_with_bptt(net: RecurrentSNN, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
                        feedback: str = "symmetric", feedback_weights: torch.Tensor | None = None) -> dict:
    """Cosine similarity between e-prop's and BPTT's gradients on the same batch and weights.

    Returns cos per parameter (``w_in``, ``w_rec``, ``w_out``, ``b_out``), ``"all"``, and
    ``"hidden"`` (W_in and W_rec together: the weights where e-prop approximates).
    """
    g_bptt, _ = bptt_gradients(net, x, target, mask)
    g_eprop = eprop_gradients(net, x, target, mask, feedback=feedback, feedback_weights=feedback_weights).grads
    result = cosine_similarity(g_eprop, g_bptt)
    hidden = [n for n in ("w_in", "w_rec") if n in g_bptt]
    result["hidden"] = cosine_similarity(g_eprop, g_bptt, hidden)["all"]
    return result


def train(net: RecurrentSNN, train_task: SequenceTask, val_task: SequenceTask | None = None, *,
          feedback: str = "symmetric", epochs: int = 10, batch_size: int = 32, lr: float = 1e-2,
          update_every: int | None = None, generator: torch.Generator | None = None,
          progress: bool = True) -> dict:
    """Train ``net`` with e-prop gradients and Adam (``update_every``: online updates within a sequence).

    ``generator`` seeds the minibatch order and, for ``feedback="random"``, the feedback matrix.
    Returns a history dict like :func:`snnlab.learning.bptt.train`; runs on the network's device.
    """
    check_choice("feedback", feedback, FEEDBACK)
    check_int("epochs", epochs, minimum=1)
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    dtype = net.w_in.dtype
    train_task = train_task.to(net.w_in.device)
    fb = random_feedback(net, generator=generator) if feedback == "random" else None
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    history = {"train_loss": [], "val_accuracy": [], "val_loss": []}
    for _ in progress_bar(range(epochs), desc=f"e-prop {feedback}", disable=not progress, leave=False):
        losses = []
        for index in minibatches(len(train_task), batch_size, generator=generator):
            x = train_task.x[:, index].to(dtype)
            result = eprop_gradients(net, x, train_task.y[index], train_task.mask, feedback=feedback,
                                     feedback_weights=fb, update_every=update_every,
                                     optimizer=optimizer if update_every is not None else None)
            if update_every is None:
                apply_gradients(net, optimizer, result.grads)
            losses.append(result.loss)
        history["train_loss"].append(sum(losses) / len(losses))
        if val_task is not None:
            metrics = evaluate(net, val_task)
            history["val_accuracy"].append(metrics["accuracy"])
            history["val_loss"].append(metrics["loss"])
    return history


def plot_traces(record: dict, x: torch.Tensor, *, trial: int = 0, post: int = 0, pre=(0, 1, 2), dt_ms: float = 1.0):
    """Eligibility traces over time for one postsynaptic neuron: input x_i, psi_j, e_ji, ebar_ji and
    the learning signal L_j (``record`` from ``eprop_gradients(..., record=True)``). Returns the Figure."""
    import matplotlib.pyplot as plt

    t = torch.arange(record["psi"].shape[0]) * dt_ms
    fig, axes = plt.subplots(4, 1, figsize=(7, 6.5), sharex=True)
    for i in pre:
        axes[0].step(t, x[:, trial, i].cpu(), where="post", label=f"$x_{{{i}}}$")
        axes[2].plot(t, record["e_in"][:, trial, post, i].cpu(), label=f"$e_{{{post},{i}}}$")
        axes[3].plot(t, record["ebar_in"][:, trial, post, i].cpu(), label=rf"$\bar e_{{{post},{i}}}$")
    axes[1].plot(t, record["psi"][:, trial, post].cpu(), color="C4", label=rf"$\psi_{{{post}}}$")
    ax_l = axes[1].twinx()
    ax_l.plot(t, record["learning_signal"][:, trial, post].cpu(), color="C3", alpha=0.6, label=f"$L_{{{post}}}$")
    ax_l.set_ylabel("learning signal L", color="C3")
    ax_l.tick_params(axis="x", labelbottom=False)
    labels = ["input x (a.u.)", "psi (1/v_th)", "trace e (a.u.)", "filtered trace (a.u.)"]
    for ax, label in zip(axes, labels):
        ax.set_ylabel(label)
        ax.legend(loc="upper left", bbox_to_anchor=(1.22, 1.0), fontsize="small")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (ms)")
    fig.tight_layout()
    return fig


def plot_feedback(alignments: dict, histories: dict, feedback: str = "symmetric"):
    """Left: cosine similarity with BPTT per weight matrix, for each feedback type (``alignments``
    from :func:`alignment_with_bptt`); right: validation accuracy per epoch (``histories``, which may
    also hold a ``"bptt"`` entry). ``feedback`` is highlighted. Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if feedback not in alignments:
        raise ValueError(f"feedback={feedback!r} has no alignment; available: {sorted(alignments)}")
    names = [n for n in ("w_in", "w_rec", "w_out", "hidden") if n in alignments[feedback]]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.2))
    width = 0.8 / len(alignments)
    for i, (fb, cos) in enumerate(sorted(alignments.items())):
        xs = [j + i * width for j in range(len(names))]
        ax0.bar(xs, [cos[n] for n in names], width=width, label=fb, alpha=1.0 if fb == feedback else 0.35,
                color=METHOD_COLOURS.get(fb))
    ax0.set_xticks([j + 0.4 - width / 2 for j in range(len(names))])
    ax0.set_xticklabels(names)
    ax0.set_ylabel("cos(e-prop, BPTT)")
    ax0.set_ylim(min(0.0, min(min(c[n] for n in names) for c in alignments.values())) - 0.05, 1.05)
    ax0.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax0.set_xlabel("weight matrix")
    ax0.legend(fontsize="small", loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, title="feedback",
               title_fontsize="small")
    for name, hist in histories.items():
        acc = hist["val_accuracy"]
        bold = name == feedback or name == f"e-prop {feedback}"
        ax1.plot(range(1, len(acc) + 1), acc, linewidth=2.5 if bold else 1, label=name, alpha=1.0 if bold else 0.6,
                 color=METHOD_COLOURS.get(name.lower()))
    ax1.set_xlabel("epoch")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_ylabel("validation accuracy")
    ax1.legend(fontsize="small")
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
