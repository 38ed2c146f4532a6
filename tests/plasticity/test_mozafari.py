"""Tests for snnlab.plasticity.mozafari on crafted maps and patches (values computed by hand)."""
import pytest
import torch

from snnlab.utils import limit_threads
from snnlab.plasticity.mozafari import (
    LearningRateSchedule,
    RSTDPParams,
    STDPBounds,
    adapted_rates,
    apply_update,
    compete,
    conv_stdp_update,
    k_winners,
    pointwise_inhibition,
    rstdp_rates,
    scheduled_rates,
    stdp_delta,
)

T = 15


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensor operations: one torch thread (two spinning threads on a shared 2-core machine
    made these tests ~10x slower)."""
    with limit_threads(1):
        yield


def test_scheduled_rates_double_every_500_up_to_cap():
    s = LearningRateSchedule()
    assert scheduled_rates(1, s) == pytest.approx((0.004, -0.003))
    assert scheduled_rates(499, s) == pytest.approx((0.004, -0.003))
    assert scheduled_rates(500, s) == pytest.approx((0.008, -0.006))
    assert scheduled_rates(2500, s) == pytest.approx((0.128, -0.096))
    assert scheduled_rates(3000, s) == pytest.approx((0.15, -0.1125))      # 0.256 capped at 0.15
    assert scheduled_rates(10**6, s) == pytest.approx((0.15, -0.1125))


def test_adapted_rates_scale_reward_by_miss_and_punishment_by_hit():
    p = RSTDPParams()
    r = adapted_rates(p, 0.7, 0.2)
    assert r.reward_plus == pytest.approx(0.004 * 0.2) and r.reward_minus == pytest.approx(-0.003 * 0.2)
    assert r.punish_plus == pytest.approx(-0.004 * 0.7) and r.punish_minus == pytest.approx(0.0005 * 0.7)
    fixed = adapted_rates(RSTDPParams(adaptive=False), 0.7, 0.2)
    assert tuple(fixed) == (0.004, -0.003, -0.004, 0.0005)
    assert rstdp_rates(True, r) == (r.reward_plus, r.reward_minus)
    assert rstdp_rates(False, r) == (r.punish_plus, r.punish_minus)
    with pytest.raises(ValueError, match="hit_fraction"):
        adapted_rates(p, 0.8, 0.5)


def test_pointwise_inhibition_earliest_then_largest_potential():
    times = torch.tensor([[[2, 5]], [[1, T]], [[1, T]]])        # [F=3, H=1, W=2]
    values = torch.tensor([[[20.0, 11.0]], [[16.0, 0.0]], [[18.0, 0.0]]])
    t, v = pointwise_inhibition(times, values, T)
    # position 0: features 1 and 2 fire first (t=1), feature 2 has the larger potential
    assert t[:, 0, 0].tolist() == [T, T, 1] and v[:, 0, 0].tolist() == [0.0, 0.0, 18.0]
    # position 1: only feature 0 fires, it survives
    assert t[:, 0, 1].tolist() == [5, T, T] and v[:, 0, 1].tolist() == [11.0, 0.0, 0.0]


def test_pointwise_inhibition_silent_position_stays_silent():
    times = torch.full((2, 2, 2), T)
    t, v = pointwise_inhibition(times, torch.zeros(2, 2, 2), T)
    assert (t == T).all() and (v == 0).all()


def _maps(entries, shape=(3, 6, 6)):
    times = torch.full(shape, T)
    values = torch.zeros(shape)
    for (f, y, x), (t, v) in entries.items():
        times[f, y, x] = t
        values[f, y, x] = v
    return times, values


def test_k_winners_order_feature_and_radius_inhibition():
    times, values = _maps({
        (0, 2, 2): (0, 20.0),   # earliest: first winner
        (0, 5, 5): (0, 30.0),   # as early and stronger potential... but see below
        (1, 3, 3): (0, 25.0),   # inside radius 1 of (5,5)? no: of (2,2)? |3-2|=1 -> inhibited once (2,2) wins
        (2, 0, 5): (1, 40.0),   # later step: ranked after every t=0 neuron
        (1, 5, 0): (2, 50.0),
    })
    winners = k_winners(times, values, k=5, radius=1, n_steps=T)
    # t=0 group ranked by potential: (0,5,5) 30 > (1,3,3) 25 > (0,2,2) 20.
    # (0,5,5) wins; feature 0 inhibited -> (0,2,2) out. (1,3,3) wins next (not within 1 of (5,5)).
    # Then (2,0,5) at t=1, then (1,5,0) is feature 1 -> inhibited. Three winners in all.
    assert winners == [(0, 5, 5), (1, 3, 3), (2, 0, 5)]


def test_k_winners_radius_zone_covers_all_features():
    times, values = _maps({(0, 2, 2): (0, 20.0), (1, 3, 3): (0, 19.0), (2, 4, 4): (0, 18.0)})
    assert k_winners(times, values, k=3, radius=1, n_steps=T) == [(0, 2, 2), (2, 4, 4)]
    assert k_winners(times, values, k=3, radius=0, n_steps=T) == [(0, 2, 2), (1, 3, 3), (2, 4, 4)]
    assert k_winners(times, values, k=1, radius=0, n_steps=T) == [(0, 2, 2)]


def test_k_winners_earlier_beats_larger_potential():
    times, values = _maps({(0, 0, 0): (3, 100.0), (1, 5, 5): (2, 10.0)})
    assert k_winners(times, values, k=1, radius=0, n_steps=T) == [(1, 5, 5)]


def test_k_winners_empty_when_nothing_fires():
    times, values = _maps({})
    assert k_winners(times, values, k=5, radius=3, n_steps=T) == []


def _slow_competition(times, values, k, radius, n_steps, pointwise):
    """Plain loops over every neuron: the paper's competition written out, no tensor tricks."""
    n_f, h, w = times.shape
    alive = [(f, y, x) for f in range(n_f) for y in range(h) for x in range(w) if times[f, y, x] < n_steps]
    better = lambda a, b: (-times[a].item(), values[a].item()) > (-times[b].item(), values[b].item())  # noqa: E731
    if pointwise:
        kept = []
        for y in range(h):
            for x in range(w):
                best = None
                for f in range(n_f):                      # lowest feature first: keeps exact ties
                    if (f, y, x) in alive and (best is None or better((f, y, x), best)):
                        best = (f, y, x)
                if best is not None:
                    kept.append(best)
        alive = sorted(kept)
    winners = []
    while alive and len(winners) < k:
        best = alive[0]
        for n in alive[1:]:                               # flat-index order: exact ties keep the first
            if better(n, best):
                best = n
        winners.append(best)
        f0, y0, x0 = best
        alive = [(f, y, x) for f, y, x in alive
                 if f != f0 and not (abs(y - y0) <= radius and abs(x - x0) <= radius)]
    return winners


@pytest.mark.parametrize("pointwise", [True, False])
def test_compete_equals_the_competition_written_out(pointwise):
    gen = torch.Generator().manual_seed(0)
    for trial in range(40):
        # few distinct times and integer potentials: exact ties everywhere
        times = torch.randint(0, 4, (5, 6, 6), generator=gen)
        times[torch.rand(5, 6, 6, generator=gen) < 0.5] = T
        values = torch.randint(0, 3, (5, 6, 6), generator=gen).float() + 10.0
        k, radius = (1, 3, 8)[trial % 3], trial % 3
        expected = _slow_competition(times, values, k, radius, T, pointwise)
        assert compete(times, values, k=k, radius=radius, n_steps=T, pointwise=pointwise) == expected
        if pointwise:
            t_inh, v_inh = pointwise_inhibition(times, values, T)
            assert k_winners(t_inh, v_inh, k=k, radius=radius, n_steps=T) == expected
        else:
            assert k_winners(times, values, k=k, radius=radius, n_steps=T) == expected


def test_stdp_delta_crafted_patch():
    w = torch.full((2, 2), 0.5)
    pre = torch.tensor([[0, 3], [5, T]])          # before, same step, after, never
    dw = stdp_delta(w, pre, 3, a_plus=0.004, a_minus=-0.003)
    # a w (1 - w) with w (1 - w) = 0.25
    assert torch.allclose(dw, torch.tensor([[0.001, 0.001], [-0.00075, -0.00075]]))


def test_anti_stdp_depresses_causal_inputs():
    w = torch.tensor([0.2, 0.9])
    pre = torch.tensor([1, T])
    p = RSTDPParams()
    a_plus, a_minus = rstdp_rates(False, adapted_rates(p, 1.0, 0.0))
    dw = stdp_delta(w, pre, 14, a_plus=a_plus, a_minus=a_minus)
    assert dw[0] == pytest.approx(-0.004 * 0.2 * 0.8) and dw[1] == pytest.approx(0.0005 * 0.9 * 0.1)


def test_stdp_delta_without_soft_bound_is_the_bare_rate():
    dw = stdp_delta(torch.tensor([0.3]), torch.tensor([0]), 0, a_plus=0.01, a_minus=-0.02,
                    bounds=STDPBounds(soft_bound=False))
    assert dw.tolist() == pytest.approx([0.01])


def test_conv_stdp_update_uses_the_winners_receptive_field():
    w = torch.full((3, 1, 2, 2), 0.5)
    pre = torch.tensor([[[0, 1, 9], [4, 2, 9], [9, 9, 9]]])        # [C=1, 3, 3], 9 = never... T=15
    dw = conv_stdp_update(w, pre, [(1, 1, 1)], [3], a_plus=0.004, a_minus=-0.003)
    # window rows 1..2, cols 1..2: [[2, 9], [9, 9]] -> only the first input spiked by step 3
    assert torch.allclose(dw[1, 0], torch.tensor([[0.001, -0.00075], [-0.00075, -0.00075]]))
    assert (dw[0] == 0).all() and (dw[2] == 0).all()
    with pytest.raises(ValueError, match="feature 1"):
        conv_stdp_update(w, pre, [(1, 0, 0), (1, 1, 1)], [3, 3], a_plus=0.004, a_minus=-0.003)


def test_soft_bound_keeps_weights_inside_bounds():
    w = torch.tensor([0.01, 0.5, 0.99])
    for _ in range(2000):
        w = apply_update(w, stdp_delta(w, torch.zeros(3, dtype=torch.long), 0, a_plus=0.15, a_minus=-0.11))
    assert (w <= 1).all() and (w > 0.9).all()


@pytest.mark.parametrize("cls, field, value", [
    (LearningRateSchedule, "every", 0), (LearningRateSchedule, "a_plus", -1.0),
    (STDPBounds, "w_max", -1.0), (RSTDPParams, "block", 0), (RSTDPParams, "initial_hit", 2.0)])
def test_parameters_reject_bad_values(cls, field, value):
    with pytest.raises(ValueError, match=field):
        cls(**{field: value})
