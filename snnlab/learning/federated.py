"""Federated averaging (FedAvg, McMahan et al. 2017) of a small spiking classifier over digit clients.

McMahan, Moore, Ramage, Hampson & Aguera y Arcas (2017), "Communication-efficient learning of deep
networks from decentralized data", AISTATS, PMLR 54:1273 (arXiv:1602.05629), Algorithm 1. Each round
the server sends the global weights w_t to a random fraction C of the K clients; client k runs E
epochs of minibatch SGD (batch B, rate eta) on its own n_k examples, starting from w_t, and returns
w^k_{t+1}; the server sets

    w_{t+1} = sum_{k in S_t} (n_k / n_S) w^k_{t+1},     n_S = sum_{k in S_t} n_k .

With one full-batch step per client (E = 1, B = infinity) this is exactly one step of centralised
full-batch gradient descent on the union of the selected clients' data (FedSGD), because the gradient
of the mean loss is the n_k-weighted mean of the clients' gradients: the tests check this.
Non-IID clients follow the paper's "pathological" split: sort the examples by label, cut them into
``shards_per_client * K`` equal shards and give each client ``shards_per_client`` random shards
(so most clients see only two digits). The model is :class:`snnlab.models.mlp.SpikingMLP`.
Used by ``notebooks/07_structural_continual_federated_evolution.ipynb``.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from ..utils import progress as progress_bar

from ..models.mlp import SpikingMLP, SpikingMLPConfig, flatten_images
from ..utils import check_float, check_int
from .ewc import accuracy, train_classifier

__all__ = [
    "FedAvgParams",
    "shard_iid",
    "shard_non_iid",
    "fedavg_aggregate",
    "client_update",
    "fedavg_round",
    "run_fedavg",
    "run_centralised",
]


@dataclass(frozen=True)
class FedAvgParams:
    """FedAvg hyper-parameters (names as in McMahan et al. 2017, Algorithm 1).

    Attributes:
        client_fraction: C, fraction of clients selected per round, (0, 1] (at least one client).
        local_epochs: E, local passes over the client's data per round, >= 1.
        local_batch_size: B, local minibatch size; 0 means the full local dataset (B = infinity).
        lr: eta, local SGD learning rate, > 0.
    """

    client_fraction: float = 1.0
    local_epochs: int = 1
    local_batch_size: int = 32
    lr: float = 0.1

    def __post_init__(self):
        check_float("client_fraction", self.client_fraction, minimum=0.0, maximum=1.0, strict_minimum=True)
        check_int("local_epochs", self.local_epochs, minimum=1)
        check_int("local_batch_size", self.local_batch_size, minimum=0)
        check_float("lr", self.lr, minimum=0.0, strict_minimum=True)


def shard_iid(n_examples: int, n_clients: int, *, generator: torch.Generator) -> list[torch.Tensor]:
    """Split ``range(n_examples)`` uniformly at random into ``n_clients`` near-equal parts."""
    check_int("n_clients", n_clients, minimum=1, maximum=n_examples)
    return list(torch.randperm(n_examples, generator=generator).tensor_split(n_clients))


def shard_non_iid(labels: torch.Tensor, n_clients: int, *, shards_per_client: int = 2,
                  generator: torch.Generator) -> list[torch.Tensor]:
    """McMahan et al.'s pathological non-IID split: sort by label, cut into equal shards, deal them out.

    Returns one index tensor per client; together they cover every example exactly once.
    """
    check_int("n_clients", n_clients, minimum=1)
    check_int("shards_per_client", shards_per_client, minimum=1)
    n_shards = n_clients * shards_per_client
    if n_shards > len(labels):
        raise ValueError(f"n_clients * shards_per_client = {n_shards} exceeds the {len(labels)} examples")
    order = torch.argsort(labels, stable=True)
    shards = order.tensor_split(n_shards)
    deal = torch.randperm(n_shards, generator=generator)
    return [torch.cat([shards[int(j)] for j in deal[k * shards_per_client:(k + 1) * shards_per_client]])
            for k in range(n_clients)]


def fedavg_aggregate(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict:
    """``sum_k (n_k / sum n) w^k`` for every tensor of the clients' state dicts."""
    if not states or len(states) != len(weights):
        raise ValueError("states and weights must be non-empty and of equal length")
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
    keys = set(states[0])
    if any(set(s) != keys for s in states):
        raise ValueError("every client state must hold the same tensors")
    return {k: sum((w / total) * s[k].detach() for s, w in zip(states, weights)) for k in states[0]}


def client_update(global_model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, params: FedAvgParams,
                  generator: torch.Generator) -> dict:
    """ClientUpdate of Algorithm 1: E epochs of plain SGD from the global weights; returns the state dict."""
    model = copy.deepcopy(global_model)
    batch = params.local_batch_size or len(y)
    train_classifier(model, x, y, epochs=params.local_epochs, lr=params.lr, batch_size=batch,
                     generator=generator, optimizer="sgd")
    return model.state_dict()


def fedavg_round(global_model: torch.nn.Module, clients: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
                 params: FedAvgParams, generator: torch.Generator) -> list[int]:
    """One communication round, in place on ``global_model``; returns the selected clients' indices."""
    k = len(clients)
    m = max(1, int(round(params.client_fraction * k)))
    selected = sorted(int(i) for i in torch.randperm(k, generator=generator)[:m])
    states = [client_update(global_model, *clients[i], params=params, generator=generator) for i in selected]
    global_model.load_state_dict(fedavg_aggregate(states, [len(clients[i][1]) for i in selected]))
    return selected


def run_fedavg(*, n_clients: int = 10, rounds: int = 20, iid: bool = False, shards_per_client: int = 2,
               params: FedAvgParams = FedAvgParams(), config: SpikingMLPConfig = SpikingMLPConfig(),
               seed: int = 0, progress: bool = True, device: str | torch.device = "cpu") -> dict:
    """FedAvg on the digits split over ``n_clients`` clients; test accuracy after every round.

    Returns ``{"acc": [...rounds + 1], "client_labels": [set of digits per client], "sizes": [n_k],
    "model"}``. The model and every client's data live on ``device``; the shards, the initial weights
    and the batch orders are drawn on the CPU from ``seed``.
    """
    from ..data import load_digits_split

    check_int("rounds", rounds, minimum=1)
    data = load_digits_split(seed)
    x, y = flatten_images(data.train.x), data.train.y
    gen = torch.Generator().manual_seed(seed)
    parts = shard_iid(len(y), n_clients, generator=gen) if iid else \
        shard_non_iid(y, n_clients, shards_per_client=shards_per_client, generator=gen)
    clients = [(x[idx].to(device), y[idx].to(device)) for idx in parts]
    data = data.to(device)
    model = SpikingMLP(config, seed=seed, device=device)
    acc = [accuracy(model, data.test.x, data.test.y)]
    for _ in progress_bar(range(rounds), disable=not progress, desc="FedAvg rounds", leave=False):
        fedavg_round(model, clients, params=params, generator=gen)
        acc.append(accuracy(model, data.test.x, data.test.y))
    return {"acc": acc, "client_labels": [sorted(set(c[1].tolist())) for c in clients],
            "sizes": [len(c[1]) for c in clients], "model": model}


def run_centralised(*, epochs: int = 20, params: FedAvgParams = FedAvgParams(),
                    config: SpikingMLPConfig = SpikingMLPConfig(), seed: int = 0, progress: bool = True,
                    device: str | torch.device = "cpu") -> dict:
    """The centralised baseline: the same model, SGD, rate and batch on all the training data at once
    (on ``device``, like :func:`run_fedavg`)."""
    from ..data import load_digits_split

    data = load_digits_split(seed).to(device)
    model = SpikingMLP(config, seed=seed, device=device)
    gen = torch.Generator().manual_seed(seed)
    acc = [accuracy(model, data.test.x, data.test.y)]
    train_classifier(model, data.train.x, data.train.y, epochs=epochs, lr=params.lr,
                     batch_size=params.local_batch_size or len(data.train.y), generator=gen, optimizer="sgd",
                     on_epoch=lambda _e: acc.append(accuracy(model, data.test.x, data.test.y)), progress=progress)
    return {"acc": acc, "model": model}


def plot_fedavg(curves: dict, *, centralised: list[float] | None = None):
    """Test accuracy per round (FedAvg runs by name) against the centralised curve per epoch."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, acc in curves.items():
        ax.plot(range(len(acc)), acc, marker=".", label=label)
    if centralised is not None:
        ax.plot(range(len(centralised)), centralised, color="k", linestyle="--", label="centralised (per epoch)")
    ax.set_xlabel("communication round (one local epoch each)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
