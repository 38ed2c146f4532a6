import math

import pytest
import torch

from snnlab import lif


def reference_lif(current, tau, v_th):
    """Straightforward loop over the LIF equations (decay_input, hard reset to 0)."""
    v, vs, spikes = 0.0, [], []
    for x in current:
        h = v + (x - v) / tau
        s = 1.0 if h >= v_th else 0.0
        v = 0.0 if s else h
        vs.append(v)
        spikes.append(s)
    return vs, spikes


@pytest.mark.parametrize("current,tau,v_th", [(1.5, 20.0, 1.0), (3.0, 5.0, 1.0), (1.2, 10.0, 0.5), (0.9, 20.0, 1.0)])
def test_simulate_lif_matches_reference_loop(current, tau, v_th):
    run = lif.simulate_lif(torch.full((120,), current), tau_ms=tau, v_threshold=v_th)
    vs, spikes = reference_lif([current] * 120, tau, v_th)
    assert run.spikes[:, 0].tolist() == spikes
    assert torch.allclose(run.v[:, 0], torch.tensor(vs), atol=1e-5)


def test_first_spike_closed_form_by_hand():
    # tau 20, I 1.5, V_th 1: ln(1/3)/ln(0.95) = 21.42 -> step 22.
    assert lif.first_spike_step(1.5, tau_ms=20.0, v_threshold=1.0) == 22
    assert math.isinf(lif.first_spike_step(1.0, tau_ms=20.0, v_threshold=1.0))
    assert lif.spike_count_closed_form(1.5, 200, tau_ms=20.0) == 9


def test_dt_rescales_tau():
    # tau 20 ms at dt 2 ms is tau 10 steps.
    assert lif.first_spike_step(1.5, tau_ms=20.0, dt_ms=2.0) == lif.first_spike_step(1.5, tau_ms=10.0, dt_ms=1.0)


def test_h_is_pre_reset_potential():
    run = lif.simulate_lif(torch.full((30,), 1.5))
    spiking = run.spikes[:, 0].bool()
    assert (run.h[spiking, 0] >= 1.0).all() and (run.v[spiking, 0] == 0).all()
    assert torch.allclose(run.h[~spiking, 0], run.v[~spiking, 0])


@pytest.mark.parametrize("kwargs,name", [({"tau_ms": 1.0}, "tau_ms"), ({"dt_ms": -1.0}, "dt_ms"),
                                         ({"v_reset": 2.0}, "v_reset")])
def test_simulate_lif_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        lif.simulate_lif(torch.ones(5), **kwargs)


def test_noisy_population_is_seeded():
    a = lif.noisy_population(4, 10, mean=1.0, std=0.5, generator=torch.Generator().manual_seed(1))
    b = lif.noisy_population(4, 10, mean=1.0, std=0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (10, 4)
