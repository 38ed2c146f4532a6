"""FedAvg against its definition: equivalence with centralised SGD, the weighted average, the shards."""
import copy

import pytest
import torch
import torch.nn.functional as F

from snnlab.learning.federated import (
    FedAvgParams,
    fedavg_aggregate,
    fedavg_round,
    run_fedavg,
    shard_iid,
    shard_non_iid,
)
from snnlab.models.mlp import SpikingMLP, SpikingMLPConfig

CFG = SpikingMLPConfig(n_in=12, n_hidden=8, n_out=4, n_steps=3)


def data(seed, n):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 12, generator=gen, dtype=torch.float64) * 2, torch.randint(4, (n,), generator=gen)


def sgd_step(model, x, y, lr):
    """Centralised SGD by hand: one full-batch step theta <- theta - lr grad mean CE."""
    model = copy.deepcopy(model)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return model


def test_fedavg_identical_clients_one_local_step_equals_centralised_sgd():
    model = SpikingMLP(CFG, seed=0).double()
    x, y = data(0, 20)
    params = FedAvgParams(client_fraction=1.0, local_epochs=1, local_batch_size=0, lr=0.5)
    fed = copy.deepcopy(model)
    fedavg_round(fed, [(x, y)] * 4, params=params, generator=torch.Generator().manual_seed(0))
    central = sgd_step(model, x, y, lr=0.5)
    for (k, a), b in zip(fed.named_parameters(), central.parameters()):
        assert torch.allclose(a, b, atol=1e-12), k
        assert not torch.allclose(a, dict(model.named_parameters())[k])   # something was learned


def test_fedavg_one_full_batch_step_equals_gradient_descent_on_the_union():
    # FedSGD: different clients of different sizes, weights n_k / n -> the gradient of the union
    model = SpikingMLP(CFG, seed=1).double()
    clients = [data(s, n) for s, n in ((1, 5), (2, 11), (3, 8))]
    params = FedAvgParams(local_epochs=1, local_batch_size=0, lr=0.3)
    fed = copy.deepcopy(model)
    fedavg_round(fed, clients, params=params, generator=torch.Generator().manual_seed(0))
    x = torch.cat([c[0] for c in clients])
    y = torch.cat([c[1] for c in clients])
    central = sgd_step(model, x, y, lr=0.3)
    for a, b in zip(fed.parameters(), central.parameters()):
        assert torch.allclose(a, b, atol=1e-12)


def test_fedavg_aggregate_is_the_weighted_mean():
    states = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([4.0, 0.0])}, {"w": torch.tensor([0.0, 8.0])}]
    out = fedavg_aggregate(states, [1, 2, 1])
    assert torch.allclose(out["w"], torch.tensor([(1 + 8 + 0) / 4, (2 + 0 + 8) / 4]))
    with pytest.raises(ValueError, match="weights"):
        fedavg_aggregate(states, [0, 0, 0])


def test_shard_non_iid_covers_every_example_once_with_few_labels_per_client():
    labels = torch.arange(10).repeat_interleave(30)[torch.randperm(300, generator=torch.Generator().manual_seed(0))]
    parts = shard_non_iid(labels, 10, shards_per_client=2, generator=torch.Generator().manual_seed(1))
    allidx = torch.cat(parts).sort().values
    assert torch.equal(allidx, torch.arange(300))
    assert all(len(set(labels[p].tolist())) <= 2 for p in parts)   # shards of 30 = one digit each
    iid = shard_iid(300, 7, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.cat(iid).sort().values, torch.arange(300))


def test_run_fedavg_is_reproducible_and_learns():
    cfg = SpikingMLPConfig(n_hidden=12, n_steps=3)
    params = FedAvgParams(lr=0.3, local_batch_size=64)
    a = run_fedavg(n_clients=5, rounds=2, params=params, config=cfg, seed=0, progress=False)
    b = run_fedavg(n_clients=5, rounds=2, params=params, config=cfg, seed=0, progress=False)
    assert a["acc"] == b["acc"]
    assert a["acc"][-1] > a["acc"][0] + 0.1     # two rounds on skewed shards: a start
    assert sum(a["sizes"]) == 1259                                  # every training image, once
    # 2 shards of ~126 sorted images each: a shard spans at most 3 digits (no class has < 120 images)
    assert all(len(c) <= 6 for c in a["client_labels"])
    assert sum(len(c) for c in a["client_labels"]) < 5 * 10 / 2     # far from IID


def test_fedavg_params_validate():
    with pytest.raises(ValueError, match="client_fraction"):
        FedAvgParams(client_fraction=0.0)
    with pytest.raises(ValueError, match="local_epochs"):
        FedAvgParams(local_epochs=0)
    with pytest.raises(ValueError, match="n_clients"):
        shard_non_iid(torch.arange(5), 10, generator=torch.Generator())


def test_run_fedavg_and_centralised_on_cpu_device_equal_the_default(assert_same):
    from snnlab.learning.federated import run_centralised

    cfg, params = SpikingMLPConfig(n_hidden=6, n_steps=2), FedAvgParams(local_batch_size=128)
    kw = dict(n_clients=3, rounds=1, params=params, config=cfg, seed=0, progress=False)
    assert_same(run_fedavg(device="cpu", **kw), run_fedavg(**kw))
    kw = dict(epochs=1, params=params, config=cfg, seed=0, progress=False)
    assert_same(run_centralised(device="cpu", **kw), run_centralised(**kw))


# --------------------------------------------------------------------------- secure aggregation
from snnlab.learning.federated import (  # noqa: E402
    SecAggParams,
    SignSGDParams,
    from_ring,
    majority_vote,
    mask_update,
    pairwise_mask,
    quantise,
    run_secagg,
    run_signsgd,
    secagg_round,
    secure_aggregate,
    secure_sum,
    signsgd_round,
    to_ring,
)


def test_quantise_error_is_at_most_half_a_step_and_clipping_bounds_the_range():
    p = SecAggParams(bits=32, clip=1.0, scale=2.0 ** -10)
    x = torch.linspace(-1.0, 1.0, 10001, dtype=torch.float64)
    q = quantise(x, params=p)
    assert q.dtype == torch.int64
    assert (q * p.scale - x).abs().max() <= p.scale / 2 + 1e-15
    big = quantise(torch.tensor([-5.0, 5.0], dtype=torch.float64), params=p)
    assert big.tolist() == [-p.q_max, p.q_max] and p.q_max == 1024


def test_ring_round_trip_of_signed_integers():
    q = torch.tensor([-(2 ** 15), -3, -1, 0, 1, 7, 2 ** 15 - 1])
    r = to_ring(q, 16)
    assert r.min() >= 0 and r.max() < 2 ** 16
    assert torch.equal(r, torch.remainder(q, 2 ** 16))
    assert torch.equal(from_ring(r, 16), q)


def test_pairwise_masks_are_shared_fresh_each_round_and_uniform_integers():
    a = pairwise_mask(3, 0, 1, 4, 1000, 16)
    assert torch.equal(a, pairwise_mask(3, 0, 4, 1, 1000, 16))          # i and j derive the same mask
    assert not torch.equal(a, pairwise_mask(3, 1, 1, 4, 1000, 16))      # a new round, a new mask
    assert not torch.equal(a, pairwise_mask(3, 0, 1, 5, 1000, 16))      # another pair, another mask
    assert a.dtype == torch.int64 and a.min() >= 0 and a.max() < 2 ** 16
    with pytest.raises(ValueError, match="two different clients"):
        pairwise_mask(0, 0, 2, 2, 10, 8)


@pytest.mark.parametrize("bits", [8, 16, 62])
def test_masked_sum_equals_the_plain_quantised_sum_exactly(bits):
    gen = torch.Generator().manual_seed(bits)
    k, d = 7, 500
    q = torch.randint(-(2 ** (bits - 1)) // k + 1, 2 ** (bits - 1) // k, (k, d), generator=gen)
    participants = list(range(k))
    masked = [mask_update(to_ring(q[i], bits), i, participants, seed=11, round_index=2, bits=bits)
              for i in range(k)]
    assert all(not torch.equal(m, to_ring(q[i], bits)) for i, m in enumerate(masked))   # masks were added
    assert torch.equal(from_ring(secure_sum(masked, bits), bits), q.sum(dim=0))          # and cancel exactly
    # a subset of participants (the clients selected this round) cancels too
    sub = [1, 4, 5]
    masked = [mask_update(to_ring(q[i], bits), i, sub, seed=11, round_index=2, bits=bits) for i in sub]
    assert torch.equal(from_ring(secure_sum(masked, bits), bits), q[sub].sum(dim=0))


def test_a_masked_update_carries_no_information_about_the_update():
    # one client's masked vector against its own update, over many coordinates: the correlation is
    # within 3 standard errors (1 / sqrt(d)) of zero, and the masked values are uniform on Z_{2^b}
    bits, d = 8, 256 * 200
    p = SecAggParams(bits=bits, clip=1.0, scale=1.0 / 40)                  # Q = 40, 3 clients: 2 K Q = 240 < 2^8
    gen = torch.Generator().manual_seed(0)
    update = torch.sin(torch.linspace(0, 60, d, dtype=torch.float64)) + 0.1 * torch.randn(d, generator=gen,
                                                                                         dtype=torch.float64)
    r = to_ring(quantise(update, params=p), bits)
    y = mask_update(r, 1, [0, 1, 2], seed=5, round_index=0, bits=bits)
    corr = float(torch.corrcoef(torch.stack([y.double(), update]))[0, 1])
    assert abs(corr) < 3 / d ** 0.5, corr
    corr_signed = float(torch.corrcoef(torch.stack([from_ring(y, bits).double(), update]))[0, 1])
    assert abs(corr_signed) < 3 / d ** 0.5, corr_signed
    assert abs(float(torch.corrcoef(torch.stack([r.double(), update]))[0, 1])) > 0.5   # unmasked: it leaks
    counts = torch.bincount(y, minlength=2 ** bits).double()
    expected = d / 2 ** bits
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # chi-square with 255 degrees of freedom: mean 255, sd 22.6; 255 + 5 sd is far in the tail
    assert chi2 < 255 + 5 * (2 * 255) ** 0.5, chi2


def test_secure_aggregate_matches_the_float_sum_within_k_half_steps_and_never_overflows():
    p = SecAggParams(bits=16, clip=0.5, scale=2.0 ** -10)                  # Q = 512, K = 5: 2 K Q = 5120 < 2^16
    gen = torch.Generator().manual_seed(1)
    updates = [0.3 * torch.randn(1000, generator=gen, dtype=torch.float64).clamp(-0.5, 0.5) for _ in range(5)]
    got = secure_aggregate(updates, params=p, seed=0)
    assert (got - sum(updates)).abs().max() <= 5 * p.scale / 2 + 1e-12
    # every client at the edge of the range: the sum reaches K Q and still decodes (no wrap-around)
    for sign in (1.0, -1.0):
        edge = [torch.full((10,), sign * 0.5, dtype=torch.float64)] * 5
        assert torch.allclose(secure_aggregate(edge, params=p, seed=0), torch.full((10,), sign * 2.5,
                                                                                    dtype=torch.float64))
    with pytest.raises(ValueError, match="bits=16"):
        secure_aggregate(updates * 13, params=p, seed=0)                 # 65 clients: 2 K Q = 66560 > 2^16


def test_secagg_params_for_bits_and_validation():
    p = SecAggParams.for_bits(12, 10, 0.1)
    assert p.q_max == 204 and 2 * 10 * p.q_max < 2 ** 12
    p.check_capacity(10)
    with pytest.raises(ValueError, match="bits"):
        SecAggParams(bits=63)
    with pytest.raises(ValueError, match="scale"):
        SecAggParams(clip=0.1, scale=0.2)
    with pytest.raises(ValueError, match="bits=8"):
        SecAggParams(bits=8, clip=1.0, scale=0.01).check_capacity(2)


def test_secagg_round_equals_fedavg_round_up_to_quantisation():
    model = SpikingMLP(CFG, seed=2).double()
    clients = [data(s, n) for s, n in ((4, 9), (5, 14), (6, 7), (7, 10))]
    params = FedAvgParams(local_epochs=1, local_batch_size=8, lr=0.3)
    p = SecAggParams(bits=40, clip=1.0, scale=2.0 ** -24)
    plain, secure = copy.deepcopy(model), copy.deepcopy(model)
    fedavg_round(plain, clients, params=params, generator=torch.Generator().manual_seed(3))
    info = secagg_round(secure, clients, params=params, secagg=p, generator=torch.Generator().manual_seed(3),
                        seed=0, round_index=0)
    assert info["selected"] == [0, 1, 2, 3] and info["clipped_fraction"] == 0.0
    assert info["max_error"] <= 4 * p.scale / 2
    for (name, a), b in zip(plain.named_parameters(), secure.parameters()):
        assert (a - b).abs().max() <= 4 * p.scale / 2 + 1e-12, name
        assert not torch.equal(a, dict(model.named_parameters())[name])


# --------------------------------------------------------------------------- signSGD with majority vote
def test_majority_vote_by_hand():
    updates = torch.tensor([[0.5, -1.0, 0.0, 2.0, 0.1],
                            [-0.1, -0.2, 3.0, 1.0, -0.3],
                            [0.3, 0.4, -1.0, -5.0, 0.0]])
    # signs: [1,-1,0,1,1], [-1,-1,1,1,-1], [1,1,-1,-1,0] -> sums [1,-1,0,1,0] -> vote
    assert majority_vote(torch.sign(updates)).tolist() == [1.0, -1.0, 0.0, 1.0, 0.0]
    # the vote ignores magnitudes: one huge update is outvoted
    assert majority_vote(torch.sign(torch.tensor([[100.0], [-0.01], [-0.01]]))).tolist() == [-1.0]
    with pytest.raises(ValueError, match="signs"):
        majority_vote(torch.ones(3))


def test_signsgd_round_with_one_full_batch_step_is_signsgd_with_majority_vote():
    # Bernstein et al.: w <- w - eta sign(sum_k sign(g_k)), g_k the gradient on client k's data
    model = SpikingMLP(CFG, seed=3).double()
    clients = [data(s, n) for s, n in ((8, 6), (9, 12), (10, 9))]
    params = FedAvgParams(local_epochs=1, local_batch_size=0, lr=0.1)
    eta = 0.05
    grads = []
    for x, y in clients:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    expected = [p.detach() - eta * torch.sign(sum(torch.sign(g[i]) for g in grads))
                for i, p in enumerate(model.parameters())]
    fed = copy.deepcopy(model)
    info = signsgd_round(fed, clients, params=params, sign_params=SignSGDParams(step=eta),
                         generator=torch.Generator().manual_seed(0))
    assert 0.0 <= info["tie_fraction"] < 1.0
    for a, b in zip(fed.parameters(), expected):
        assert torch.allclose(a, b, atol=1e-12)
    with pytest.raises(ValueError, match="step"):
        SignSGDParams(step=0.0)


def test_run_secagg_and_signsgd_use_fedavgs_split_and_are_reproducible():
    cfg = SpikingMLPConfig(n_hidden=6, n_steps=2)
    params = FedAvgParams(lr=0.3, local_batch_size=256)
    kw = dict(n_clients=3, rounds=1, params=params, config=cfg, seed=0, progress=False)
    fed = run_fedavg(**kw)
    sec = run_secagg(secagg=SecAggParams(bits=32, clip=0.5, scale=2.0 ** -20), **kw)
    sign = run_signsgd(sign_params=SignSGDParams(step=0.03), **kw)
    assert sec["client_labels"] == fed["client_labels"] == sign["client_labels"]
    assert sec["sizes"] == fed["sizes"] == sign["sizes"]
    assert sec["rounds"][0]["max_error"] <= 3 * 2.0 ** -20 / 2 + 1e-7    # float32 sums add ~1e-8
    assert max(abs(a - b) for a, b in zip(sec["acc"], fed["acc"])) <= 0.01
    assert sign["acc"][-1] != sign["acc"][0]


def test_federated_figures_are_readable():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from snnlab.learning.federated import METHOD_COLORS, plot_federated, plot_masking
    from snnlab.plots import figure_problems

    fig = plot_federated({"FedAvg": [0.1, 0.5, 0.7], "signSGD, majority vote": [0.1, 0.2, 0.3]},
                         colors=METHOD_COLORS, centralised=[0.1, 0.8, 0.9])
    assert figure_problems(fig) == []
    u = torch.randn(200, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 2 ** 16, (200,), generator=torch.Generator().manual_seed(1))
    fig2 = plot_masking(u, y, u, u, bits=16)
    assert figure_problems(fig2) == []
    plt.close("all")
