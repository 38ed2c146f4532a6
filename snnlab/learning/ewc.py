"""Elastic weight consolidation (Kirkpatrick et al. 2017) on split digits, and the training helpers
(minibatch training, accuracy, restricted logits) that ``ewc``, ``federated`` and ``evolution`` share.

EWC (Kirkpatrick et al. 2017, PNAS 114:3521, doi:10.1073/pnas.1611835114, eq. 3): after task A, keep
the parameters theta*_A and the diagonal of the Fisher information F; while learning task B minimise

    L(theta) = L_B(theta) + sum_i (lambda / 2) F_i (theta_i - theta*_A,i)^2 .

The Fisher diagonal is computed from per-sample gradients of the log-likelihood (never from |w|):

    expected  F_i = (1/N) sum_n sum_c p_theta(c | x_n) (d log p_theta(c | x_n) / d theta_i)^2
    empirical F_i = (1/N) sum_n (d log p_theta(y_n | x_n) / d theta_i)^2

"expected" is the Fisher information proper (the expectation over the model's own predictive
distribution, done exactly over the classes instead of by sampling); "empirical" uses the true labels.
Per-sample gradients come from ``torch.func`` (``vmap`` of ``grad``/``jacrev``), which is why the
model's surrogate spike function must work under vmap (:func:`snnlab.neurons.atan_spike` does).

The classifier is :class:`snnlab.models.mlp.SpikingMLP` (LIF hidden layer, leaky readout, BPTT with
the ATan surrogate gradient). Split digits: task A = digits 0-4, task B = digits 5-9. In the default
``"task"`` setting (task-incremental learning) the logits are restricted to the current task's
classes; ``"class"`` (class-incremental) uses all ten, where EWC is known to help little
(van de Ven & Tolias 2019, arXiv:1904.07734).
Used by ``notebooks/07_structural_continual_federated_evolution.ipynb``.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jacrev, vmap
from ..utils import progress as progress_bar

from ..models.mlp import SpikingMLP, SpikingMLPConfig, flatten_images
from ..utils import check_choice, check_float, check_int, derived_generator

__all__ = [
    "restrict_logits",
    "train_classifier",
    "accuracy",
    "fisher_diagonal",
    "ewc_penalty",
    "EWC",
    "run_split_digits",
    "TASK_A",
    "TASK_B",
]

TASK_A = (0, 1, 2, 3, 4)
TASK_B = (5, 6, 7, 8, 9)


def restrict_logits(logits: torch.Tensor, y: torch.Tensor | None, classes: Sequence[int] | None):
    """Keep only the logits of ``classes`` and map labels to their positions in ``classes``.

    ``classes=None`` keeps everything. Labels outside ``classes`` raise a ValueError.
    """
    if classes is None:
        return logits, y
    idx = torch.as_tensor(list(classes), dtype=torch.long, device=logits.device)
    out = logits.index_select(-1, idx)
    if y is None:
        return out, None
    lookup = torch.full((logits.shape[-1],), -1, dtype=torch.long, device=logits.device)
    lookup[idx] = torch.arange(len(idx), device=logits.device)
    mapped = lookup[y]
    if (mapped < 0).any():
        raise ValueError(f"classes={tuple(classes)} does not contain every label in y")
    return out, mapped


def train_classifier(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float,
                     batch_size: int = 64, generator: torch.Generator, optimizer: str = "adam",
                     classes: Sequence[int] | None = None,
                     penalty: Callable[[torch.nn.Module], torch.Tensor] | None = None,
                     on_epoch: Callable[[int], None] | None = None, progress: bool = False) -> list[float]:
    """Minibatch training on cross-entropy (+ ``penalty(model)``); returns the mean loss per epoch.

    ``generator`` shuffles the batches (same seed, same order); ``optimizer`` is ``"adam"`` or
    ``"sgd"`` (plain SGD, no momentum); ``classes`` restricts the logits (task-incremental setting);
    ``on_epoch(epoch)`` is called after each epoch (for recording curves).
    """
    check_int("epochs", epochs, minimum=0)
    check_float("lr", lr, minimum=0.0, strict_minimum=True)
    check_int("batch_size", batch_size, minimum=1)
    check_choice("optimizer", optimizer, ("adam", "sgd"))
    x = flatten_images(x)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
    losses = []
    for epoch in progress_bar(range(epochs), disable=not progress, desc="epochs", leave=False):
        order = torch.randperm(len(y), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            logits, target = restrict_logits(model(x[idx]), y[idx], classes)
            loss = F.cross_entropy(logits, target)
            if penalty is not None:
                loss = loss + penalty(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        losses.append(total / max(count, 1))
        if on_epoch is not None:
            on_epoch(epoch)
    return losses


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
             classes: Sequence[int] | None = None) -> float:
    """Fraction of correct argmax decisions (among ``classes`` when given)."""
    logits, target = restrict_logits(model(flatten_images(x)), y, classes)
    return float((logits.argmax(dim=-1) == target).float().mean())


# --------------------------------------------------------------------------- Fisher and EWC
def fisher_diagonal(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
                    mode: str = "expected", classes: Sequence[int] | None = None,
                    chunk_size: int = 256) -> dict[str, torch.Tensor]:
    """Diagonal of the Fisher information of ``model``'s predictive distribution, per parameter.

    ``mode="expected"``: F_i = (1/N) sum_n sum_c p(c|x_n) (d_i log p(c|x_n))^2 (exact over classes);
    ``mode="empirical"``: F_i = (1/N) sum_n (d_i log p(y_n|x_n))^2 (needs ``y``).
    Per-sample gradients by ``torch.func.vmap``; ``classes`` restricts the distribution to those
    classes (task-incremental setting). Returns ``{name: F}`` with each parameter's shape.
    """
    check_choice("mode", mode, ("expected", "empirical"))
    check_int("chunk_size", chunk_size, minimum=1)
    if mode == "empirical" and y is None:
        raise ValueError("y is required for mode='empirical'")
    x = flatten_images(x)
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def log_probs(p, xi):
        logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        logits, _ = restrict_logits(logits, None, classes)
        return F.log_softmax(logits, dim=-1)[0]

    def log_prob_label(p, xi, yi):
        return log_probs(p, xi).gather(0, yi.reshape(1))[0]

    totals = {k: torch.zeros_like(v) for k, v in params.items()}
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start:start + chunk_size]
        if mode == "empirical":
            yb = y[start:start + chunk_size]
            if classes is not None:
                yb = restrict_logits(torch.zeros(1, 1 + max(max(classes), int(yb.max())), device=yb.device), yb,
                                     classes)[1]
            grads = vmap(grad(log_prob_label), in_dims=(None, 0, 0))(params, xb, yb)
            for k, g in grads.items():
                totals[k] += (g ** 2).sum(dim=0)
        else:
            jac = vmap(jacrev(log_probs), in_dims=(None, 0))(params, xb)   # {k: [n, C, *shape]}
            with torch.no_grad():
                prob = vmap(log_probs, in_dims=(None, 0))(params, xb).exp()       # [n, C]
            for k, j in jac.items():
                weight = prob.reshape(prob.shape + (1,) * (j.dim() - 2))
                totals[k] += (weight * j ** 2).sum(dim=(0, 1))
    return {k: v / x.shape[0] for k, v in totals.items()}


def ewc_penalty(params: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor],
                fisher: dict[str, torch.Tensor], *, lam: float) -> torch.Tensor:
    """``(lambda/2) sum_i F_i (theta_i - theta*_i)^2`` over every named parameter (Kirkpatrick eq. 3)."""
    check_float("lam", lam, minimum=0.0)
    missing = set(anchor) - set(params)
    if missing or set(anchor) != set(fisher):
        raise ValueError(f"params, anchor and fisher must name the same parameters; missing {sorted(missing)}")
    total = 0.0
    for name, theta_star in anchor.items():
        total = total + (fisher[name] * (params[name] - theta_star) ** 2).sum()
    return 0.5 * lam * total


class EWC:
    """The EWC penalty of one consolidated task: anchors theta*, Fisher F and lambda.

    ``EWC.from_task(model, x, y, lam=...)`` snapshots the model and computes F; calling the object
    on a model returns the penalty (pass it as ``penalty=`` to :func:`train_classifier`).
    """

    def __init__(self, anchor: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor], *, lam: float):
        self.lam = check_float("lam", lam, minimum=0.0)
        self.anchor = {k: v.detach().clone() for k, v in anchor.items()}
        self.fisher = {k: v.detach().clone() for k, v in fisher.items()}

    @classmethod
    def from_task(cls, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, lam: float,
                  mode: str = "expected", classes: Sequence[int] | None = None) -> "EWC":
        fisher = fisher_diagonal(model, x, y, mode=mode, classes=classes)
        return cls(dict(model.named_parameters()), fisher, lam=lam)

    def __call__(self, model: torch.nn.Module) -> torch.Tensor:
        return ewc_penalty(dict(model.named_parameters()), self.anchor, self.fisher, lam=self.lam)


# --------------------------------------------------------------------------- the experiment
def run_split_digits(lams: Sequence[float] = (0.0, 1e3), *, seed: int = 0, epochs_a: int = 10,
                     epochs_b: int = 10, lr: float = 3e-3, batch_size: int = 64,
                     config: SpikingMLPConfig = SpikingMLPConfig(), setting: str = "task",
                     fisher_mode: str = "expected", fisher_samples: int = 500,
                     progress: bool = True, device: str | torch.device = "cpu") -> dict:
    """Learn digits 0-4 then 5-9, once per lambda (lambda = 0: plain fine-tuning, no EWC).

    Task A is learned once; each lambda starts from the same task-A network. Returns
    ``{"lams", "acc_a_before", "acc_b_before"?, "curves": {lam: {"acc_a": [...], "acc_b": [...]}},
    "final": {lam: (acc_a, acc_b)}, "forgetting": {lam: acc_a_before - acc_a_after}, "fisher"}``,
    accuracies on the held-out test split, curves recorded after every epoch of task B. The networks,
    the data and the Fisher diagonal live on ``device``; initial weights and batch orders are drawn on
    the CPU from ``seed``.
    """
    from ..data import load_digits_split

    check_choice("setting", setting, ("task", "class"))
    check_int("fisher_samples", fisher_samples, minimum=1)
    for lam in lams:
        check_float("lams", lam, minimum=0.0)
    split_a = load_digits_split(seed, classes=TASK_A).to(device)
    split_b = load_digits_split(seed, classes=TASK_B).to(device)
    cls_a = TASK_A if setting == "task" else None
    cls_b = TASK_B if setting == "task" else None
    gen = torch.Generator().manual_seed(seed)
    model_a = SpikingMLP(config, seed=seed, device=device)
    train_classifier(model_a, split_a.train.x, split_a.train.y, epochs=epochs_a, lr=lr, batch_size=batch_size,
                     generator=gen, classes=cls_a, progress=progress)
    acc_a_before = accuracy(model_a, split_a.test.x, split_a.test.y, classes=cls_a)
    n_f = min(fisher_samples, len(split_a.train))
    fisher = fisher_diagonal(model_a, split_a.train.x[:n_f], split_a.train.y[:n_f], mode=fisher_mode,
                             classes=cls_a)
    curves, final, forgetting = {}, {}, {}
    for lam in progress_bar(list(lams), disable=not progress, desc="lambda", leave=False):
        model = copy.deepcopy(model_a)
        ewc = EWC(dict(model_a.named_parameters()), fisher, lam=float(lam))
        record = {"acc_a": [acc_a_before], "acc_b": [accuracy(model, split_b.test.x, split_b.test.y, classes=cls_b)]}

        def on_epoch(_epoch, model=model, record=record):
            record["acc_a"].append(accuracy(model, split_a.test.x, split_a.test.y, classes=cls_a))
            record["acc_b"].append(accuracy(model, split_b.test.x, split_b.test.y, classes=cls_b))

        train_classifier(model, split_b.train.x, split_b.train.y, epochs=epochs_b, lr=lr, batch_size=batch_size,
                         generator=derived_generator(seed, "task-b"), classes=cls_b,
                         penalty=ewc if lam > 0 else None, on_epoch=on_epoch)
        curves[float(lam)] = record
        final[float(lam)] = (record["acc_a"][-1], record["acc_b"][-1])
        forgetting[float(lam)] = acc_a_before - record["acc_a"][-1]
    return {"lams": [float(v) for v in lams], "acc_a_before": acc_a_before, "curves": curves, "final": final,
            "forgetting": forgetting, "fisher": fisher, "setting": setting}


def plot_split_digits(result: dict, lam: float):
    """Accuracy on task A (0-4) and task B (5-9) during training on B, without EWC and with ``lam``."""
    import matplotlib.pyplot as plt

    lam = float(lam)
    if lam not in result["curves"]:
        raise ValueError(f"lam={lam} was not run; choose one of {sorted(result['curves'])}")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
    for key, ax, title in (("acc_a", ax1, "task A (digits 0-4)"), ("acc_b", ax2, "task B (digits 5-9)")):
        ax.plot(result["curves"][0.0][key], marker="o", color="tab:red", label="no EWC (lambda = 0)")
        if lam != 0.0:
            ax.plot(result["curves"][lam][key], marker="s", color="tab:pink", label=f"EWC, lambda = {lam:g}")
        ax.set_xlabel("epochs on task B")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_ylabel("test accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title)
        ax.legend(fontsize="small")
    fig.suptitle(f"split digits, {result['setting']}-incremental")
    fig.tight_layout()
    return fig
