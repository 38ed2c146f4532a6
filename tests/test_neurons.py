"""Tests for snnlab.neurons: the non-leaky one-shot IF neuron, step by step and all steps at once."""
import pytest
import torch

from snnlab.neurons import (
    first_crossing,
    first_crossing_monotone,
    one_shot_if,
    one_shot_if_init,
    one_shot_if_step,
    spikes_from_times,
    value_at,
)


def test_one_shot_if_step_fires_once_and_never_resets():
    state = one_shot_if_init((1,))
    spikes, vs = [], []
    for current in (4.0, 4.0, 4.0, 4.0):
        s, state = one_shot_if_step(torch.tensor([current]), state, threshold=7.0)
        spikes.append(bool(s))
        vs.append(float(state.v))
    assert spikes == [False, True, False, False]    # 8 > 7 at step 1, then never again
    assert vs == [4.0, 8.0, 12.0, 16.0]              # no leak, no reset


def test_one_shot_if_step_needs_strictly_above_threshold():
    s, _ = one_shot_if_step(torch.tensor([7.0]), one_shot_if_init((1,)), threshold=7.0)
    assert not bool(s)


def test_one_shot_if_all_steps_equals_step_loop():
    gen = torch.Generator().manual_seed(0)
    currents = torch.rand(15, 50, generator=gen) * 3
    times, potentials = one_shot_if(currents, threshold=10.0)
    state = one_shot_if_init((50,))
    ref = torch.full((50,), 15)
    for t in range(15):
        s, state = one_shot_if_step(currents[t], state, threshold=10.0)
        ref = torch.where(s, torch.full_like(ref, t), ref)
    assert torch.equal(times, ref)
    assert torch.allclose(potentials[-1], state.v)


def test_first_crossing_hand_values_and_never():
    v = torch.tensor([[0.0, 5.0, 1.0], [2.0, 6.0, 1.0], [9.0, 7.0, 1.0]])   # [T=3, 3 neurons]
    assert first_crossing(v, 4.0).tolist() == [2, 0, 3]
    assert first_crossing_monotone(v, 4.0).tolist() == [2, 0, 3]


def test_first_crossing_general_handles_non_monotone():
    v = torch.tensor([[0.0], [9.0], [1.0]])   # crosses at 1 then drops: still 1
    assert first_crossing(v, 4.0).tolist() == [1]


def test_value_at_zero_for_silent_neurons():
    v = torch.tensor([[1.0, 5.0], [3.0, 6.0]])
    assert value_at(v, torch.tensor([1, 2])).tolist() == [3.0, 0.0]


def test_spikes_from_times_single_and_cumulative():
    times = torch.tensor([1, 3])
    assert spikes_from_times(times, 3).t().tolist() == [[0, 1, 0], [0, 0, 0]]
    assert spikes_from_times(times, 3, cumulative=True).t().tolist() == [[0, 1, 1], [0, 0, 0]]


def test_one_shot_if_rejects_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        one_shot_if(torch.zeros(3, 2), threshold=float("inf"))
