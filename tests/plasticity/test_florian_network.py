"""Florian's XOR network (snnlab.experiments.florian_network) against independent derivations.

* A slow reference: plain Python loops over neurons for the LIF dynamics, the kit's one-synapse
  reference rules (``snnlab.plasticity.florian.mstdp_step`` / ``mstdpet_step``, themselves tested
  against closed forms in test_florian.py) applied network by network, and a reward queue written
  here; the batched run must give the same weights and rates.
* The reward sign, the input coding rates and the pattern order from their definitions.
"""
import math

import numpy as np
import pytest
import torch

from snnlab.experiments import florian_network as fn
from snnlab.plasticity import florian as fl


def tiny_config(**kw):
    base = dict(coding="temporal", n_per_input=3, n_hidden=3, frac_inhibitory=1 / 3, rate_hz=200.0, trial_ms=20,
                n_epochs=2, n_test_trials=1, noise_mv=0.0, w_max_mv=12.0, w_init_mv=12.0, threshold_mv=6.0,
                gamma_mstdp=0.5, gamma_mstdpet=4.0)
    base.update(kw)
    return fn.XorConfig(**base)


def slow_reference(cfg, rule, delay, seed):
    """One network, written with scalar loops and the kit's one-synapse rule steps."""
    n_in, n_h, n_steps = cfg.n_inputs, cfg.n_hidden, cfg.trial_ms
    w_ih0, w_ho0 = fn.initial_weights(cfg, [seed])
    w_ih, w_ho = w_ih0[0].double().clone(), w_ho0[0].double().clone()
    sign = [(-1.0 if (j % cfg.n_per_input) < cfg.n_inhibitory_per_input else 1.0) for j in range(n_in)]
    lo_ih = torch.tensor([[-cfg.w_max_mv if s < 0 else 0.0 for s in sign]] * n_h, dtype=torch.float64)
    hi_ih = torch.tensor([[0.0 if s < 0 else cfg.w_max_mv for s in sign]] * n_h, dtype=torch.float64)
    trains = fn.temporal_trains(cfg, [seed])[0]  # [2, n_steps, n_in]
    order = fn.pattern_orders(cfg, [seed])[0]
    gamma = cfg.gamma_mstdp if rule == "mstdp" else cfg.gamma_mstdpet
    params = fl.FlorianParams(a_plus=1.0, a_minus=-1.0, tau_plus_ms=cfg.tau_plus_ms, tau_minus_ms=cfg.tau_minus_ms,
                              tau_z_ms=cfg.tau_z_ms, gamma=gamma, ordering="same-step")
    st_ih = fl.init_state(1, n_in, n_h, rule=rule, dtype=torch.float64)
    st_ho = fl.init_state(1, n_h, 1, rule=rule, dtype=torch.float64)
    decay = math.exp(-1.0 / cfg.tau_m_ms)
    v_h, v_o = [0.0] * n_h, 0.0
    emitted = []  # reward emitted at each learning step

    def trial(p, learn):
        nonlocal v_h, v_o, w_ih, w_ho, st_ih, st_ho
        bits = fn.XOR_PATTERNS[p]
        target = fn.XOR_TARGETS[p]
        count = 0
        for k in range(n_steps):
            x = [float(trains[bits[j // cfg.n_per_input], k, j]) for j in range(n_in)]
            s_h = []
            for i in range(n_h):
                v_h[i] = v_h[i] * decay + sum(float(w_ih[i, j]) * x[j] for j in range(n_in))
                fired = v_h[i] >= cfg.threshold_mv
                s_h.append(1.0 if fired else 0.0)
                if fired:
                    v_h[i] = 0.0
            v_o = v_o * decay + sum(float(w_ho[0, i]) * s_h[i] for i in range(n_h))
            s_o = 1.0 if v_o >= cfg.threshold_mv else 0.0
            if s_o:
                v_o = 0.0
            count += s_o
            if learn:
                if s_o:
                    emitted.append(1.0 if target == 1 else -1.0)
                else:
                    emitted.append(0.0)
                t = len(emitted) - 1
                r = emitted[t - delay] if t - delay >= 0 else 0.0
                pre = torch.tensor([x], dtype=torch.float64)
                hid = torch.tensor([s_h], dtype=torch.float64)
                out = torch.tensor([[s_o]], dtype=torch.float64)
                dw, st_ih = fl.rule_step(rule, pre, hid, st_ih, w_ih, reward=r, params=params)
                w_ih = torch.minimum(torch.maximum(w_ih + dw, lo_ih), hi_ih)
                dw, st_ho = fl.rule_step(rule, hid, out, st_ho, w_ho, reward=r, params=params)
                w_ho = (w_ho + dw).clamp(0.0, cfg.w_max_mv)
        return count / (cfg.trial_ms / 1000.0)

    before = [trial(p, False) for p in range(4)]
    for e in range(cfg.n_epochs):
        for j in range(4):
            trial(int(order[4 * e + j]), True)
    after = [trial(p, False) for p in range(4)]
    return np.array(before), np.array(after), w_ih.numpy(), w_ho[0].numpy()


@pytest.mark.parametrize("delay", [0, 3])
def test_batched_run_matches_slow_reference(delay):
    cfg = tiny_config()
    seeds = [0, 1]
    conds = [fn.Condition("mstdp", delay), fn.Condition("mstdpet", delay)]
    res = fn.run_xor(cfg, conds, seeds)
    moved = 0.0
    for c, cond in enumerate(conds):
        for k, seed in enumerate(seeds):
            before, after, w_ih, w_ho = slow_reference(cfg, cond.rule, delay, seed)
            np.testing.assert_allclose(res["rate_before_hz"][c, k], before, atol=1e-9)
            np.testing.assert_allclose(res["w_ho"][c, k], w_ho, atol=1e-4)
            np.testing.assert_allclose(res["w_ih"][c, k], w_ih, atol=1e-4)
            np.testing.assert_allclose(res["rate_after_hz"][c, k], after, atol=1e-9)
            w0_ih, w0_ho = fn.initial_weights(cfg, [seed])
            moved += float(np.abs(w_ho - w0_ho[0, 0].numpy()).sum() + np.abs(w_ih - w0_ih[0].numpy()).sum())
    assert moved > 0.1, "the tiny networks should learn something, else the comparison is empty"


def test_reward_sign():
    spikes = torch.tensor([1.0, 1.0, 0.0, 0.0])
    targets = torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert fn.xor_reward(spikes, targets).tolist() == [1.0, -1.0, 0.0, 0.0]


def test_rate_coding_probabilities_and_empirical_rate():
    cfg = fn.rate_config()
    bits = torch.tensor(fn.XOR_PATTERNS)
    p = fn.input_probabilities(cfg, bits)
    assert p.shape == (4, 60)
    assert torch.all(p[0] == 0) and torch.all(p[3] == 0.04)
    assert torch.all(p[1, :30] == 0) and torch.all(p[1, 30:] == 0.04)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(20000, 60, generator=gen) < p[1]).float()
    rate_hz = x[:, 30:].mean().item() * 1000.0
    assert abs(rate_hz - 40.0) < 1.0  # 600k Bernoulli draws: std of the rate ~0.25 Hz
    assert x[:, :30].sum() == 0


def test_temporal_coding_same_rate_different_timing():
    cfg = fn.temporal_config()
    trains = fn.temporal_trains(cfg, [3, 4])
    assert trains.shape == (2, 2, 500, cfg.n_per_input * 2)  # 2 bits x n_per_input neurons each
    rates = trains.mean(dim=2) * 1000.0  # Hz per (seed, value, neuron)
    assert torch.all((rates > 20) & (rates < 65)), rates  # 40 Hz, 20 spikes per 500 ms
    assert not torch.equal(trains[0, 0], trains[0, 1])
    assert torch.equal(fn.temporal_trains(cfg, [3])[0], trains[0])  # fixed per seed


def test_input_signs_and_bounds_kept():
    cfg = tiny_config(n_per_input=4, frac_inhibitory=0.5)
    assert fn.input_sign(cfg).tolist() == [-1, -1, 1, 1, -1, -1, 1, 1]
    res = fn.run_xor(cfg, [fn.Condition("mstdp")], [0])
    w = res["w_ih"][0, 0]
    sign = fn.input_sign(cfg).numpy()
    assert np.all(w[:, sign < 0] <= 0) and np.all(w[:, sign > 0] >= 0)
    assert np.all(np.abs(w) <= cfg.w_max_mv + 1e-6) and np.all(res["w_ho"] >= 0)


def test_pattern_orders_are_permutations():
    order = fn.pattern_orders(tiny_config(n_epochs=5), [7])[0].reshape(5, 4)
    for row in order:
        assert sorted(row.tolist()) == [0, 1, 2, 3]


def test_conditions_share_initial_state_and_run_is_reproducible():
    cfg = tiny_config(coding="rate", noise_mv=1.0)
    a = fn.run_xor(cfg, [fn.Condition("mstdp"), fn.Condition("mstdpet", 2)], [0, 5])
    b = fn.run_xor(cfg, [fn.Condition("mstdp"), fn.Condition("mstdpet", 2)], [0, 5])
    np.testing.assert_array_equal(a["w_ho"], b["w_ho"])
    np.testing.assert_array_equal(a["rate_before_hz"][0], a["rate_before_hz"][1])  # same seed, same start
    assert a["labels"] == ["MSTDP, immediate", "MSTDPET, delay 2 ms"]
    assert a["solved"].shape == (2, 2) and a["curve_hz"].shape == (2, 2, 2, 4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="coding"):
        fn.XorConfig(coding="phase")
    with pytest.raises(ValueError, match="rule"):
        fn.Condition("stdp")
    with pytest.raises(ValueError, match="reward_delay_ms"):
        fn.Condition("mstdp", -1)
    with pytest.raises(ValueError, match="rate_hz"):
        fn.XorConfig(rate_hz=2000.0)
