"""Neuroevolution: a seeded genetic algorithm with elitism over a small spiking network's weights.

The algorithm is the simple mutation-only genetic algorithm of Such et al. (2017, "Deep
Neuroevolution", arXiv:1712.06567): a population of P flat weight vectors theta; each generation

    fitness   f_k = F(theta_k)                                (here: mean log-likelihood on a fixed batch)
    elites    the E best, copied unchanged into the next generation
    parents   the T best (truncation selection)
    children  theta' = theta_parent + sigma eps,  eps ~ N(0, I),  parent uniform among the T best

No gradients and no crossover. Because the elites are copied unchanged and the fitness is
deterministic (a fixed evaluation batch, a deterministic network), the best fitness of the population
can never decrease from one generation to the next when E >= 1: the tests check this.
Every random number comes from one ``torch.Generator``: same seed, same run.
The whole population is evaluated in one batched forward pass of
:func:`snnlab.models.mlp.spiking_mlp_forward` (population dimension in front of the weights).
Used by ``notebooks/07_structural_continual_federated_evolution.ipynb``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from ..utils import progress as progress_bar

from ..models.mlp import SpikingMLPConfig, flatten_images, spiking_mlp_forward
from ..utils import check_choice, check_float, check_int

__all__ = [
    "GAParams",
    "ga_step",
    "evolve",
    "param_shapes",
    "unflatten",
    "population_fitness",
    "run_evolution",
]


@dataclass(frozen=True)
class GAParams:
    """Genetic-algorithm hyper-parameters (Such et al. 2017 notation).

    Attributes:
        population: P, individuals per generation, >= 2.
        elites: E, best individuals copied unchanged, 0 <= E < P (0 disables elitism).
        truncation: T, how many of the best may be parents, 1 <= T <= P.
        sigma: mutation standard deviation, > 0.
    """

    population: int = 32
    elites: int = 2
    truncation: int = 4
    sigma: float = 0.1

    def __post_init__(self):
        check_int("population", self.population, minimum=2)
        check_int("elites", self.elites, minimum=0, maximum=self.population - 1)
        check_int("truncation", self.truncation, minimum=1, maximum=self.population)
        check_float("sigma", self.sigma, minimum=0.0, strict_minimum=True)


def ga_step(population: torch.Tensor, fitness: torch.Tensor, *, params: GAParams,
            generator: torch.Generator) -> torch.Tensor:
    """One generation: elites first (unchanged, best first), then mutated children of the T best.

    Args:
        population: ``[P, D]`` flat parameter vectors theta.
        fitness: ``[P]`` their fitness f (higher is better).
        params: :class:`GAParams`.  generator: draws parents and mutations (on the CPU; they are
            moved to the population's device, so every device breeds the same children).
    Returns:
        the next population ``[P, D]``.
    """
    if population.dim() != 2 or population.shape[0] != params.population:
        raise ValueError(f"population must be [{params.population}, D], got {tuple(population.shape)}")
    if fitness.shape != (params.population,):
        raise ValueError(f"fitness must be [{params.population}], got {tuple(fitness.shape)}")
    if not torch.isfinite(fitness).all():
        raise ValueError("fitness must be finite for every individual")
    order = torch.argsort(fitness, descending=True, stable=True)
    elites = population[order[:params.elites]]
    n_children = params.population - params.elites
    parents = order[torch.randint(params.truncation, (n_children,), generator=generator).to(order.device)]
    noise = torch.randn(n_children, population.shape[1], generator=generator, dtype=population.dtype
                        ).to(population.device)
    children = population[parents] + params.sigma * noise
    return torch.cat([elites, children], dim=0)


def evolve(fitness_fn: Callable[[torch.Tensor], torch.Tensor], initial: torch.Tensor, *, generations: int,
           params: GAParams, generator: torch.Generator, progress: bool = True) -> dict:
    """Run :func:`ga_step` for ``generations``; returns the history and the best individual.

    ``fitness_fn(population [P, D]) -> [P]`` must be deterministic for elitism to keep its promise.
    Returns ``{"best_fitness" [G+1], "mean_fitness" [G+1], "best" [D], "population" [P, D]}``
    (entry g is generation g, 0 the initial population).
    """
    check_int("generations", generations, minimum=0)
    population = initial
    fitness = fitness_fn(population)
    best, mean = [float(fitness.max())], [float(fitness.mean())]
    for _ in progress_bar(range(generations), disable=not progress, desc="GA generations", leave=False):
        population = ga_step(population, fitness, params=params, generator=generator)
        fitness = fitness_fn(population)
        best.append(float(fitness.max()))
        mean.append(float(fitness.mean()))
    return {"best_fitness": best, "mean_fitness": mean, "best": population[int(fitness.argmax())].clone(),
            "population": population, "fitness": fitness}


# --------------------------------------------------------------------------- the spiking network
def param_shapes(config: SpikingMLPConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of (w1, b1, w2, b2) of :func:`~snnlab.models.mlp.spiking_mlp_forward`."""
    return {"w1": (config.n_hidden, config.n_in), "b1": (config.n_hidden,),
            "w2": (config.n_out, config.n_hidden), "b2": (config.n_out,)}


def unflatten(theta: torch.Tensor, config: SpikingMLPConfig) -> dict[str, torch.Tensor]:
    """``[P, D]`` flat vectors -> ``{name: [P, *shape]}`` views (D = total number of parameters)."""
    shapes = param_shapes(config)
    sizes = [math.prod(s) for s in shapes.values()]
    if theta.shape[-1] != sum(sizes):
        raise ValueError(f"theta must have {sum(sizes)} entries per individual, got {theta.shape[-1]}")
    parts = theta.split(sizes, dim=-1)
    return {k: p.reshape(*theta.shape[:-1], *s) for (k, s), p in zip(shapes.items(), parts)}


@torch.no_grad()
def population_fitness(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, config: SpikingMLPConfig,
                       measure: str = "log_likelihood") -> torch.Tensor:
    """Fitness of every individual on ``(x, y)`` in one batched forward: ``[P]``.

    ``measure``: ``"log_likelihood"`` (mean log p(y|x), smooth) or ``"accuracy"``.
    """
    check_choice("measure", measure, ("log_likelihood", "accuracy"))
    p = unflatten(theta, config)
    logits = spiking_mlp_forward(flatten_images(x), p["w1"], p["b1"], p["w2"], p["b2"], config=config)  # [P, B, C]
    if measure == "accuracy":
        return (logits.argmax(-1) == y).float().mean(-1)
    return torch.log_softmax(logits, dim=-1).gather(-1, y.expand(logits.shape[0], -1)[..., None])[..., 0].mean(-1)


def run_evolution(*, generations: int = 100, params: GAParams = GAParams(),
                  config: SpikingMLPConfig = SpikingMLPConfig(n_hidden=16, n_steps=6), n_eval: int = 200,
                  init_scale: float = 1.0, seed: int = 0, progress: bool = True,
                  device: str | torch.device = "cpu") -> dict:
    """Evolve the spiking MLP on the digits: fitness = mean log-likelihood on ``n_eval`` training images.

    Initial individuals: w1 ~ N(0, (2 init_scale)^2 / n_in), w2 ~ N(0, init_scale^2 / n_hidden), zero
    biases. Returns :func:`evolve`'s dict plus ``train_acc``/``test_acc`` of the best individual
    per generation recorded at the end, and ``"test_acc"`` of the final best. The population and the
    data live on ``device``; every random number is drawn on the CPU from ``seed`` and moved.
    """
    from ..data import load_digits_split

    check_int("n_eval", n_eval, minimum=1)
    check_float("init_scale", init_scale, minimum=0.0, strict_minimum=True)
    data = load_digits_split(seed).to(device)
    x, y = flatten_images(data.train.x)[:n_eval], data.train.y[:n_eval]
    gen = torch.Generator().manual_seed(seed)
    shapes = param_shapes(config)
    init = {"w1": torch.randn(params.population, *shapes["w1"], generator=gen) * (2 * init_scale / math.sqrt(config.n_in)),
            "b1": torch.zeros(params.population, *shapes["b1"]),
            "w2": torch.randn(params.population, *shapes["w2"], generator=gen) * (init_scale / math.sqrt(config.n_hidden)),
            "b2": torch.zeros(params.population, *shapes["b2"])}
    theta0 = torch.cat([v.reshape(params.population, -1) for v in init.values()], dim=1).to(device)
    out = evolve(lambda th: population_fitness(th, x, y, config=config), theta0, generations=generations,
                 params=params, generator=gen, progress=progress)
    best = out["best"][None]
    out["train_acc"] = float(population_fitness(best, x, y, config=config, measure="accuracy")[0])
    out["test_acc"] = float(population_fitness(best, data.test.x, data.test.y, config=config, measure="accuracy")[0])
    out["n_params"] = theta0.shape[1]
    return out


def plot_evolution(result: dict):
    """Best and mean fitness (mean log-likelihood) per generation."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(result["best_fitness"], color="tab:cyan", label="best (elite)")
    ax.plot(result["mean_fitness"], color="tab:cyan", linestyle="--", alpha=0.8, label="population mean")
    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.set_ylabel("fitness: mean log p(y|x) (nats)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
