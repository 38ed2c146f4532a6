"""EWC: the Fisher diagonal against per-sample gradients by hand, the penalty, and forgetting."""

import pytest
import torch
import torch.nn.functional as F

from snnlab.learning.ewc import EWC, ewc_penalty, fisher_diagonal, restrict_logits, run_split_digits
from snnlab.models.mlp import SpikingMLP, SpikingMLPConfig


class Softmax(torch.nn.Module):
    """A linear softmax classifier: its per-sample score is known in closed form."""

    def __init__(self, w, b):
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())
        self.b = torch.nn.Parameter(b.clone())

    def forward(self, x):
        return x @ self.w.T + self.b


def tiny_linear(seed=0, n=7, d=3, c=4):
    gen = torch.Generator().manual_seed(seed)
    model = Softmax(torch.randn(c, d, generator=gen, dtype=torch.float64),
                    torch.randn(c, generator=gen, dtype=torch.float64))
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randint(c, (n,), generator=gen)
    return model, x, y


def test_fisher_empirical_equals_closed_form_on_linear_softmax():
    model, x, y = tiny_linear()
    got = fisher_diagonal(model, x, y, mode="empirical")
    p = torch.softmax(model(x), dim=-1).detach()
    e = F.one_hot(y, 4).double()
    # d log p_y / dW = (e_y - p) x^T ; d log p_y / db = e_y - p
    g_w = (e - p)[:, :, None] * x[:, None, :]
    assert torch.allclose(got["w"], (g_w ** 2).mean(0))
    assert torch.allclose(got["b"], ((e - p) ** 2).mean(0))


def test_fisher_expected_equals_closed_form_on_linear_softmax():
    model, x, _ = tiny_linear(seed=1)
    got = fisher_diagonal(model, x, mode="expected")
    p = torch.softmax(model(x), dim=-1).detach()
    expected_w = torch.zeros(4, 3, dtype=torch.float64)
    expected_b = torch.zeros(4, dtype=torch.float64)
    for n in range(x.shape[0]):
        for c in range(4):
            g = F.one_hot(torch.tensor(c), 4).double() - p[n]
            expected_w += p[n, c] * (g[:, None] * x[n][None, :]) ** 2
            expected_b += p[n, c] * g ** 2
    assert torch.allclose(got["w"], expected_w / x.shape[0])
    assert torch.allclose(got["b"], expected_b / x.shape[0])


@pytest.mark.parametrize("classes", [None, (1, 3, 4)])
def test_fisher_empirical_equals_mean_squared_per_sample_gradient_of_spiking_mlp(classes):
    cfg = SpikingMLPConfig(n_in=5, n_hidden=4, n_out=6, n_steps=3)
    model = SpikingMLP(cfg, seed=3).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(9, 5, generator=gen, dtype=torch.float64) * 2
    y = torch.tensor([1, 3, 4, 4, 1, 3, 1, 4, 3]) if classes else torch.randint(6, (9,), generator=gen)
    got = fisher_diagonal(model, x, y, mode="empirical", classes=classes, chunk_size=4)
    # by hand: one backward pass per sample, square, average
    total = {k: torch.zeros_like(v) for k, v in model.named_parameters()}
    for n in range(9):
        model.zero_grad()
        logits, target = restrict_logits(model(x[n:n + 1]), y[n:n + 1], classes)
        F.log_softmax(logits, dim=-1)[0, target[0]].backward()
        for k, v in model.named_parameters():
            total[k] += v.grad ** 2
    for k in total:
        assert torch.allclose(got[k], total[k] / 9, atol=1e-12), k
    assert any(float(v.abs().sum()) > 0 for v in got.values())


def test_ewc_penalty_equals_formula_and_its_gradient():
    gen = torch.Generator().manual_seed(0)
    theta = {"a": torch.randn(3, generator=gen, requires_grad=True), "b": torch.randn(2, 2, generator=gen, requires_grad=True)}
    anchor = {k: torch.randn(v.shape, generator=gen) for k, v in theta.items()}
    fisher = {k: torch.rand(v.shape, generator=gen) for k, v in theta.items()}
    pen = ewc_penalty(theta, anchor, fisher, lam=7.0)
    by_hand = sum(0.5 * 7.0 * float((fisher[k] * (theta[k].detach() - anchor[k]) ** 2).sum()) for k in theta)
    assert float(pen.detach()) == pytest.approx(by_hand, rel=1e-6)
    pen.backward()
    for k in theta:
        assert torch.allclose(theta[k].grad, 7.0 * fisher[k] * (theta[k].detach() - anchor[k]))
    assert float(ewc_penalty(anchor, anchor, fisher, lam=7.0)) == 0.0


def test_ewc_reduces_forgetting_on_split_digits():
    cfg = SpikingMLPConfig(n_hidden=32, n_steps=4)
    out = run_split_digits((0.0, 100.0), epochs_a=3, epochs_b=3, lr=1e-2, setting="class", config=cfg,
                           fisher_samples=100, progress=False)
    assert out["acc_a_before"] > 0.9
    plain, ewc = out["final"][0.0], out["final"][100.0]
    assert plain[0] < 0.3                        # fine-tuning on 5-9 forgets 0-4 (class-incremental)
    assert ewc[0] > plain[0] + 0.3               # EWC keeps much of it
    assert plain[1] > 0.7 and ewc[1] > 0.7       # both learn task B
    assert out["forgetting"][100.0] < out["forgetting"][0.0]


def test_ewc_bad_arguments_raise_naming_them():
    with pytest.raises(ValueError, match="lam"):
        EWC({}, {}, lam=-1.0)
    with pytest.raises(ValueError, match="mode"):
        fisher_diagonal(torch.nn.Linear(2, 2), torch.zeros(1, 2), mode="abs_weights")
    with pytest.raises(ValueError, match="y is required"):
        fisher_diagonal(torch.nn.Linear(2, 2), torch.zeros(1, 2), mode="empirical")
    with pytest.raises(ValueError, match="classes"):
        restrict_logits(torch.zeros(2, 10), torch.tensor([1, 7]), (0, 1, 2))


def test_run_split_digits_on_cpu_device_equals_the_default(assert_same):
    kw = dict(seed=0, epochs_a=1, epochs_b=1, config=SpikingMLPConfig(n_hidden=8, n_steps=3), fisher_samples=20,
              progress=False)
    assert_same(run_split_digits((0.0, 10.0), device="cpu", **kw), run_split_digits((0.0, 10.0), **kw))


def test_empirical_fisher_with_classes_keeps_the_labels_on_their_device():
    model = SpikingMLP(SpikingMLPConfig(n_in=6, n_hidden=4, n_out=10, n_steps=2), seed=0)
    x, y = torch.rand(5, 6, generator=torch.Generator().manual_seed(0)), torch.tensor([5, 6, 7, 5, 9])
    fisher = fisher_diagonal(model, x, y, mode="empirical", classes=(5, 6, 7, 8, 9))
    assert all(f.device == p.device and (f >= 0).all() for f, p in zip(fisher.values(), model.parameters()))
