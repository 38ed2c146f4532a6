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
