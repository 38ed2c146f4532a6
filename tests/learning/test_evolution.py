"""Genetic algorithm with elitism: the elites are kept, the best never gets worse, the seed fixes it all."""
import pytest
import torch

from snnlab.learning.evolution import GAParams, evolve, ga_step, population_fitness, run_evolution, unflatten
from snnlab.models.mlp import SpikingMLP, SpikingMLPConfig


def sphere(target):
    return lambda pop: -((pop - target) ** 2).sum(dim=1)


def test_ga_step_copies_elites_unchanged_best_first():
    gen = torch.Generator().manual_seed(0)
    pop = torch.randn(10, 4, generator=gen)
    fit = torch.randn(10, generator=gen)
    new = ga_step(pop, fit, params=GAParams(population=10, elites=3, truncation=4, sigma=0.1), generator=gen)
    order = torch.argsort(fit, descending=True)
    assert torch.equal(new[:3], pop[order[:3]])
    # children are mutations of the truncation set: each is within a few sigma of one of the top 4
    dist = torch.cdist(new[3:], pop[order[:4]]).min(dim=1).values
    assert (dist < 0.1 * 8).all() and (dist > 0).all()


def test_evolve_with_elitism_never_loses_its_best_fitness():
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(20, generator=gen)
    params = GAParams(population=16, elites=1, truncation=4, sigma=0.3)
    out = evolve(sphere(target), torch.randn(16, 20, generator=gen), generations=80, params=params, generator=gen,
                 progress=False)
    best = torch.tensor(out["best_fitness"])
    assert (best[1:] >= best[:-1]).all()
    assert best[-1] > best[0] + 5.0          # and it does improve


def test_evolve_without_elitism_can_lose_its_best():
    # the control: with E = 0 and large mutations the best of a generation is sometimes worse
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(20, generator=gen)
    params = GAParams(population=16, elites=0, truncation=4, sigma=0.3)
    out = evolve(sphere(target), torch.randn(16, 20, generator=gen), generations=80, params=params, generator=gen,
                 progress=False)
    best = torch.tensor(out["best_fitness"])
    assert (best[1:] < best[:-1]).any()


def test_run_evolution_spiking_network_elitism_and_reproducibility():
    cfg = SpikingMLPConfig(n_hidden=8, n_steps=3)
    kwargs = dict(generations=15, params=GAParams(population=12, elites=2, truncation=4, sigma=0.1), config=cfg,
                  n_eval=100, seed=3, progress=False)
    a = run_evolution(**kwargs)
    b = run_evolution(**kwargs)
    assert a["best_fitness"] == b["best_fitness"] and torch.equal(a["best"], b["best"])
    best = torch.tensor(a["best_fitness"])
    assert (best[1:] >= best[:-1]).all() and best[-1] > best[0]
    c = run_evolution(**{**kwargs, "seed": 4})
    assert c["best_fitness"] != a["best_fitness"]


def test_population_fitness_equals_each_network_alone():
    cfg = SpikingMLPConfig(n_in=64, n_hidden=6, n_out=10, n_steps=3)
    nets = [SpikingMLP(cfg, seed=s) for s in range(4)]
    theta = torch.stack([torch.cat([p.detach().flatten() for p in n.parameters()]) for n in nets])
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(30, 64, generator=gen) * 2, torch.randint(10, (30,), generator=gen)
    fit = population_fitness(theta, x, y, config=cfg)
    acc = population_fitness(theta, x, y, config=cfg, measure="accuracy")
    for i, n in enumerate(nets):
        logp = torch.log_softmax(n(x).detach(), dim=-1)
        assert fit[i].item() == pytest.approx(logp[torch.arange(30), y].mean().item(), abs=1e-5)
        assert acc[i].item() == pytest.approx((n(x).argmax(-1) == y).float().mean().item())
    assert unflatten(theta, cfg)["w1"].shape == (4, 6, 64)


def test_ga_params_validate():
    with pytest.raises(ValueError, match="elites"):
        GAParams(population=4, elites=4)
    with pytest.raises(ValueError, match="truncation"):
        GAParams(population=4, truncation=5)
    with pytest.raises(ValueError, match="sigma"):
        GAParams(sigma=0.0)
    with pytest.raises(ValueError, match="fitness must be finite"):
        ga_step(torch.zeros(2, 3), torch.tensor([0.0, float("nan")]), params=GAParams(population=2, elites=1,
                truncation=1), generator=torch.Generator())


def test_run_evolution_on_cpu_device_equals_the_default(assert_same):
    kw = dict(generations=2, params=GAParams(population=6, elites=1, truncation=3), n_eval=40, seed=0,
              progress=False)
    assert_same(run_evolution(device="cpu", **kw), run_evolution(**kw))
