"""Meta-learning on few-shot digit tasks: MAML (second order), first-order MAML, and Reptile.

Each is named for what it computes. With task loss L_T, inner learning rate alpha and n inner
steps of gradient descent on the support set S, theta' = U_S(theta) = theta - alpha sum grad L_S(...):

* **MAML** (Finn, Abbeel & Levine 2017, ICML, arXiv:1703.03400, Eq. 1 and Algorithm 2): the exact
  meta-gradient of the query loss after adaptation, by differentiating through the inner loop
  (second order; for one inner step)

      g_MAML = d/dtheta L_Q(U_S(theta)) = (I - alpha H_S(theta)) grad L_Q(theta').

* **First-order MAML** (FOMAML; Finn et al. 2017 Sec. 5.2): drops the second-order term (treats
  dtheta'/dtheta as the identity)

      g_FOMAML = grad L_Q(theta'),    so   g_MAML - g_FOMAML = -alpha H_S(theta) grad L_Q(theta').

  They coincide when alpha = 0 or when the support loss has zero Hessian.

* **Reptile** (Nichol, Achiam & Schulman 2018, arXiv:1803.02999, Algorithm 1): run n steps of SGD
  on the task and move the initialisation towards the result, theta <- theta + epsilon (phi - theta).
  Its "gradient" is g_Reptile = (theta - phi) / alpha (we give Adam theta - phi). With one inner step
  it is plain joint training, g = grad L(theta); with two steps on minibatches A then B,
  g = g_A + g_B(theta - alpha g_A) = g_A + g_B - alpha H_B g_A + O(alpha^2) (Nichol Sec. 5).

Few-shot tasks come from the offline digits (Omniglot practice: rotations by multiples of 90 degrees
make new classes): meta-training classes are digits 0-4 in four rotations (20 classes), meta-test
classes the unseen digits 5-9. Models are functional (a list of tensors ``params`` and a
``forward(params, x)``): a tanh MLP (smooth: MAML's second-order term is well defined and testable
by finite differences) and a feed-forward spiking LIF network (the neurons and the ATan surrogate of
:mod:`snnlab.neurons`).

Used by ``notebooks/05_meta_learning.ipynb``; tested in ``tests/learning/test_meta.py``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from ..utils import progress as progress_bar

from ..neurons import lif_decay, lif_step, make_surrogate
from ..utils import check_choice, check_float, check_int

METHODS = ("maml", "fomaml", "reptile")
#: one colour per initialisation, the same in every figure of notebook 05
COLORS = {"scratch": "0.35", "maml": "C0", "fomaml": "C1", "reptile": "C2"}
Params = list  # list[torch.Tensor]


# --------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class FewShotTask:
    """An N-way K-shot task: support x [N*K, D], y [N*K]; query x [N*Q, D], y [N*Q] (labels 0..N-1)."""

    x_support: torch.Tensor
    y_support: torch.Tensor
    x_query: torch.Tensor
    y_query: torch.Tensor


def stack_tasks(tasks: Sequence[FewShotTask]) -> FewShotTask:
    """Stack equally shaped tasks into one batched task (a leading task axis on every tensor), which
    every function here accepts: the meta-batch then runs as one vectorised computation."""
    if not tasks:
        raise ValueError("tasks must not be empty")
    return FewShotTask(*(torch.stack([getattr(t, f) for t in tasks])
                         for f in ("x_support", "y_support", "x_query", "y_query")))


@dataclass(frozen=True)
class ClassPool:
    """Images by class: a list of [n_c, D] float tensors, one per class, and a name for each."""

    images: tuple
    names: tuple

    def __len__(self) -> int:
        return len(self.images)


def digits_class_pools(seed: int = 0, *, train_digits: Sequence[int] = (0, 1, 2, 3, 4),
                       test_digits: Sequence[int] = (5, 6, 7, 8, 9), rotations: int = 4,
                       device: str | torch.device = "cpu") -> tuple[ClassPool, ClassPool]:
    """Meta-train and meta-test class pools from the offline digits (8x8, flattened to D = 64).

    Meta-train classes are ``train_digits`` x {0, 90, 180, 270 degrees}[:rotations]; meta-test
    classes are ``test_digits`` unrotated. The two sets share no digit. The images are on ``device``,
    so every task drawn from the pools (:func:`sample_task`) is there too.
    """
    from ..data import load_digits_split

    check_int("seed", seed, minimum=0)
    check_int("rotations", rotations, minimum=1, maximum=4)
    if set(train_digits) & set(test_digits):
        raise ValueError(f"train_digits {tuple(train_digits)} and test_digits {tuple(test_digits)} must not overlap")
    data = load_digits_split(seed, val_fraction=0.0, test_fraction=0.0).train.to(device)
    train_images, train_names = [], []
    for d in train_digits:
        imgs = data.x[data.y == d]
        for r in range(rotations):
            train_images.append(torch.rot90(imgs, r, dims=(-2, -1)).flatten(1).contiguous())
            train_names.append(f"{d}@{90 * r}")
    test_images = tuple(data.x[data.y == d].flatten(1).contiguous() for d in test_digits)
    return (ClassPool(tuple(train_images), tuple(train_names)),
            ClassPool(test_images, tuple(str(d) for d in test_digits)))


def sample_task(pool: ClassPool, *, n_way: int = 5, k_shot: int = 5, n_query: int = 10,
                generator: torch.Generator | None = None) -> FewShotTask:
    """Draw an N-way K-shot task: N classes of ``pool`` in a random order (so labels carry no
    identity across tasks), K support and ``n_query`` query images per class, all distinct.

    The choices are drawn on the CPU (``generator``); the task's tensors are on the pool's device."""
    check_int("n_way", n_way, minimum=2, maximum=len(pool))
    check_int("k_shot", k_shot, minimum=1)
    check_int("n_query", n_query, minimum=1)
    classes = torch.randperm(len(pool), generator=generator)[:n_way]
    xs, ys, xq, yq = [], [], [], []
    for label, c in enumerate(classes.tolist()):
        imgs = pool.images[c]
        if imgs.shape[0] < k_shot + n_query:
            raise ValueError(f"class {pool.names[c]} has {imgs.shape[0]} images < k_shot + n_query")
        pick = torch.randperm(imgs.shape[0], generator=generator)[:k_shot + n_query]
        xs.append(imgs[pick[:k_shot]])
        xq.append(imgs[pick[k_shot:]])
        ys.append(torch.full((k_shot,), label, device=imgs.device))
        yq.append(torch.full((n_query,), label, device=imgs.device))
    return FewShotTask(torch.cat(xs), torch.cat(ys), torch.cat(xq), torch.cat(yq))


# --------------------------------------------------------------------------- models
def init_mlp(sizes: Sequence[int], *, generator: torch.Generator | None = None,
             dtype: torch.dtype = torch.float32, input_gain: float = 1.0,
             device: str | torch.device = "cpu") -> Params:
    """Parameters [W1, b1, W2, b2, ...] of an MLP, W_l ~ N(0, 1/fan_in) (W1 times ``input_gain``,
    e.g. 3 so that spiking hidden units fire), b_l = 0 (leaf tensors on ``device``; the weights are
    drawn on the CPU and moved, so every device starts from the same numbers)."""
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least input and output sizes, got {sizes!r}")
    check_float("input_gain", input_gain, minimum=0.0, strict_minimum=True)
    params = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        check_int("sizes", fan_in, minimum=1)
        check_int("sizes", fan_out, minimum=1)
        gain = input_gain if layer == 0 else 1.0
        w = gain * torch.randn(fan_out, fan_in, generator=generator, dtype=dtype) / math.sqrt(fan_in)
        params += [w.to(device).requires_grad_(), torch.zeros(fan_out, dtype=dtype, device=device, requires_grad=True)]
    return params


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x W^T + b, also for a batch of tasks: x [n, M, in] with w [n, out, in] and b [n, out]."""
    if w.ndim == 3:
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
    return F.linear(x, w, b)


def mlp_forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """tanh MLP: h_{l+1} = tanh(W_l h_l + b_l), last layer linear (logits). Smooth in params.

    Params may carry a leading task axis (one copy per task, see :func:`inner_adapt`)."""
    h = x
    n_layers = len(params) // 2
    for layer in range(n_layers):
        h = linear(h, params[2 * layer], params[2 * layer + 1])
        if layer < n_layers - 1:
            h = torch.tanh(h)
    return h


def make_snn_forward(*, n_steps: int = 4, tau_mem_ms: float = 4.0, dt_ms: float = 1.0, v_threshold: float = 1.0,
                     surrogate_alpha: float = 2.0) -> Callable[[Params, torch.Tensor], torch.Tensor]:
    """A feed-forward spiking classifier for [W1, b1, W2, b2]: the image is a constant input
    current W1 x + b1 to LIF neurons (:func:`snnlab.neurons.lif_step`: soft reset, detached, ATan
    surrogate) for ``n_steps`` steps; logits = W2 (mean spike count) + b2. Second-order MAML
    differentiates through the surrogate's backward (its derivative is smooth)."""
    check_int("n_steps", n_steps, minimum=1)
    check_float("tau_mem_ms", tau_mem_ms, minimum=0.0, strict_minimum=True)
    check_float("dt_ms", dt_ms, minimum=0.0, strict_minimum=True)
    check_float("v_threshold", v_threshold, minimum=0.0, strict_minimum=True)
    spike_fn = make_surrogate("atan", surrogate_alpha)
    alpha = lif_decay(tau_mem_ms, dt_ms)

    def snn_forward(params: Params, x: torch.Tensor) -> torch.Tensor:
        if len(params) != 4:
            raise ValueError("the spiking model takes params [W1, b1, W2, b2]")
        current = linear(x, params[0], params[1])
        v = torch.zeros_like(current)
        count = torch.zeros_like(current)
        for _ in range(n_steps):
            z, _, v = lif_step(current, v, alpha=alpha, v_threshold=v_threshold, reset="subtract", spike_fn=spike_fn)
            count = count + z
        return linear(count / n_steps, params[2], params[3])

    return snn_forward


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per task: a scalar for logits [M, C], a vector [n] for a task batch [n, M, C]."""
    if logits.ndim == 3:
        n, m, c = logits.shape
        return F.cross_entropy(logits.reshape(n * m, c), y.reshape(n * m), reduction="none").reshape(n, m).mean(1)
    return F.cross_entropy(logits, y)


def _per_task(params: Params, x: torch.Tensor) -> Params:
    """One copy of the parameters per task when ``x`` is a task batch [n, M, D] (views, no copies):
    the gradient of the summed task losses with respect to these copies is each task's own gradient."""
    if x.ndim == 3 and params[0].ndim == 2:
        return [p.unsqueeze(0).expand(x.shape[0], *p.shape) for p in params]
    return list(params)


# --------------------------------------------------------------------------- inner loop and meta-gradients
def inner_adapt(forward, params: Params, x: torch.Tensor, y: torch.Tensor, *, inner_lr: float, inner_steps: int,
                create_graph: bool, loss_fn=cross_entropy) -> Params:
    """theta_{s+1} = theta_s - inner_lr grad L(theta_s; x, y), ``inner_steps`` times.

    ``create_graph=True`` keeps the graph of each inner gradient (second-order MAML); ``False``
    detaches them, so theta' depends on theta with an identity Jacobian (first-order MAML).
    For a task batch (x [n, M, D]) each task adapts its own copy: returned params are [n, ...].
    """
    check_float("inner_lr", inner_lr, minimum=0.0)
    check_int("inner_steps", inner_steps, minimum=0)
    adapted = _per_task(params, x)
    for _ in range(inner_steps):
        loss = loss_fn(forward(adapted, x), y).sum()
        grads = torch.autograd.grad(loss, adapted, create_graph=create_graph)
        if not create_graph:
            grads = [g.detach() for g in grads]
        adapted = [p - inner_lr * g for p, g in zip(adapted, grads)]
    return adapted


def maml_meta_gradient(forward, params: Params, task: FewShotTask, *, inner_lr: float, inner_steps: int = 1,
                       second_order: bool = True, loss_fn=cross_entropy) -> tuple[Params, float]:
    """MAML's meta-gradient d L_Q(U_S(theta)) / d theta for one task (``second_order=False``: FOMAML).

    For a task batch (see :func:`stack_tasks`) the meta-gradient and the loss are task averages.
    Returns (list of gradients like ``params``, query loss after adaptation).
    """
    with torch.enable_grad():
        adapted = inner_adapt(forward, params, task.x_support, task.y_support, inner_lr=inner_lr,
                              inner_steps=inner_steps, create_graph=second_order, loss_fn=loss_fn)
        query_loss = loss_fn(forward(adapted, task.x_query), task.y_query).mean()
        grads = torch.autograd.grad(query_loss, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    return grads, float(query_loss.detach())


def reptile_direction(forward, params: Params, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
                      inner_lr: float, inner_steps: int, loss_fn=cross_entropy) -> tuple[Params, float]:
    """Reptile's update direction theta - phi, phi = ``inner_steps`` SGD steps cycling over ``batches``.

    With task batches (x [n, M, D]) every task runs its own inner loop; the direction is averaged.
    Returns (theta - phi as a list like ``params``, loss on the last batch at phi).
    """
    check_float("inner_lr", inner_lr, minimum=0.0)
    check_int("inner_steps", inner_steps, minimum=1)
    if not batches:
        raise ValueError("batches must hold at least one (x, y) pair")
    theta = [p.detach() for p in params]
    phi = [p.clone().requires_grad_(True) for p in _per_task(theta, batches[0][0])]
    with torch.enable_grad():
        for step in range(inner_steps):
            x, y = batches[step % len(batches)]
            loss = loss_fn(forward(phi, x), y).sum()
            grads = torch.autograd.grad(loss, phi)
            phi = [(p - inner_lr * g).detach().requires_grad_(True) for p, g in zip(phi, grads)]
        x, y = batches[(inner_steps - 1) % len(batches)]
        final = float(loss_fn(forward(phi, x), y).mean().detach())
    # for a task batch the direction is the task average of theta - phi_task
    return [p - (q.detach().mean(0) if q.ndim > p.ndim else q.detach()) for p, q in zip(theta, phi)], final


def finite_difference_meta_gradient(forward, params: Params, task: FewShotTask, *, inner_lr: float,
                                    inner_steps: int = 1, eps: float = 1e-6, loss_fn=cross_entropy) -> torch.Tensor:
    """Central differences of F(theta) = L_Q(U_S(theta)), flattened over all params (float64 advised).

    The reference that second-order MAML must match; 2 * n_params evaluations: tiny models only."""
    check_float("eps", eps, minimum=0.0, strict_minimum=True)
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    if theta.numel() > 2000:
        raise ValueError(f"finite differences over {theta.numel()} parameters would be slow; use a tiny model")

    def objective(vec):
        ps, i = [], 0
        for p in params:
            ps.append(vec[i:i + p.numel()].reshape(p.shape).clone().requires_grad_(True))
            i += p.numel()
        adapted = inner_adapt(forward, ps, task.x_support, task.y_support, inner_lr=inner_lr,
                              inner_steps=inner_steps, create_graph=False, loss_fn=loss_fn)
        return float(loss_fn(forward(adapted, task.x_query), task.y_query).mean().detach())

    fd = torch.zeros_like(theta)
    for i in range(theta.numel()):
        step = torch.zeros_like(theta)
        step[i] = eps
        fd[i] = (objective(theta + step) - objective(theta - step)) / (2 * eps)
    return fd


def quadratic_task(A: torch.Tensor, a: torch.Tensor, B: torch.Tensor, b: torch.Tensor) -> FewShotTask:
    """A task whose support loss is L_S(theta) = (theta - a)^T A (theta - a) / 2 and whose query loss is
    L_Q(theta) = (theta - b)^T B (theta - b) / 2 (A, B symmetric [d, d]; a, b [d]), for
    :func:`quadratic_forward` and :func:`value_loss`: the closed-form case of MAML and FOMAML
    (theta' = a + (I - alpha A)^n (theta - a), so d theta' / d theta = (I - alpha A)^n exactly)."""
    if A.shape != B.shape or A.ndim != 2 or a.shape != (A.shape[0],) or b.shape != a.shape:
        raise ValueError(f"need A, B [d, d] and a, b [d]; got {tuple(A.shape)}, {tuple(a.shape)}, "
                         f"{tuple(B.shape)}, {tuple(b.shape)}")
    return FewShotTask(torch.cat([A, a[:, None]], 1), None, torch.cat([B, b[:, None]], 1), None)


def quadratic_forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """(theta - c)^T M (theta - c) / 2 for params [theta] and x = [M | c] (see :func:`quadratic_task`)."""
    m, c = x[:, :-1], x[:, -1]
    d = params[0] - c
    return 0.5 * d @ m @ d


def value_loss(value: torch.Tensor, y=None) -> torch.Tensor:
    """The loss of a model that outputs its own loss (:func:`quadratic_forward`): the value itself."""
    return value


# --------------------------------------------------------------------------- evaluation and training
@torch.no_grad()
def _accuracy(forward, params, x, y) -> torch.Tensor:
    """Query accuracy of each task (a vector [n] for a task batch, a scalar for one task)."""
    return (forward(params, x).argmax(-1) == y).double().mean(-1).cpu()


def adaptation_curve(forward, params: Params, tasks: Sequence[FewShotTask], *, inner_lr: float,
                     max_steps: int = 10, loss_fn=cross_entropy, per_task: bool = False) -> torch.Tensor:
    """Mean query accuracy after s = 0..max_steps steps of SGD on each task's support set. [max_steps+1].

    ``tasks``: a list of tasks or a stacked task batch; all tasks adapt at once. ``per_task=True``
    returns every task's accuracy instead, [max_steps+1, n_tasks] (its mean over tasks is the default
    curve), for confidence intervals over tasks and paired comparisons of initialisations."""
    check_int("max_steps", max_steps, minimum=0)
    if not tasks:
        raise ValueError("tasks must not be empty")
    batch = stack_tasks(tasks) if not isinstance(tasks, FewShotTask) else tasks
    if batch.x_support.ndim == 2:   # one task: a batch of one
        batch = stack_tasks([batch])
    acc = torch.zeros(max_steps + 1, batch.x_support.shape[0], dtype=torch.float64)
    phi = [p.clone().requires_grad_(True) for p in _per_task([p.detach() for p in params], batch.x_support)]
    for s in range(max_steps + 1):
        acc[s] = _accuracy(forward, phi, batch.x_query, batch.y_query)
        if s < max_steps:
            with torch.enable_grad():
                loss = loss_fn(forward(phi, batch.x_support), batch.y_support).sum()
                grads = torch.autograd.grad(loss, phi)
            phi = [(p - inner_lr * g).detach().requires_grad_(True) for p, g in zip(phi, grads)]
    return acc if per_task else acc.mean(1)


def meta_train(forward, params: Params, pool: ClassPool, *, method: str = "maml", meta_iterations: int = 200,
               meta_batch: int = 8, n_way: int = 5, k_shot: int = 5, n_query: int = 10, inner_lr: float = 0.5,
               inner_steps: int = 3, outer_lr: float = 1e-3, generator: torch.Generator | None = None,
               eval_pool: ClassPool | None = None, eval_every: int = 50, eval_tasks: int = 20,
               eval_batch: FewShotTask | None = None, eval_steps: int | None = None,
               progress: bool = True) -> tuple[Params, dict]:
    """Meta-train an initialisation with ``method`` in ``("maml", "fomaml", "reptile")``.

    Every iteration draws ``meta_batch`` tasks from ``pool``; the meta-gradients (MAML, FOMAML) or
    Reptile directions theta - phi (inner SGD on the support set) are averaged and given to Adam
    with ``outer_lr``. Returns (new params, history with ``query_loss`` per iteration and, with
    ``eval_pool``, ``eval_step``/``eval_accuracy``: query accuracy after ``inner_steps`` steps).
    ``eval_batch`` (a stacked task batch, e.g. fixed meta-test tasks) is evaluated instead of tasks
    drawn from ``eval_pool``; it draws nothing from ``generator``, so the training tasks stay those
    of a run without evaluation. ``eval_steps`` (default ``inner_steps``) sets the evaluation's steps.
    """
    check_choice("method", method, METHODS)
    check_int("meta_iterations", meta_iterations, minimum=1)
    check_int("meta_batch", meta_batch, minimum=1)
    check_float("outer_lr", outer_lr, minimum=0.0, strict_minimum=True)
    check_int("eval_every", eval_every, minimum=1)
    params = [p.detach().clone().requires_grad_(True) for p in params]
    optimizer = torch.optim.Adam(params, lr=outer_lr)
    history = {"query_loss": [], "eval_step": [], "eval_accuracy": []}
    eval_set = eval_batch
    eval_steps = inner_steps if eval_steps is None else check_int("eval_steps", eval_steps, minimum=0)
    if eval_set is None and eval_pool is not None:
        eval_set = stack_tasks([sample_task(eval_pool, n_way=n_way, k_shot=k_shot, n_query=n_query,
                                            generator=generator) for _ in range(eval_tasks)])
    for it in progress_bar(range(meta_iterations), desc=method, disable=not progress, leave=False):
        task = stack_tasks([sample_task(pool, n_way=n_way, k_shot=k_shot, n_query=n_query, generator=generator)
                            for _ in range(meta_batch)])
        if method == "reptile":
            grads, loss = reptile_direction(forward, params, [(task.x_support, task.y_support)],
                                            inner_lr=inner_lr, inner_steps=inner_steps)
        else:
            grads, loss = maml_meta_gradient(forward, params, task, inner_lr=inner_lr, inner_steps=inner_steps,
                                             second_order=(method == "maml"))
        optimizer.zero_grad(set_to_none=True)
        for p, g in zip(params, grads):
            p.grad = g.detach().clone()
        optimizer.step()
        history["query_loss"].append(loss)
        if eval_set is not None and ((it + 1) % eval_every == 0 or it + 1 == meta_iterations):
            curve = adaptation_curve(forward, params, eval_set, inner_lr=inner_lr, max_steps=eval_steps)
            history["eval_step"].append(it + 1)
            history["eval_accuracy"].append(float(curve[-1]))
    return [p.detach().requires_grad_(True) for p in params], history


def task_confidence_intervals(per_task: torch.Tensor, *, level: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Student-t confidence interval of the mean over tasks, per step, for ``per_task`` [steps, n_tasks]
    (from :func:`adaptation_curve` with ``per_task=True``). Returns (lower, upper), each [steps].

    The interval is over test tasks for *one* meta-trained initialisation: it says how well 50 tasks
    pin down that initialisation's mean accuracy, not how much another meta-training run would differ."""
    from ..stats import paired_t_ci

    rows = [paired_t_ci(row.tolist(), level=level) for row in per_task]
    return (torch.tensor([r[1] for r in rows], dtype=torch.float64),
            torch.tensor([r[2] for r in rows], dtype=torch.float64))


def _color(name: str, k: int) -> str:
    """The colour of an initialisation; a variant named "maml (...)" keeps the colour of "maml"."""
    return COLORS.get(name, COLORS.get(name.split(" ")[0], f"C{4 + k}"))


def plot_adaptation(curves: dict, method: str | None = None, *, chance: float | None = None, title: str = "",
                    bands: dict | None = None, dashed: Sequence[str] = ()):
    """Query accuracy against adaptation steps for each initialisation (``curves[name]`` from
    :func:`adaptation_curve`), ``method`` highlighted; ``bands[name] = (lower, upper)`` shades a
    confidence interval (:func:`task_confidence_intervals`); curves named in ``dashed`` are drawn dashed (a
    variant of a method keeps the method's colour, :data:`COLORS`). Returns the Figure."""
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("curves must not be empty")
    if method is not None and method not in curves:
        raise ValueError(f"method={method!r} has no curve; available: {sorted(curves)}")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for k, (name, curve) in enumerate(curves.items()):
        values = [float(v) for v in curve]
        bold = method is None or name == method
        steps = range(len(values))
        ax.plot(steps, values, "o--" if name in dashed else "o-", markersize=3, label=name, color=_color(name, k),
                linewidth=2.5 if bold else 1, alpha=1.0 if bold else 0.45)
        if bands and name in bands and bold:
            lo, hi = bands[name]
            ax.fill_between(steps, [float(v) for v in lo], [float(v) for v in hi], color=_color(name, k), alpha=0.15,
                            linewidth=0)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("gradient steps on the support set")
    ax.set_ylabel("query accuracy (fraction correct)")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="95 % CI over tasks" if bands else None,
              title_fontsize=9)
    fig.tight_layout()
    return fig


def plot_paired_differences(rows: dict, *, title: str = ""):
    """Forest plot of paired differences: ``rows[label] = (mean, lower, upper)`` (e.g. from
    :func:`snnlab.stats.paired_t_ci`), one horizontal interval per comparison, zero marked. Returns the Figure."""
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("rows must not be empty")
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.55 * len(rows)))
    for k, (label, (mean, lo, hi)) in enumerate(rows.items()):
        first = label.split(" - ")[0]
        ax.errorbar([mean], [k], xerr=[[mean - lo], [hi - mean]], fmt="o", capsize=4,
                    color=_color(first, k))
    ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("difference in query accuracy (fraction correct), 95 % CI")
    ax.set_ylabel("paired comparison")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def plot_meta_training(histories: dict, *, window: int = 20):
    """Running mean (``window`` iterations) of each method's query loss after adaptation during
    meta-training (``histories[method]["query_loss"]`` from :func:`meta_train`). Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    for k, (name, h) in enumerate(histories.items()):
        loss = torch.tensor(h["query_loss"], dtype=torch.float64)
        w = max(1, min(window, len(loss)))
        smooth = loss.unfold(0, w, 1).mean(1)
        ax.plot(range(w, len(loss) + 1), smooth.tolist(), label=name, color=_color(name, k))
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel(f"query loss (nats, mean of {window})")
    ax.set_title("meta-training: query loss after adaptation (meta-train classes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_first_order_gap(inner_lrs: Sequence[float], gaps: Sequence[float], cosines: Sequence[float],
                         inner_lr: float | None = None):
    """|g_MAML - g_FOMAML| / |g_MAML| and cos(g_MAML, g_FOMAML) against the inner learning rate
    (precomputed), with ``inner_lr`` marked. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(inner_lrs, gaps, "o-", color="C4", label="relative gap\n|MAML - FOMAML| / |MAML|")
    ax.plot(inner_lrs, cosines, "s-", color="C5", label="cos(MAML, FOMAML)")
    if inner_lr is not None:
        ax.axvline(inner_lr, color="C3", linestyle=":", label=f"inner lr = {inner_lr:g}")
    ax.set_xlabel("inner learning rate alpha (per step)")
    ax.set_ylabel("gap, cosine (dimensionless)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("what first-order MAML drops: -alpha H_S g_Q")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
