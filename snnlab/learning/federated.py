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

Two other aggregation rules run on the same clients, the same split and the same local training:

**Secure aggregation** (Bonawitz, Ivanov, Kreuter, Marcedone, McMahan, Patel, Ramage, Segal & Seth
2017, "Practical secure aggregation for privacy-preserving machine learning", ACM CCS, pp. 1175-1191,
doi:10.1145/3133956.3133982), the honest-but-curious core of the protocol without dropouts. Client k
sends its weighted update u_k = (n_k / n_S) (w^k_{t+1} - w_t), clipped to [-c, c] and quantised to
integers in fixed point with step s (the scale),

    q_k = round(clip(u_k, -c, c) / s)  in  [-Q, Q],  Q = round(c / s),   |q_k s - clip(u_k)| <= s / 2,

and represented modulo R = 2^b (two's complement: q mod R). Every pair of clients i < j shares a
mask vector m_ij, uniform on {0, ..., R - 1}; client i adds it and client j subtracts it:

    y_i = q_i + sum_{j > i} m_ij - sum_{j < i} m_ji   (mod R).

Each y_i alone is uniform on Z_R whatever q_i is (a one-time pad), so it says nothing about the
update; in the sum every mask appears once with + and once with -, so sum_i y_i = sum_i q_i (mod R)
exactly. The server decodes the sum as a signed integer and multiplies by s. Overflow is impossible
when the modulus exceeds the range of the sum: |sum_i q_i| <= K Q, so R = 2^b > 2 K Q (checked; a
ValueError names ``bits`` otherwise). The decoded sum differs from the plain sum of the u_k by at most
K s / 2 per coordinate (plus clipping, reported when it happens). In the real protocol each pair
agrees on the seed of m_ij by a Diffie-Hellman key agreement and expands it with a PRG, and clients
that drop out are handled by secret-sharing their keys (Shamir); here the pair's seed is derived from
the run's seed (:func:`snnlab.utils.derive_seed` with the round and the pair), no cryptography is
done, and dropouts are out of scope (every selected client must report, or the masks do not cancel).
Masks are fresh in every round: reusing them would let the server difference two rounds.

**signSGD with majority vote** (Bernstein, Wang, Azizzadenesheli & Anandkumar 2018, "signSGD:
compressed optimisation for non-convex problems", ICML, PMLR 80:560, Algorithm 3; Bernstein, Zhao,
Azizzadenesheli & Anandkumar 2019, "signSGD with majority vote is communication efficient and fault
tolerant", ICLR): each client sends one bit per parameter, the sign of its update; the server
broadcasts the elementwise majority and every client takes a step of fixed size eta:

    w_{t+1} = w_t + eta sign( sum_k sign(w^k_{t+1} - w_t) ),    sign(0) = 0 (a tie moves nothing).

The update sent is the local change w^k_{t+1} - w_t, which for one full-batch local step is
-lr g_k, so the rule is the papers' w - eta sign(sum_k sign(g_k)) (tested). The vote is one client,
one vote (not weighted by n_k).
Used by ``notebooks/07_structural_continual_federated_evolution.ipynb``.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from ..utils import progress as progress_bar

from ..models.mlp import SpikingMLP, SpikingMLPConfig, flatten_images
from ..utils import check_float, check_int, derived_generator
from .ewc import accuracy, train_classifier

__all__ = [
    "FedAvgParams",
    "shard_iid",
    "shard_non_iid",
    "fedavg_aggregate",
    "client_update",
    "fedavg_round",
    "local_steps",
    "setup_clients",
    "client_deltas",
    "run_fedavg",
    "run_centralised",
    "SecAggParams",
    "quantise",
    "to_ring",
    "from_ring",
    "pairwise_mask",
    "mask_update",
    "secure_sum",
    "secure_aggregate",
    "secagg_round",
    "run_secagg",
    "SignSGDParams",
    "majority_vote",
    "signsgd_round",
    "run_signsgd",
    "plot_federated",
    "plot_masking",
    "METHOD_COLORS",
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


def local_steps(n_examples: int, params: FedAvgParams) -> int:
    """SGD steps one client with ``n_examples`` makes per round: E ceil(n_k / B) (B = 0: one per epoch)."""
    check_int("n_examples", n_examples, minimum=1)
    batch = params.local_batch_size or n_examples
    return params.local_epochs * -(-n_examples // batch)


def setup_clients(n_clients: int, iid: bool, shards_per_client: int, config: SpikingMLPConfig, seed: int,
                  device: str | torch.device = "cpu"):
    """``(clients, data, generator, model)``: the clients' ``(x, y)``, the digits, the generator (after
    the split) and the initial model of a run, as every ``run_*`` function of this module builds them.

    The generator draws the split first, so every method run with the same ``seed``, ``n_clients`` and
    ``iid`` sees the same clients; it then draws the client selection and the batch orders.
    """
    from ..data import load_digits_split

    data = load_digits_split(seed)
    x, y = flatten_images(data.train.x), data.train.y
    gen = torch.Generator().manual_seed(seed)
    parts = shard_iid(len(y), n_clients, generator=gen) if iid else \
        shard_non_iid(y, n_clients, shards_per_client=shards_per_client, generator=gen)
    clients = [(x[idx].to(device), y[idx].to(device)) for idx in parts]
    return clients, data.to(device), gen, SpikingMLP(config, seed=seed, device=device)


def run_fedavg(*, n_clients: int = 10, rounds: int = 20, iid: bool = False, shards_per_client: int = 2,
               params: FedAvgParams = FedAvgParams(), config: SpikingMLPConfig = SpikingMLPConfig(),
               seed: int = 0, progress: bool = True, device: str | torch.device = "cpu") -> dict:
    """FedAvg on the digits split over ``n_clients`` clients; test accuracy after every round.

    Returns ``{"acc": [...rounds + 1], "client_labels": [set of digits per client], "sizes": [n_k],
    "model"}``. The model and every client's data live on ``device``; the shards, the initial weights
    and the batch orders are drawn on the CPU from ``seed``.
    """
    check_int("rounds", rounds, minimum=1)
    clients, data, gen, model = setup_clients(n_clients, iid, shards_per_client, config, seed, device)
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


def plot_fedavg(curves: dict, *, centralised: list[float] | None = None, colors: Mapping[str, str] | None = None):
    """Test accuracy per round (FedAvg runs by name) against the centralised curve per epoch."""
    return plot_federated(curves, colors=colors, centralised=centralised)


# --------------------------------------------------------------------------- secure aggregation
@dataclass(frozen=True)
class SecAggParams:
    """Fixed-point quantisation and the modulus of secure aggregation (Bonawitz et al. 2017).

    Attributes:
        bits: b, the arithmetic is modulo R = 2^b, 2 <= b <= 62 (int64 sums of two residues never overflow).
        clip: c, each coordinate of a client's weighted update is clipped to [-c, c] before quantising.
        scale: s, the quantisation step (value of one integer unit), 0 < s <= c.
    """

    bits: int = 32
    clip: float = 0.5
    scale: float = 2.0 ** -20

    def __post_init__(self):
        check_int("bits", self.bits, minimum=2, maximum=62)
        check_float("clip", self.clip, minimum=0.0, strict_minimum=True)
        check_float("scale", self.scale, minimum=0.0, strict_minimum=True, maximum=self.clip)

    @classmethod
    def for_bits(cls, bits: int, n_clients: int, clip: float) -> SecAggParams:
        """The finest scale that ``bits`` allow for ``n_clients``: Q = floor((2^(b-1) - 1) / K), s = c / Q."""
        check_int("n_clients", n_clients, minimum=1)
        q = ((1 << (check_int("bits", bits, minimum=2, maximum=62) - 1)) - 1) // n_clients
        if q < 1:
            raise ValueError(f"bits={bits}: too few for {n_clients} clients (need 2^(b-1) > K)")
        return cls(bits=bits, clip=clip, scale=clip / q)

    @property
    def q_max(self) -> int:
        """Q = round(c / s), the largest quantised magnitude of one client's coordinate."""
        return int(round(self.clip / self.scale))

    def check_capacity(self, n_clients: int) -> None:
        """Raise unless the modulus exceeds the range of a sum of ``n_clients`` updates: 2^b > 2 K Q."""
        check_int("n_clients", n_clients, minimum=1)
        if 2 * n_clients * self.q_max >= 2 ** self.bits:
            need = (2 * n_clients * self.q_max).bit_length()
            raise ValueError(f"bits={self.bits}: the sum of {n_clients} updates spans 2 K Q + 1 = "
                             f"{2 * n_clients * self.q_max + 1} integers (Q = clip / scale = {self.q_max}), "
                             f"more than the modulus 2^{self.bits} holds; use bits >= {need} or a larger scale")


def quantise(x: torch.Tensor, *, params: SecAggParams) -> torch.Tensor:
    """q = round(clip(x, -c, c) / s) as int64 in [-Q, Q]; |q s - clip(x)| <= s / 2."""
    return torch.round(x.clamp(-params.clip, params.clip) / params.scale).to(torch.int64).clamp(
        -params.q_max, params.q_max)


def to_ring(q: torch.Tensor, bits: int) -> torch.Tensor:
    """q mod 2^b, in {0, ..., 2^b - 1} (int64; negative q wrap around as in two's complement)."""
    return q.to(torch.int64) & ((1 << bits) - 1)


def from_ring(r: torch.Tensor, bits: int) -> torch.Tensor:
    """The signed integer in [-2^(b-1), 2^(b-1)) congruent to r mod 2^b (inverse of :func:`to_ring`)."""
    r = to_ring(r, bits)
    return torch.where(r >= (1 << (bits - 1)), r - (1 << bits), r)


def pairwise_mask(seed: int, round_index: int, i: int, j: int, size: int, bits: int) -> torch.Tensor:
    """m_ij, the mask that clients i < j share in round ``round_index``: ``size`` integers uniform on Z_{2^b}.

    In the protocol the two clients agree on its seed by a Diffie-Hellman key agreement and expand it
    with a PRG; here the seed is :func:`snnlab.utils.derive_seed` ``(seed, "secagg", round, i, j)``.
    Asking with (j, i) gives the same mask.
    """
    i, j = min(i, j), max(i, j)
    if i == j:
        raise ValueError(f"a pairwise mask needs two different clients, got i = j = {i}")
    gen = derived_generator(seed, "secagg", round_index, i, j)
    return torch.randint(0, 1 << bits, (size,), generator=gen, dtype=torch.int64)


def mask_update(r: torch.Tensor, client: int, participants: Sequence[int], *, seed: int, round_index: int,
                bits: int) -> torch.Tensor:
    """y_i = r_i + sum_{j > i} m_ij - sum_{j < i} m_ji (mod 2^b), over the other ``participants``.

    ``r`` is the client's quantised update in the ring (:func:`to_ring`), a flat int64 vector.
    """
    if client not in participants:
        raise ValueError(f"client {client} is not among the participants {list(participants)}")
    y = to_ring(r, bits)
    for j in participants:
        if j == client:
            continue
        m = pairwise_mask(seed, round_index, client, j, r.numel(), bits).to(r.device)
        y = to_ring(y + m if j > client else y - m, bits)
    return y


def secure_sum(masked: Sequence[torch.Tensor], bits: int) -> torch.Tensor:
    """The server's sum of the masked vectors, mod 2^b (each step reduced, so int64 never overflows)."""
    if not masked:
        raise ValueError("secure_sum needs at least one masked vector")
    total = torch.zeros_like(masked[0])
    for y in masked:
        total = to_ring(total + y, bits)
    return total


def secure_aggregate(updates: Sequence[torch.Tensor], *, params: SecAggParams, seed: int,
                     round_index: int = 0) -> torch.Tensor:
    """sum_k u_k of flat float updates through quantise -> mask -> sum mod 2^b -> decode; error <= K s / 2.

    Clients are numbered 0..K-1 in the order given. Raises when 2^b cannot hold the sum (no overflow).
    """
    params.check_capacity(len(updates))
    participants = list(range(len(updates)))
    masked = [mask_update(to_ring(quantise(u, params=params), params.bits), k, participants, seed=seed,
                          round_index=round_index, bits=params.bits) for k, u in enumerate(updates)]
    return from_ring(secure_sum(masked, params.bits), params.bits).to(updates[0].dtype) * params.scale


def _flat(state: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.detach().reshape(-1) for v in state.values()])


def _unflat(vector: torch.Tensor, like: Mapping[str, torch.Tensor]) -> dict:
    out, start = {}, 0
    for k, v in like.items():
        out[k] = vector[start:start + v.numel()].reshape(v.shape).to(v.dtype)
        start += v.numel()
    return out


def client_deltas(global_model, clients, params: FedAvgParams, generator):
    """Select clients and run their local training exactly as :func:`fedavg_round` does.

    Returns ``(selected, start, w0, deltas)``: the selected indices, the global state dict, its flat
    vector w_t and each selected client's flat change w^k_{t+1} - w_t (parameters in state-dict order).
    """
    k = len(clients)
    m = max(1, int(round(params.client_fraction * k)))
    selected = sorted(int(i) for i in torch.randperm(k, generator=generator)[:m])
    start = {n: v.detach().clone() for n, v in global_model.state_dict().items()}
    w0 = _flat(start)
    deltas = [_flat(client_update(global_model, *clients[i], params=params, generator=generator)) - w0
              for i in selected]
    return selected, start, w0, deltas


def secagg_round(global_model: torch.nn.Module, clients: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
                 params: FedAvgParams, secagg: SecAggParams, generator: torch.Generator, seed: int,
                 round_index: int) -> dict:
    """One FedAvg round whose weighted average goes through :func:`secure_aggregate`, in place.

    The clients train exactly as in :func:`fedavg_round` (same generator draws) and send
    u_k = (n_k / n_S)(w^k - w_t); the server sets w_{t+1} = w_t + decode(sum of masked u_k). The
    weights n_k are public here, as in FedAvg (a client hiding n_k would send n_k (w^k - w_t) and n_k
    through the secure sum). Returns ``{"selected", "max_error", "clipped_fraction"}``: the largest
    |secure - plain| over the coordinates and the fraction of clipped coordinates, diagnostics only the
    simulation can compute (the server never sees the plain sum).
    """
    selected, start, w0, deltas = client_deltas(global_model, clients, params, generator)
    sizes = [len(clients[i][1]) for i in selected]
    total = float(sum(sizes))
    updates = [(n / total) * d for n, d in zip(sizes, deltas)]
    summed = secure_aggregate(updates, params=secagg, seed=seed, round_index=round_index)
    plain = sum(updates)
    global_model.load_state_dict(_unflat(w0 + summed, start))
    clipped = sum(int((u.abs() > secagg.clip).sum()) for u in updates) / float(len(updates) * w0.numel())
    return {"selected": selected, "max_error": float((summed - plain).abs().max()), "clipped_fraction": clipped}


def _run(round_fn, name: str, *, n_clients, rounds, iid, shards_per_client, config, seed, progress, device):
    check_int("rounds", rounds, minimum=1)
    clients, data, gen, model = setup_clients(n_clients, iid, shards_per_client, config, seed, device)
    acc, info = [accuracy(model, data.test.x, data.test.y)], []
    for t in progress_bar(range(rounds), disable=not progress, desc=f"{name} rounds", leave=False):
        info.append(round_fn(model, clients, gen, t))
        acc.append(accuracy(model, data.test.x, data.test.y))
    return {"acc": acc, "client_labels": [sorted(set(c[1].tolist())) for c in clients],
            "sizes": [len(c[1]) for c in clients], "model": model, "rounds": info}


def run_secagg(*, n_clients: int = 10, rounds: int = 20, iid: bool = False, shards_per_client: int = 2,
               params: FedAvgParams = FedAvgParams(), secagg: SecAggParams = SecAggParams(),
               config: SpikingMLPConfig = SpikingMLPConfig(), seed: int = 0, progress: bool = True,
               device: str | torch.device = "cpu") -> dict:
    """:func:`run_fedavg` with secure aggregation: same split, same local training, the sum through masks.

    Returns run_fedavg's dict plus ``"rounds"`` (each round's :func:`secagg_round` record).
    """
    secagg.check_capacity(n_clients)
    return _run(lambda model, clients, gen, t: secagg_round(model, clients, params=params, secagg=secagg,
                                                           generator=gen, seed=seed, round_index=t),
                "SecAgg", n_clients=n_clients, rounds=rounds, iid=iid, shards_per_client=shards_per_client,
                config=config, seed=seed, progress=progress, device=device)


# --------------------------------------------------------------------------- signSGD with majority vote
@dataclass(frozen=True)
class SignSGDParams:
    """signSGD with majority vote (Bernstein et al. 2018, 2019).

    Attributes:
        step: eta, the server's step per parameter and round, > 0 (every parameter moves by -eta, 0 or +eta).
    """

    step: float = 0.01

    def __post_init__(self):
        check_float("step", self.step, minimum=0.0, strict_minimum=True)


def majority_vote(signs: torch.Tensor) -> torch.Tensor:
    """sign(sum_k s_k) over the clients' sign vectors ``[K, D]`` -> ``[D]`` in {-1, 0, +1} (0 on a tie)."""
    if signs.dim() != 2:
        raise ValueError(f"signs must be [K, D] (clients, parameters), got {tuple(signs.shape)}")
    return torch.sign(signs.sum(dim=0))


def signsgd_round(global_model: torch.nn.Module, clients: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
                  params: FedAvgParams, sign_params: SignSGDParams, generator: torch.Generator) -> dict:
    """One round of signSGD with majority vote, in place: w <- w + eta sign(sum_k sign(w^k - w_t)).

    Local training as in :func:`fedavg_round` (same generator draws); each client sends one sign per
    parameter. Returns ``{"selected", "tie_fraction"}`` (parameters whose vote was a tie and stayed put).
    """
    selected, start, w0, deltas = client_deltas(global_model, clients, params, generator)
    vote = majority_vote(torch.stack([torch.sign(d) for d in deltas]))
    global_model.load_state_dict(_unflat(w0 + sign_params.step * vote, start))
    return {"selected": selected, "tie_fraction": float((vote == 0).float().mean())}


def run_signsgd(*, n_clients: int = 10, rounds: int = 20, iid: bool = False, shards_per_client: int = 2,
                params: FedAvgParams = FedAvgParams(), sign_params: SignSGDParams = SignSGDParams(),
                config: SpikingMLPConfig = SpikingMLPConfig(), seed: int = 0, progress: bool = True,
                device: str | torch.device = "cpu") -> dict:
    """:func:`run_fedavg` with the majority vote of signs instead of the weighted average (same split)."""
    return _run(lambda model, clients, gen, t: signsgd_round(model, clients, params=params,
                                                            sign_params=sign_params, generator=gen),
                "signSGD", n_clients=n_clients, rounds=rounds, iid=iid, shards_per_client=shards_per_client,
                config=config, seed=seed, progress=progress, device=device)


#: one colour per method, in every figure of notebook 07
METHOD_COLORS = {"FedAvg": "tab:blue", "secure aggregation": "tab:orange", "signSGD, majority vote": "tab:green",
                 "centralised": "k"}


def plot_federated(curves: Mapping[str, Sequence[float]], *, colors: Mapping[str, str] | None = None,
                   styles: Mapping[str, str] | None = None, centralised: Sequence[float] | None = None,
                   ax=None):
    """Test accuracy per round of named runs, each in its colour (``colors``) and line style (``styles``)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
    fig = ax.figure
    colors, styles = colors or {}, styles or {}
    for label, acc in curves.items():
        ax.plot(range(len(acc)), acc, marker=".", color=colors.get(label), linestyle=styles.get(label, "-"),
                label=label)
    if centralised is not None:
        ax.plot(range(len(centralised)), centralised, color=METHOD_COLORS["centralised"], linestyle="--",
                label="centralised SGD (per epoch)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("communication round (centralised: epoch)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    return fig


def plot_masking(update: torch.Tensor, masked: torch.Tensor, decoded_sum: torch.Tensor, plain_sum: torch.Tensor,
                 *, bits: int):
    """What the server sees: one client's masked vector against its update (no structure), the masked
    values' histogram over the modulus (flat), and the decoded sum against the plain sum (the diagonal)."""
    import matplotlib.pyplot as plt

    color = METHOD_COLORS["secure aggregation"]
    u = update.detach().cpu().double().numpy()
    y = masked.detach().cpu().double().numpy() / 2.0 ** bits
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.4))
    axes[0].plot(u, y, ".", color=color, markersize=2, alpha=0.5)
    axes[0].set_xlabel("client 0's update u_0 (weight change)")
    axes[0].set_ylabel("masked value y_0 / 2^b")
    axes[0].set_title("what client 0 sends", fontsize="medium")
    axes[1].hist(y, bins=20, range=(0, 1), density=True, color=color, alpha=0.8)
    axes[1].axhline(1.0, color="k", linestyle=":")
    axes[1].set_xlabel("masked value y_0 / 2^b")
    axes[1].set_ylabel("density (uniform: 1)")
    axes[1].set_title("masked values are uniform", fontsize="medium")
    ps, ds = plain_sum.detach().cpu().double().numpy(), decoded_sum.detach().cpu().double().numpy()
    axes[2].plot(ps, ds, ".", color=color, markersize=3)
    lim = [min(ps.min(), ds.min()), max(ps.max(), ds.max())]
    axes[2].plot(lim, lim, color="k", linestyle=":", linewidth=1)
    axes[2].set_xlabel("plain sum of the updates")
    axes[2].set_ylabel("server's decoded sum")
    for axis in (axes[2].xaxis, axes[2].yaxis, axes[0].xaxis):
        axis.set_major_locator(plt.MaxNLocator(5))
    axes[2].set_title("the masks cancel in the sum", fontsize="medium")
    fig.tight_layout()
    return fig
