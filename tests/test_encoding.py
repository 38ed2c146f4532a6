"""Tests for snnlab.encoding: DoG kernels, thresholding, local normalisation, latency and rate codes."""
import math

import pytest
import torch

from snnlab.encoding import (
    MOZAFARI_DOG,
    LatencyCodeParams,
    dog_bank,
    dog_kernel,
    dog_responses,
    encode_latency,
    first_spike_times,
    intensity_to_latency,
    local_normalise,
    poisson_spikes,
    spike_waves,
)


@pytest.mark.parametrize("size, s1, s2", MOZAFARI_DOG)
def test_dog_kernel_zero_mean_unit_max_symmetric(size, s1, s2):
    k = dog_kernel(size, s1, s2)
    assert k.shape == (size, size)
    assert abs(float(k.sum())) < 1e-5          # zero mean: a uniform image gives no response
    assert float(k.max()) == pytest.approx(1.0)
    assert torch.allclose(k, k.flip(0)) and torch.allclose(k, k.t())


def test_dog_kernel_on_and_off_centre_signs():
    on, off = dog_kernel(7, 7 / 9, 14 / 9), dog_kernel(7, 14 / 9, 7 / 9)
    assert on[3, 3] == on.max() and on[3, 3] > 0        # on-centre: peak in the middle
    assert off[3, 3] == off.min() and off[3, 3] < 0     # off-centre: a dip in the middle


def test_dog_kernel_matches_closed_form():
    size, s1, s2 = 3, 3 / 9, 6 / 9
    g = torch.zeros(3, 3, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            d2 = (i - 1) ** 2 + (j - 1) ** 2
            g[i, j] = (math.exp(-d2 / (2 * s1**2)) / s1**2 - math.exp(-d2 / (2 * s2**2)) / s2**2) / (2 * math.pi)
    g = g - g.mean()
    g = g / g.max()
    assert torch.allclose(dog_kernel(size, s1, s2), g.float(), atol=1e-6)


def test_dog_bank_pads_small_kernels_centred():
    bank = dog_bank()
    assert bank.shape == (6, 1, 13, 13)
    small = dog_kernel(3, 3 / 9, 6 / 9)
    assert torch.equal(bank[0, 0, 5:8, 5:8], small)
    assert float(bank[0, 0].abs().sum() - small.abs().sum()) == pytest.approx(0.0, abs=1e-6)


def test_dog_responses_single_bright_pixel_thresholded():
    img = torch.zeros(1, 1, 15, 15)
    img[0, 0, 7, 7] = 1.0
    r = dog_responses(img, specs=((3, 3 / 9, 6 / 9),), threshold=50.0)
    k = dog_kernel(3, 3 / 9, 6 / 9)
    # the response to a delta is the (flipped = same, symmetric) kernel scaled by 255
    assert r[0, 0, 7, 7] == pytest.approx(255.0 * float(k[1, 1]))
    expected_neighbour = 255.0 * float(k[0, 1])
    assert r[0, 0, 6, 7] == (expected_neighbour if expected_neighbour >= 50 else 0.0)
    assert (r >= 0).all() and int((r > 0).sum()) == int((255.0 * k >= 50).sum())


def test_local_normalise_constant_map_interior_and_corner():
    x = torch.full((1, 1, 20, 20), 3.0)
    y = local_normalise(x, radius=2)
    assert y[0, 0, 10, 10] == pytest.approx(1.0, rel=1e-5)
    # the corner window covers (r+1)^2 of the (2r+1)^2 cells: y = 25 / 9
    assert y[0, 0, 0, 0] == pytest.approx(25 / 9, rel=1e-5)


def test_intensity_to_latency_equal_bins_strongest_first():
    x = torch.arange(1, 31, dtype=torch.float32)[torch.randperm(30, generator=torch.Generator().manual_seed(0))]
    t = intensity_to_latency(x[None], n_steps=3)[0]
    # 30 non-zero values, T = 3 -> 10 per step: 21..30 at step 0, 11..20 at step 1, 1..10 at step 2
    assert torch.equal(t, torch.div(30 - x.long(), 10, rounding_mode="floor"))


def test_intensity_to_latency_remainder_and_zeros_stay_silent():
    x = torch.tensor([[5.0, 0.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    t = intensity_to_latency(x, n_steps=2)   # nnz 5 -> 2 per step, the weakest (1.0) is silent
    assert t.tolist() == [[0, 2, 0, 1, 1, 2, 2]]


def test_intensity_to_latency_batched_equals_one_by_one():
    x = torch.rand(4, 6, 9, 9) * (torch.rand(4, 6, 9, 9) > 0.5)
    batched = intensity_to_latency(x, 15)
    for i in range(4):
        assert torch.equal(batched[i], intensity_to_latency(x[i:i + 1], 15)[0])


def test_spike_waves_cumulative_and_inverse():
    times = torch.tensor([[0, 2], [3, 1]])   # 3 = never for T = 3
    w = spike_waves(times, 3)
    assert w.shape == (3, 2, 2)
    assert w[:, 0, 1].tolist() == [0, 0, 1] and w[:, 1, 0].tolist() == [0, 0, 0]
    assert torch.equal(first_spike_times(w), times)


def test_encode_latency_any_image_size_and_range():
    img = torch.rand(2, 1, 20, 24)
    t = encode_latency(img)
    assert t.shape == (2, 6, 20, 24) and t.dtype == torch.int64
    assert int(t.min()) >= 0 and int(t.max()) <= 15
    # every step releases the same number of spikes
    counts = torch.stack([(t[0] == s).sum() for s in range(15)])
    assert int(counts.max() - counts.min()) == 0


def test_poisson_spikes_seeded_and_rate():
    rates = torch.full((1000,), 100.0)
    a = poisson_spikes(rates, 50, dt_ms=1.0, generator=torch.Generator().manual_seed(1))
    b = poisson_spikes(rates, 50, dt_ms=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (50, 1000) and a.dtype == torch.float32
    assert float(a.mean()) == pytest.approx(0.1, abs=0.01)    # P = rate * dt / 1000 = 0.1
    half = poisson_spikes(rates, 50, dt_ms=0.5, generator=torch.Generator().manual_seed(2))
    assert float(half.mean()) == pytest.approx(0.05, abs=0.01)


def test_poisson_spikes_time_varying_rates_are_the_same_draws():
    """``n_steps=None``: one draw per entry of a rate tensor that carries its own time axis; for a rate
    constant in time this is exactly the ``n_steps`` form (same generator, same row-major draws)."""
    rates = torch.tensor([[0.0, 50.0, 1000.0], [20.0, 0.0, 300.0]])
    together = poisson_spikes(rates, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expanded = poisson_spikes(rates.expand(7, 2, 3), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(together, expanded) and together.dtype == torch.float64
    assert together[:, 0, 0].sum() == 0 and together[:, 0, 2].sum() == 7    # P = 0 and P = 1
    profile = torch.cat([torch.full((20, 4), 1000.0), torch.zeros(30, 4)])  # a stimulus, then silence
    spikes = poisson_spikes(profile, generator=torch.Generator().manual_seed(0))
    assert spikes.shape == (50, 4) and spikes[:20].sum() == 80 and spikes[20:].sum() == 0


def test_poisson_spikes_rejects_rates_above_one_spike_per_step():
    with pytest.raises(ValueError, match="rates_hz"):
        poisson_spikes(2000.0, 3, dt_ms=1.0)
    with pytest.raises(ValueError, match="rates_hz"):
        poisson_spikes(torch.tensor([-1.0, 5.0]), 3)
    with pytest.raises(ValueError, match="dt_ms"):
        poisson_spikes(torch.ones(2), 3, dt_ms=0.0)
    with pytest.raises(ValueError, match="n_steps"):
        poisson_spikes(torch.ones(2), 0)


@pytest.mark.parametrize("field, value", [("threshold", float("nan")), ("norm_radius", -1),
                                          ("n_steps", 0), ("intensity_scale", 0.0)])
def test_latency_code_params_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        LatencyCodeParams(**{field: value})


def test_dog_kernel_rejects_even_size():
    with pytest.raises(ValueError, match="size"):
        dog_kernel(4, 1.0, 2.0)
