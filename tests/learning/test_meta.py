"""Tests for snnlab.learning.meta: MAML against finite differences and closed forms; FOMAML and
Reptile against what theory says they drop (Finn et al. 2017; Nichol et al. 2018)."""
import pytest
import torch
from torch.autograd.functional import hessian

import snnlab  # noqa: F401
from snnlab.learning import meta as M


def _tiny(seed=0, d=4, hidden=3, classes=2, n=6):
    g = torch.Generator().manual_seed(seed)
    params = M.init_mlp([d, hidden, classes], generator=g, dtype=torch.float64)
    with torch.no_grad():
        params[1].normal_(0, 0.3, generator=g)
        params[3].normal_(0, 0.3, generator=g)

    def batch():
        return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)

    (xs, ys), (xq, yq) = batch(), batch()
    return params, M.FewShotTask(xs, ys, xq, yq), batch


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(vec, like):
    out, i = [], 0
    for p in like:
        out.append(vec[i:i + p.numel()].reshape(p.shape))
        i += p.numel()
    return out


def _loss(params, x, y):
    return M.cross_entropy(M.mlp_forward(params, x), y)


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_maml_meta_gradient_matches_finite_differences(inner_steps):
    params, task, _ = _tiny()
    lr = 0.7
    grads, _ = M.maml_meta_gradient(M.mlp_forward, params, task, inner_lr=lr, inner_steps=inner_steps)

    def meta_objective(vec):
        p = [t.clone().requires_grad_(True) for t in _unflat(vec, params)]
        adapted = M.inner_adapt(M.mlp_forward, p, task.x_support, task.y_support, inner_lr=lr,
                                inner_steps=inner_steps, create_graph=False)
        return float(_loss(adapted, task.x_query, task.y_query).detach())

    theta = _flat([p.detach() for p in params])
    eps = 1e-6
    fd = torch.zeros_like(theta)
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = eps
        fd[i] = (meta_objective(theta + e) - meta_objective(theta - e)) / (2 * eps)
    torch.testing.assert_close(_flat(grads), fd, rtol=1e-6, atol=1e-8)


def test_fomaml_drops_exactly_the_hessian_term():
    """One inner step: g_MAML - g_FOMAML = -alpha H_S(theta) grad L_Q(theta')."""
    params, task, _ = _tiny(seed=1)
    lr = 0.5
    g2, _ = M.maml_meta_gradient(M.mlp_forward, params, task, inner_lr=lr, inner_steps=1)
    g1, _ = M.maml_meta_gradient(M.mlp_forward, params, task, inner_lr=lr, inner_steps=1, second_order=False)
    theta = _flat([p.detach() for p in params])
    h_support = hessian(lambda v: _loss(_unflat(v, params), task.x_support, task.y_support), theta)
    g_support = torch.autograd.functional.jacobian(
        lambda v: _loss(_unflat(v, params), task.x_support, task.y_support), theta)
    theta_prime = theta - lr * g_support
    g_query = torch.autograd.functional.jacobian(
        lambda v: _loss(_unflat(v, params), task.x_query, task.y_query), theta_prime)
    torch.testing.assert_close(_flat(g1), g_query)                               # FOMAML
    torch.testing.assert_close(_flat(g2), g_query - lr * h_support @ g_query)    # MAML
    assert (_flat(g2) - _flat(g1)).norm() > 1e-3


def test_maml_equals_fomaml_when_inner_lr_is_zero():
    params, task, _ = _tiny(seed=2)
    g2, l2 = M.maml_meta_gradient(M.mlp_forward, params, task, inner_lr=0.0, inner_steps=3)
    g1, l1 = M.maml_meta_gradient(M.mlp_forward, params, task, inner_lr=0.0, inner_steps=3, second_order=False)
    plain = torch.autograd.grad(_loss(params, task.x_query, task.y_query), params)
    for a, b, c in zip(g2, g1, plain):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)
    assert l1 == l2


def test_maml_on_linear_regression_matches_closed_form():
    """f(x) = w.x + b with squared error: L(theta) = |X theta - y|^2 / n with X = [x, 1], so
    H = 2 X^T X / n is constant and, for one inner step, g_MAML = (I - alpha H_S) g_FOMAML,
    g_FOMAML = 2 X_Q^T (X_Q theta' - y_Q) / n_Q,  theta' = theta - alpha 2 X_S^T (X_S theta - y_S) / n_S."""
    g = torch.Generator().manual_seed(3)
    d, n = 3, 8
    params = [torch.randn(1, d, generator=g, dtype=torch.float64).requires_grad_(),
              torch.randn(1, generator=g, dtype=torch.float64).requires_grad_()]
    xs, xq = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
    ys, yq = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)
    task = M.FewShotTask(xs, ys, xq, yq)

    def mse(pred, y):
        return ((pred[..., 0] - y) ** 2).mean(-1)

    lr = 0.1
    g2, _ = M.maml_meta_gradient(M.mlp_forward, params, task, inner_lr=lr, loss_fn=mse)
    g1, _ = M.maml_meta_gradient(M.mlp_forward, params, task, inner_lr=lr, loss_fn=mse, second_order=False)
    theta = torch.cat([params[0].detach()[0], params[1].detach()])
    XS = torch.cat([xs, torch.ones(n, 1, dtype=torch.float64)], 1)
    XQ = torch.cat([xq, torch.ones(n, 1, dtype=torch.float64)], 1)
    theta_p = theta - lr * 2 * XS.T @ (XS @ theta - ys) / n
    fo = 2 * XQ.T @ (XQ @ theta_p - yq) / n
    so = (torch.eye(d + 1, dtype=torch.float64) - lr * 2 * XS.T @ XS / n) @ fo
    torch.testing.assert_close(torch.cat([g1[0][0], g1[1]]), fo)
    torch.testing.assert_close(torch.cat([g2[0][0], g2[1]]), so)


def test_reptile_with_one_step_is_the_plain_gradient():
    params, task, _ = _tiny(seed=4)
    lr = 0.3
    direction, _ = M.reptile_direction(M.mlp_forward, params, [(task.x_support, task.y_support)],
                                       inner_lr=lr, inner_steps=1)
    plain = torch.autograd.grad(_loss(params, task.x_support, task.y_support), params)
    for d_, g_ in zip(direction, plain):
        torch.testing.assert_close(d_ / lr, g_)


def test_reptile_two_steps_is_first_gradient_plus_fomaml_and_taylor_expansion():
    """Two steps on A then B: g_Rep = (theta - phi)/alpha = g_A(theta) + g_B(theta - alpha g_A)
    = g_A + g_FOMAML(A -> B) exactly, and = g_A + g_B - alpha H_B g_A + O(alpha^2) (Nichol Sec. 5)."""
    params, _, batch = _tiny(seed=5)
    (xa, ya), (xb, yb) = batch(), batch()
    theta = _flat([p.detach() for p in params])
    loss_a = lambda v: _loss(_unflat(v, params), xa, ya)  # noqa: E731
    loss_b = lambda v: _loss(_unflat(v, params), xb, yb)  # noqa: E731
    g_a = torch.autograd.functional.jacobian(loss_a, theta)
    g_b = torch.autograd.functional.jacobian(loss_b, theta)
    h_b = hessian(loss_b, theta)

    def g_rep(lr):
        d, _ = M.reptile_direction(M.mlp_forward, params, [(xa, ya), (xb, yb)], inner_lr=lr, inner_steps=2)
        return _flat(d) / lr

    lr = 0.2
    fomaml, _ = M.maml_meta_gradient(M.mlp_forward, params, M.FewShotTask(xa, ya, xb, yb), inner_lr=lr,
                                     second_order=False)
    torch.testing.assert_close(g_rep(lr), g_a + _flat(fomaml))
    residual = [(g_rep(a) - (g_a + g_b - a * h_b @ g_a)).norm().item() for a in (0.02, 0.01)]
    assert 3.0 < residual[0] / residual[1] < 5.0          # second order in alpha
    first_order_only = [(g_rep(a) - (g_a + g_b)).norm().item() for a in (0.02, 0.01)]
    assert 1.7 < first_order_only[0] / first_order_only[1] < 2.3   # dropping H_B g_A leaves O(alpha)


def test_batched_tasks_match_the_loop_over_tasks():
    params, _, batch = _tiny(seed=6)
    tasks = [M.FewShotTask(*batch(), *batch()) for _ in range(3)]
    stacked = M.stack_tasks(tasks)
    for second in (True, False):
        got, _ = M.maml_meta_gradient(M.mlp_forward, params, stacked, inner_lr=0.4, inner_steps=2,
                                      second_order=second)
        each = [M.maml_meta_gradient(M.mlp_forward, params, t, inner_lr=0.4, inner_steps=2, second_order=second)[0]
                for t in tasks]
        for i, g in enumerate(got):
            torch.testing.assert_close(g, sum(e[i] for e in each) / 3)
    got, _ = M.reptile_direction(M.mlp_forward, params, [(stacked.x_support, stacked.y_support)],
                                 inner_lr=0.4, inner_steps=2)
    each = [M.reptile_direction(M.mlp_forward, params, [(t.x_support, t.y_support)], inner_lr=0.4, inner_steps=2)[0]
            for t in tasks]
    for i, g in enumerate(got):
        torch.testing.assert_close(g, sum(e[i] for e in each) / 3)


def test_digit_pools_are_disjoint_and_tasks_are_well_formed():
    train, test = M.digits_class_pools(0)
    assert len(train) == 20 and len(test) == 5
    assert {n.split("@")[0] for n in train.names}.isdisjoint(set(test.names))
    g = torch.Generator().manual_seed(0)
    task = M.sample_task(test, n_way=5, k_shot=5, n_query=7, generator=g)
    assert task.x_support.shape == (25, 64) and task.x_query.shape == (35, 64)
    assert torch.equal(torch.bincount(task.y_support), torch.full((5,), 5))
    assert torch.equal(torch.bincount(task.y_query), torch.full((5,), 7))
    # support and query images differ
    assert torch.cdist(task.x_support, task.x_query).min() > 0
    again = M.sample_task(test, n_way=5, k_shot=5, n_query=7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.x_support, task.x_support)
    with pytest.raises(ValueError, match="n_way"):
        M.sample_task(test, n_way=6)


def test_adaptation_curve_starts_at_plain_accuracy_and_meta_train_runs():
    train, test = M.digits_class_pools(0)
    g = torch.Generator().manual_seed(0)
    params = M.init_mlp([64, 16, 5], generator=g)
    tasks = [M.sample_task(test, generator=g) for _ in range(4)]
    curve = M.adaptation_curve(M.mlp_forward, params, tasks, inner_lr=0.4, max_steps=3)
    acc0 = sum(float((M.mlp_forward(params, t.x_query).argmax(-1) == t.y_query).float().mean()) for t in tasks) / 4
    assert curve[0].item() == pytest.approx(acc0)
    assert curve[-1] > curve[0]
    for method in M.METHODS:
        new, hist = M.meta_train(M.mlp_forward, params, train, method=method, meta_iterations=3, meta_batch=2,
                                 generator=g, eval_pool=test, eval_every=3, eval_tasks=2, progress=False)
        assert len(hist["query_loss"]) == 3 and hist["eval_step"] == [3]
        assert not torch.equal(new[0], params[0])
    with pytest.raises(ValueError, match="method"):
        M.meta_train(M.mlp_forward, params, train, method="anil")


def test_spiking_model_supports_second_order_maml():
    _, test = M.digits_class_pools(0)
    g = torch.Generator().manual_seed(0)
    forward = M.make_snn_forward(n_steps=3)
    params = M.init_mlp([64, 8, 5], generator=g, dtype=torch.float64)
    task = M.sample_task(test, generator=g)
    task = M.FewShotTask(task.x_support.double() * 3, task.y_support, task.x_query.double() * 3, task.y_query)
    g2, _ = M.maml_meta_gradient(forward, params, task, inner_lr=0.5)
    g1, _ = M.maml_meta_gradient(forward, params, task, inner_lr=0.5, second_order=False)
    assert all(torch.isfinite(g).all() for g in g2)
    assert any(not torch.allclose(a, b) for a, b in zip(g2, g1))   # the surrogate's own derivative enters


def test_finite_difference_helper_matches_second_order_maml_and_refuses_big_models():
    params, task, _ = _tiny(seed=7)
    fd = M.finite_difference_meta_gradient(M.mlp_forward, params, task, inner_lr=0.5, inner_steps=1)
    g, _ = M.maml_meta_gradient(M.mlp_forward, params, task, inner_lr=0.5, inner_steps=1)
    torch.testing.assert_close(fd, _flat(g), rtol=1e-6, atol=1e-8)
    big = M.init_mlp([64, 64, 5])
    with pytest.raises(ValueError, match="finite differences"):
        M.finite_difference_meta_gradient(M.mlp_forward, big, task, inner_lr=0.1)


def test_pools_tasks_and_init_on_cpu_device_equal_the_default(assert_same):
    pools = M.digits_class_pools(0, rotations=1)
    on_cpu = M.digits_class_pools(0, rotations=1, device="cpu")
    assert_same([p.images for p in on_cpu], [p.images for p in pools])
    task = M.sample_task(on_cpu[1], generator=torch.Generator().manual_seed(3))
    assert_same(task, M.sample_task(pools[1], generator=torch.Generator().manual_seed(3)))
    assert task.y_support.device == on_cpu[1].images[0].device
    assert_same(M.init_mlp([64, 7, 5], generator=torch.Generator().manual_seed(1), input_gain=3.0, device="cpu"),
                M.init_mlp([64, 7, 5], generator=torch.Generator().manual_seed(1), input_gain=3.0))


def test_per_task_curves_average_to_the_curve_and_give_intervals_around_it():
    train, test = M.digits_class_pools(0)
    g = torch.Generator().manual_seed(1)
    params = M.init_mlp([64, 8, 5], generator=g)
    tasks = M.stack_tasks([M.sample_task(test, generator=g) for _ in range(6)])
    mean = M.adaptation_curve(M.mlp_forward, params, tasks, inner_lr=0.4, max_steps=3)
    each = M.adaptation_curve(M.mlp_forward, params, tasks, inner_lr=0.4, max_steps=3, per_task=True)
    assert each.shape == (4, 6)
    torch.testing.assert_close(each.mean(1), mean)
    one = M.adaptation_curve(M.mlp_forward, params, M.FewShotTask(*(t[2] for t in (
        tasks.x_support, tasks.y_support, tasks.x_query, tasks.y_query))), inner_lr=0.4, max_steps=3, per_task=True)
    torch.testing.assert_close(one[:, 0], each[:, 2])   # a single task adapts like its copy in the batch
    lo, hi = M.task_confidence_intervals(each)
    assert torch.all(lo <= mean + 1e-12) and torch.all(mean <= hi + 1e-12)


def test_eval_batch_does_not_change_the_training_tasks():
    train, test = M.digits_class_pools(0)
    params = M.init_mlp([64, 8, 5], generator=torch.Generator().manual_seed(0))
    fixed = M.stack_tasks([M.sample_task(test, generator=torch.Generator().manual_seed(i)) for i in range(3)])
    kw = dict(method="fomaml", meta_iterations=4, meta_batch=2, inner_lr=0.3, inner_steps=2, outer_lr=1e-2,
              progress=False)
    plain, _ = M.meta_train(M.mlp_forward, params, train, generator=torch.Generator().manual_seed(1), **kw)
    evald, hist = M.meta_train(M.mlp_forward, params, train, generator=torch.Generator().manual_seed(1),
                               eval_batch=fixed, eval_every=2, eval_steps=3, **kw)
    for a, b in zip(plain, evald):
        torch.testing.assert_close(a, b)
    assert hist["eval_step"] == [2, 4]
    expected = M.adaptation_curve(M.mlp_forward, evald, fixed, inner_lr=0.3, max_steps=3)[-1]
    assert hist["eval_accuracy"][-1] == pytest.approx(float(expected))


def test_meta_figures_are_readable():
    from snnlab.plots import figure_problems

    curves = {"scratch": torch.linspace(0.2, 0.5, 4), "maml": torch.linspace(0.2, 0.7, 4)}
    bands = {k: (v - 0.05, v + 0.05) for k, v in curves.items()}
    figs = [M.plot_adaptation(curves, chance=0.2, bands=bands), M.plot_adaptation(curves, "maml"),
            M.plot_first_order_gap([0.0, 0.1], [0.0, 0.2], [1.0, 0.9], 0.1),
            M.plot_paired_differences({"maml - scratch": (0.2, 0.1, 0.3), "maml - fomaml": (0.1, 0.0, 0.2)}),
            M.plot_meta_training({"maml": {"query_loss": [1.6, 1.5, 1.4]}, "fomaml": {"query_loss": [1.6, 1.6, 1.5]}},
                                 window=2)]
    for fig in figs:
        assert figure_problems(fig) == []


@pytest.mark.parametrize("steps", [1, 3])
def test_quadratic_task_has_the_closed_form_meta_gradients(steps):
    g = torch.Generator().manual_seed(7)
    d = 3
    qa, qb = torch.randn(d, d, generator=g, dtype=torch.float64), torch.randn(d, d, generator=g, dtype=torch.float64)
    A, B = qa @ qa.T + torch.eye(d, dtype=torch.float64), qb @ qb.T + torch.eye(d, dtype=torch.float64)
    a, b, theta = (torch.randn(d, generator=g, dtype=torch.float64) for _ in range(3))
    alpha = 0.05
    task = M.quadratic_task(A, a, B, b)
    params = [theta.clone().requires_grad_(True)]
    g2, _ = M.maml_meta_gradient(M.quadratic_forward, params, task, inner_lr=alpha, inner_steps=steps,
                                 loss_fn=M.value_loss)
    g1, _ = M.maml_meta_gradient(M.quadratic_forward, params, task, inner_lr=alpha, inner_steps=steps,
                                 second_order=False, loss_fn=M.value_loss)
    J = torch.linalg.matrix_power(torch.eye(d, dtype=torch.float64) - alpha * A, steps)
    fo = B @ (a + J @ (theta - a) - b)
    torch.testing.assert_close(g1[0], fo)
    torch.testing.assert_close(g2[0], J.T @ fo)
