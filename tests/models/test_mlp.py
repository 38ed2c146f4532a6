"""Tests for snnlab.models.mlp: the spiking classifier by hand, population dimensions, its checks."""
import math

import pytest
import torch

from snnlab.models.mlp import SpikingMLP, SpikingMLPConfig, flatten_images, spiking_mlp_forward


def test_spiking_mlp_forward_one_neuron_by_hand():
    """x = 1, W1 = 0.6, W2 = 2, b2 = 0.5, theta = 1, beta = e^{-1/10}: spikes at steps 2 and 4."""
    cfg = SpikingMLPConfig(n_in=1, n_hidden=1, n_out=1, n_steps=4, tau_mem_ms=10.0, dt_ms=1.0)
    beta = math.exp(-0.1)
    v, u, total, spikes = 0.0, None, 0.0, []
    for _ in range(4):
        v = beta * v + 0.6
        s = 1.0 if v >= 1.0 else 0.0
        v -= s
        out = 2.0 * s + 0.5
        u = out if u is None else beta * u + out
        total += u
        spikes.append(s)
    assert spikes == [0.0, 1.0, 0.0, 1.0]
    d = torch.float64
    logits = spiking_mlp_forward(torch.ones(1, 1, dtype=d), torch.tensor([[0.6]], dtype=d), torch.zeros(1, dtype=d),
                                 torch.tensor([[2.0]], dtype=d), torch.tensor([0.5], dtype=d), config=cfg)
    assert logits.shape == (1, 1)
    assert logits.item() == pytest.approx(total / 4, rel=1e-12)


def test_spiking_mlp_forward_with_population_dims_matches_each_member():
    cfg = SpikingMLPConfig(n_in=6, n_hidden=5, n_out=3, n_steps=4)
    models = [SpikingMLP(cfg, seed=s) for s in range(3)]
    stack = {k: torch.stack([dict(m.named_parameters())[k].detach() for m in models]) for k in ("w1", "b1", "w2", "b2")}
    x = torch.rand(8, 6) * 3
    batched = spiking_mlp_forward(x, stack["w1"], stack["b1"], stack["w2"], stack["b2"], config=cfg)
    for i, m in enumerate(models):
        assert torch.allclose(batched[i], m(x).detach(), atol=1e-6)


def test_spiking_mlp_is_seeded_and_flattens_images():
    cfg = SpikingMLPConfig(n_in=16, n_hidden=4, n_out=3, n_steps=2)
    a, b = SpikingMLP(cfg, seed=1), SpikingMLP(cfg, seed=1)
    images = torch.rand(5, 1, 4, 4)
    assert flatten_images(images).shape == (5, 16)
    assert torch.equal(a(images), b(images)) and a(images).shape == (5, 3)
    with pytest.raises(ValueError, match="16 features"):
        a(torch.rand(5, 15))


@pytest.mark.parametrize("field, value", [("n_hidden", 0), ("n_steps", 0), ("tau_mem_ms", 0.0), ("threshold", -1.0)])
def test_spiking_mlp_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SpikingMLPConfig(**{field: value})


def test_spiking_mlp_on_cpu_device_equals_the_default(assert_same):
    cfg = SpikingMLPConfig(n_hidden=5, n_steps=3)
    assert_same(SpikingMLP(cfg, seed=4, device="cpu"), SpikingMLP(cfg, seed=4))
