"""STDP / MSTDP / MSTDPET (Florian 2007) against closed forms, a scalar reference loop and spikingjelly.

Expected values come from (i) pair sums over spike times written here, (ii) a slow per-synapse
scalar loop written here from the definitions in DESIGN.md section 4, (iii) spikingjelly 2.0.0's own
MSTDP/MSTDPET learners (an independent implementation of the delayed ordering).
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

from snnlab.experiments import florian as flx
from snnlab.experiments.florian import run_seed_example
from snnlab.plasticity import florian as fl
from snnlab.plasticity.florian import FlorianParams, init_state, rule_step, simulate

PRE, POST = (10, 85, 115, 135), (15, 75, 110, 140)
A, TAU, TAU_Z, W0 = 0.2, 20.0, 25.0, 0.2
COMBOS = [(o, m) for o in ("same-step", "delayed") for m in ("all-to-all", "nearest")]


# ----------------------------------------------------------------------------- independent references
def pair_sum_zeta(t, mode, pre=PRE, post=POST):
    """Point eligibility zeta(t) of the seed example from spike pairs (same-step ordering)."""
    z = 0.0
    if t in post:
        earlier = [tp for tp in pre if tp <= t]
        if mode == "nearest":
            earlier = earlier[-1:]
        z += sum(A * math.exp(-(t - tp) / TAU) for tp in earlier)
    if t in pre:
        earlier = [tq for tq in post if tq <= t]
        if mode == "nearest":
            earlier = earlier[-1:]
        z += sum(-A * math.exp(-(t - tq) / TAU) for tq in earlier)
    return z


def scalar_reference(ordering, mode, n_steps=200, switch=100):
    """A slow, straightforward loop over one synapse, written from the definitions."""
    e_p, e_z = math.exp(-1 / TAU), math.exp(-1 / TAU_Z)
    p_plus = p_minus = z = zeta_prev = 0.0
    w_s = w_m = w_e = W0
    out = {k: [v] for k, v in dict(x_pre=0.0, x_post=0.0, eligibility=0.0, w_stdp=W0, w_mstdp=W0, w_mstdpet=W0).items()}
    for t in range(1, n_steps + 1):
        s_pre, s_post = float(t in PRE), float(t in POST)
        r = 1.0 if t <= switch else -1.0
        if mode == "all-to-all":
            p_plus = p_plus * e_p + A * s_pre
            p_minus = p_minus * e_p - A * s_post
        else:
            p_plus = A if s_pre else p_plus * e_p
            p_minus = -A if s_post else p_minus * e_p
        zeta_now = p_plus * s_post + p_minus * s_pre
        zeta = zeta_now if ordering == "same-step" else zeta_prev
        z = z * e_z + zeta / TAU_Z
        w_s += zeta
        w_m += r * zeta
        w_e += r * z
        zeta_prev = zeta_now
        for k, v in dict(x_pre=p_plus, x_post=p_minus, eligibility=z, w_stdp=w_s, w_mstdp=w_m, w_mstdpet=w_e).items():
            out[k].append(v)
    return {k: np.array(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- run_seed_example
def test_run_seed_example_returns_201_float_arrays():
    res = run_seed_example()
    keys = {"t", "pre", "post", "reward", "x_pre", "x_post", "eligibility", "w_stdp", "w_mstdp", "w_mstdpet"}
    assert set(res) == keys
    for k, v in res.items():
        assert isinstance(v, np.ndarray) and v.shape == (201,) and v.dtype.kind == "f", k
    np.testing.assert_array_equal(res["t"], np.arange(201))
    assert np.flatnonzero(res["pre"]).tolist() == list(PRE)
    assert np.flatnonzero(res["post"]).tolist() == list(POST)
    assert (res["reward"][:101] == 1).all() and (res["reward"][101:] == -1).all()
    assert (res["x_post"] <= 0).all() and (res["x_pre"] >= 0).all()
    assert res["w_stdp"][0] == res["w_mstdp"][0] == res["w_mstdpet"][0] == W0
    assert res["eligibility"][0] == 0.0


@pytest.mark.parametrize("ordering,mode", COMBOS)
def test_run_seed_example_matches_scalar_reference_loop(ordering, mode):
    res, ref = run_seed_example(ordering, mode), scalar_reference(ordering, mode)
    for k in ref:
        np.testing.assert_allclose(res[k], ref[k], rtol=0, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("mode", ["all-to-all", "nearest"])
def test_run_seed_example_closed_form_at_first_spikes(mode):
    same, delayed = run_seed_example("same-step", mode), run_seed_example("delayed", mode)
    w15 = 0.2 + 0.2 * math.exp(-0.25)
    assert same["w_stdp"][15] == pytest.approx(w15, abs=1e-12)
    assert same["w_stdp"][14] == W0  # nothing before the first post spike
    assert delayed["w_stdp"][15] == W0 and delayed["w_stdp"][16] == pytest.approx(w15, abs=1e-12)
    assert same["x_pre"][10] == pytest.approx(0.2) and same["x_pre"][15] == pytest.approx(0.2 * math.exp(-0.25))
    assert same["x_post"][15] == pytest.approx(-0.2)
    # first post spike at 75 pairs with the pre spike at 10 (P- is zero at the pre spike at 10)
    assert same["w_stdp"][75] == pytest.approx(w15 + 0.2 * math.exp(-65 / 20), abs=1e-12)
    # MSTDPET: z jumps by zeta/tau_z at 15, then w moves by gamma dt r z each step
    z15 = 0.2 * math.exp(-0.25) / 25
    assert same["eligibility"][15] == pytest.approx(z15, abs=1e-14)
    assert same["w_mstdpet"][15] == pytest.approx(W0 + z15, abs=1e-14)
    assert same["w_mstdpet"][16] == pytest.approx(W0 + z15 * (1 + math.exp(-1 / 25)), abs=1e-14)
    assert delayed["eligibility"][16] == pytest.approx(z15, abs=1e-14) and delayed["eligibility"][15] == 0.0


@pytest.mark.parametrize("ordering,mode", COMBOS)
def test_run_seed_example_stdp_equals_pair_sums(ordering, mode):
    res = run_seed_example(ordering, mode)
    lag = 0 if ordering == "same-step" else 1
    for t in range(201):
        expected = W0 + sum(pair_sum_zeta(k, mode) for k in range(1, t - lag + 1))
        assert res["w_stdp"][t] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("ordering,mode", COMBOS)
def test_run_seed_example_mstdp_equals_stdp_then_mirrors(ordering, mode):
    res = run_seed_example(ordering, mode)
    np.testing.assert_allclose(res["w_mstdp"][:101], res["w_stdp"][:101], atol=1e-15)
    # "mirrored" = every later increment flips sign: w_MSTDP(t) = 2 w_STDP(100) - w_STDP(t) for t >= 100
    np.testing.assert_allclose(res["w_mstdp"][100:], 2 * res["w_stdp"][100] - res["w_stdp"][100:], atol=1e-14)
    np.testing.assert_allclose(np.diff(res["w_mstdp"]), res["reward"][1:] * np.diff(res["w_stdp"]), atol=1e-15)


@pytest.mark.parametrize("ordering,mode", COMBOS)
def test_run_seed_example_eligibility_equals_hand_summed_series(ordering, mode):
    res = run_seed_example(ordering, mode)
    lag = 0 if ordering == "same-step" else 1
    for t in range(201):
        z = sum(pair_sum_zeta(k, mode) * math.exp(-(t - lag - k) / TAU_Z) / TAU_Z for k in range(1, t - lag + 1))
        assert res["eligibility"][t] == pytest.approx(z, abs=1e-14)
    w = W0 + np.concatenate([[0.0], np.cumsum(res["reward"][1:] * res["eligibility"][1:])])
    np.testing.assert_allclose(res["w_mstdpet"], w, atol=1e-13)


def test_run_seed_example_nearest_differs_only_after_overlapping_spikes():
    a, n = run_seed_example("same-step", "all-to-all"), run_seed_example("same-step", "nearest")
    # The second pre spike (85) is the first that lands on a non-zero P+; the second post spike (75)
    # lands on a non-zero P-, which is first *read* by the pre spike at 85.
    np.testing.assert_array_equal(a["x_pre"][:85], n["x_pre"][:85])
    np.testing.assert_array_equal(a["x_post"][:75], n["x_post"][:75])
    assert a["x_pre"][85] - n["x_pre"][85] == pytest.approx(0.2 * math.exp(-75 / 20), abs=1e-15)
    assert a["x_post"][75] - n["x_post"][75] == pytest.approx(-0.2 * math.exp(-60 / 20), abs=1e-15)
    for k in ("w_stdp", "w_mstdp"):
        np.testing.assert_array_equal(a[k][:85], n[k][:85])
        assert a[k][85] != n[k][85]


def test_run_seed_example_modes_agree_when_spikes_do_not_overlap():
    # One spike per train: no trace ever holds a residue when a spike arrives -> identical runs.
    kw = dict(pre_times_ms=(10,), post_times_ms=(15,))
    a, n = run_seed_example(trace_mode="all-to-all", **kw), run_seed_example(trace_mode="nearest", **kw)
    for k in a:
        np.testing.assert_array_equal(a[k], n[k], err_msg=k)


@pytest.mark.parametrize("kwargs,allowed", [
    (dict(ordering="backwards"), "'same-step', 'delayed'"),
    (dict(trace_mode="pairwise"), "'all-to-all', 'nearest'"),
])
def test_run_seed_example_bad_arguments_name_allowed_values(kwargs, allowed):
    with pytest.raises(ValueError, match=allowed):
        run_seed_example(**kwargs)


# ----------------------------------------------------------------------------- tensor rules
def _random_spikes(gen, n_steps, batch, n, p):
    return (torch.rand(n_steps, batch, n, generator=gen, dtype=torch.float64) < p).to(torch.float64)


@pytest.mark.parametrize("rule", ["stdp", "mstdp", "mstdpet"])
@pytest.mark.parametrize("ordering,mode", COMBOS)
def test_simulate_batch_equals_sum_of_per_sample_runs(rule, ordering, mode):
    gen = torch.Generator().manual_seed(3)
    n_steps, batch, n_pre, n_post = 40, 4, 6, 3
    pre, post = _random_spikes(gen, n_steps, batch, n_pre, 0.15), _random_spikes(gen, n_steps, batch, n_post, 0.15)
    w0 = torch.rand(n_post, n_pre, generator=gen, dtype=torch.float64)
    reward = torch.randn(n_steps, batch, generator=gen, dtype=torch.float64)
    params = FlorianParams(ordering=ordering, trace_mode=mode, gamma=0.1)
    r = None if rule == "stdp" else reward
    per = rule == "mstdpet"
    batched = simulate(rule, pre, post, w0, reward=r, params=params, per_sample_eligibility=per)
    singles = [
        simulate(rule, pre[:, b:b + 1], post[:, b:b + 1], w0, reward=None if r is None else r[:, b:b + 1],
                 params=params, per_sample_eligibility=per)
        for b in range(batch)
    ]
    expected = w0 + sum(s.w - w0 for s in singles)
    torch.testing.assert_close(batched.w, expected, rtol=0, atol=1e-12)
    for b in range(batch):
        torch.testing.assert_close(batched.x_pre[:, b], singles[b].x_pre[:, 0], rtol=0, atol=1e-14)
    # "mean" is the sum divided by B
    mean = simulate(rule, pre, post, w0, reward=r, params=FlorianParams(ordering=ordering, trace_mode=mode,
                    gamma=0.1, batch_reduction="mean"), per_sample_eligibility=per)
    torch.testing.assert_close(mean.w - w0, (batched.w - w0) / batch, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ordering", ["same-step", "delayed"])
def test_mstdpet_step_shared_eligibility_equals_per_sample_with_shared_reward(ordering):
    gen = torch.Generator().manual_seed(5)
    pre, post = _random_spikes(gen, 30, 3, 5, 0.2), _random_spikes(gen, 30, 3, 4, 0.2)
    w0 = torch.zeros(4, 5, dtype=torch.float64)
    reward = torch.randn(30, generator=gen, dtype=torch.float64)
    params = FlorianParams(ordering=ordering)
    shared = simulate("mstdpet", pre, post, w0, reward=reward, params=params)
    per = simulate("mstdpet", pre, post, w0, reward=reward[:, None].expand(30, 3), params=params,
                   per_sample_eligibility=True)
    torch.testing.assert_close(shared.w, per.w, rtol=0, atol=1e-13)
    torch.testing.assert_close(shared.z, per.z.sum(1), rtol=0, atol=1e-13)


def test_point_eligibility_equals_per_synapse_loop():
    gen = torch.Generator().manual_seed(0)
    pre, post = _random_spikes(gen, 1, 3, 4, 0.5)[0], _random_spikes(gen, 1, 3, 2, 0.5)[0]
    x_pre, x_post = torch.rand(3, 4, generator=gen), -torch.rand(3, 2, generator=gen)
    c = torch.randn(3, generator=gen)
    got = fl.point_eligibility(pre.float(), post.float(), x_pre, x_post, sample_weights=c)
    for i in range(2):
        for j in range(4):
            want = sum(c[b] * (x_pre[b, j] * post[b, i] + x_post[b, i] * pre[b, j]) for b in range(3))
            assert got[i, j].item() == pytest.approx(float(want), abs=1e-6)


def test_rule_step_bounds_keep_weights_inside():
    params = FlorianParams(a_plus=5.0, gamma=1.0, w_min=0.0, w_max=1.0)
    state = init_state(1, 1, 1, rule="stdp", dtype=torch.float64)
    w = torch.tensor([[0.9]], dtype=torch.float64)
    one = torch.ones(1, 1, dtype=torch.float64)
    dw, _ = rule_step("stdp", one, one, state, w, params=params)
    assert (w + dw).item() == 1.0  # zeta = A+ + A- = 4 would overshoot; clipped to w_max
    params_low = FlorianParams(a_plus=0.0, a_minus=-5.0, gamma=1.0, w_min=0.0, w_max=1.0)
    dw, _ = rule_step("stdp", one, one, state, w, params=params_low)
    assert (w + dw).item() == 0.0


def test_rule_step_stdp_weight_is_independent_of_dt():
    # Exact trace decay: the same spike times (ms) give the same STDP weight with dt = 1 and dt = 0.5.
    kw = dict(a_plus=0.2, a_minus=-0.2, gamma=1.0)
    coarse = run_seed_example(**kw)
    fine = run_seed_example(dt=0.5, n_steps=400, **kw)
    np.testing.assert_allclose(fine["w_stdp"][::2], coarse["w_stdp"], atol=1e-12)
    np.testing.assert_allclose(fine["x_pre"][::2], coarse["x_pre"], atol=1e-12)


def test_rule_step_reward_validation():
    state = init_state(2, 3, 1, rule="mstdp")
    pre, post, w = torch.zeros(2, 3), torch.zeros(2, 1), torch.zeros(1, 3)
    with pytest.raises(ValueError, match="reward"):
        rule_step("stdp", pre, post, init_state(2, 3, 1, rule="stdp"), w, reward=1.0, params=FlorianParams())
    with pytest.raises(ValueError, match="reward"):
        rule_step("mstdp", pre, post, state, w, params=FlorianParams())
    with pytest.raises(ValueError, match="reward"):
        rule_step("mstdp", pre, post, state, w, reward=torch.ones(5), params=FlorianParams())
    with pytest.raises(ValueError, match="per_sample_eligibility"):
        rule_step("mstdpet", pre, post, init_state(2, 3, 1), w, reward=torch.ones(2), params=FlorianParams())
    with pytest.raises(ValueError, match="w must be"):
        rule_step("mstdp", pre, post, state, torch.zeros(3, 1), reward=1.0, params=FlorianParams())
    with pytest.raises(ValueError, match="rule"):
        rule_step("rstdp", pre, post, state, w, params=FlorianParams())


@pytest.mark.parametrize("field,value", [
    ("a_plus", -1.0), ("a_minus", 0.5), ("tau_plus_ms", 0.0), ("tau_minus_ms", -2.0), ("tau_z_ms", 0.0),
    ("ordering", "later"), ("trace_mode", "all"), ("batch_reduction", "max"), ("w_min", float("nan")),
])
def test_florian_params_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        FlorianParams(**{field: value})


def test_florian_params_rejects_crossed_bounds():
    with pytest.raises(ValueError, match="w_min"):
        FlorianParams(w_min=1.0, w_max=0.0)


# ----------------------------------------------------------------------------- stateful wrappers
@pytest.mark.parametrize("rule", ["stdp", "mstdp", "mstdpet"])
def test_florian_rule_module_matches_pure_function(rule):
    gen = torch.Generator().manual_seed(1)
    pre, post = _random_spikes(gen, 25, 2, 4, 0.2).float(), _random_spikes(gen, 25, 2, 3, 0.2).float()
    reward = torch.randn(25, generator=gen)
    params = FlorianParams(ordering="delayed", trace_mode="nearest")
    mod = fl.FlorianRule(rule, 4, 3, params=params)
    w = torch.zeros(3, 4)
    for t in range(25):
        w = w + mod.step(pre[t], post[t], w, reward=None if rule == "stdp" else reward[t])
    ref = simulate(rule, pre, post, torch.zeros(3, 4), reward=None if rule == "stdp" else reward, params=params)
    torch.testing.assert_close(w, ref.w[-1], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(mod.state.x_pre, ref.state.x_pre)
    with pytest.raises(ValueError, match="batch size"):
        mod.step(pre[0, :1], post[0, :1], w, reward=None if rule == "stdp" else 1.0)
    mod.reset()
    assert mod.state is None


class _Replay(nn.Module):
    """A stand-in 'neuron' that emits prescribed post spikes (so the test controls both spike trains)."""

    def __init__(self, spikes):
        super().__init__()
        self.spikes, self.t = spikes, 0

    def forward(self, x):
        out = self.spikes[self.t]
        self.t += 1
        return out


def test_florian_learner_on_linear_matches_simulate_single_and_multi_step():
    gen = torch.Generator().manual_seed(2)
    n_steps, batch = 20, 3
    pre, post = _random_spikes(gen, n_steps, batch, 5, 0.3).float(), _random_spikes(gen, n_steps, batch, 2, 0.3).float()
    reward = torch.randn(n_steps, generator=gen)
    params = FlorianParams(gamma=0.5)
    ref = simulate("mstdpet", pre, post, torch.zeros(2, 5), reward=reward, params=params)

    lin, neuron = nn.Linear(5, 2, bias=False), _Replay(post)
    nn.init.zeros_(lin.weight)
    learner = fl.FlorianLearner(lin, neuron, rule="mstdpet", params=params)
    for t in range(n_steps):
        neuron(lin(pre[t]))
        learner.step(reward[t])
    torch.testing.assert_close(lin.weight.detach(), ref.w[-1], rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="no recorded forward"):
        learner.step(1.0)
    learner.close()

    lin2, neuron2 = nn.Linear(5, 2, bias=False), _Replay(post[None])  # one multi-step forward [T, B, n]
    nn.init.zeros_(lin2.weight)
    learner2 = fl.FlorianLearner(lin2, neuron2, rule="mstdpet", params=params)
    neuron2(lin2(pre))
    learner2.step(reward)
    torch.testing.assert_close(lin2.weight.detach(), ref.w[-1], rtol=1e-5, atol=1e-6)


def test_florian_learner_with_spikingjelly_lif_raises_on_unconsumed_forward():
    from spikingjelly.activation_based import functional, neuron

    lin, lif = nn.Linear(4, 3), neuron.LIFNode(tau=2.0)
    learner = fl.FlorianLearner(lin, lif, rule="mstdp", params=FlorianParams())
    x = torch.ones(2, 4)
    lif(lin(x))
    with pytest.raises(RuntimeError, match="second forward"):
        lif(lin(x))
    learner.reset()
    functional.reset_net(lif)
    learner.pause()
    lif(lin(x))  # not recorded
    learner.resume()
    lif(lin(x))
    before = lin.weight.detach().clone()
    dw = learner.step(torch.tensor([1.0, -1.0]))
    torch.testing.assert_close(lin.weight.detach(), before + dw)


# ----------------------------------------------------------------------------- spikingjelly as a reference
def test_delayed_mstdpet_matches_spikingjelly_learner():
    from spikingjelly.activation_based import learning

    gen = torch.Generator().manual_seed(4)
    n_steps, a_plus, a_minus = 40, 0.7, -0.4
    pre = (torch.rand(n_steps, 6, generator=gen) < 0.2).double()
    post = (torch.rand(n_steps, 3, generator=gen) < 0.2).double()
    reward = torch.randn(n_steps, generator=gen, dtype=torch.float64)
    lin, neuron = nn.Linear(6, 3, bias=False).double(), _Replay(post)
    sj = learning.MSTDPETLearner("s", lin, neuron, tau_pre=20.0, tau_post=15.0, tau_trace=25.0,
                                 f_pre=lambda w: -a_minus, f_post=lambda w: a_plus)
    params = FlorianParams(a_plus=a_plus, a_minus=a_minus, tau_plus_ms=20.0, tau_minus_ms=15.0, tau_z_ms=25.0,
                           gamma=1.0, ordering="delayed")
    state, w = init_state(1, 6, 3, dtype=torch.float64), torch.zeros(3, 6, dtype=torch.float64)
    for t in range(n_steps):
        neuron(lin(pre[t]))
        dw_sj = sj.step(reward[t], on_grad=False)
        dw, state = rule_step("mstdpet", pre[t][None], post[t][None], state, w, reward=reward[t], params=params)
        torch.testing.assert_close(dw, dw_sj, rtol=1e-10, atol=1e-12)
    sj.close()


def test_delayed_mstdp_matches_spikingjelly_learner_with_batch_reward():
    from spikingjelly.activation_based import learning

    gen = torch.Generator().manual_seed(6)
    n_steps, batch = 30, 3
    pre = _random_spikes(gen, n_steps, batch, 5, 0.25)
    post = _random_spikes(gen, n_steps, batch, 2, 0.25)
    reward = torch.randn(n_steps, batch, generator=gen, dtype=torch.float64)
    lin, neuron = nn.Linear(5, 2, bias=False).double(), _Replay(post)
    sj = learning.MSTDPLearner("s", lin, neuron, tau_pre=20.0, tau_post=20.0, f_pre=lambda w: 1.0,
                               f_post=lambda w: 1.0)
    params = FlorianParams(gamma=1.0, ordering="delayed")
    state, w = init_state(batch, 5, 2, rule="mstdp", dtype=torch.float64), torch.zeros(2, 5, dtype=torch.float64)
    for t in range(n_steps):
        neuron(lin(pre[t]))
        dw_sj = sj.step(reward[t], on_grad=False)
        dw, state = rule_step("mstdp", pre[t], post[t], state, w, reward=reward[t], params=params)
        torch.testing.assert_close(dw, dw_sj, rtol=1e-10, atol=1e-12)
    sj.close()


# ----------------------------------------------------------------------------- the network experiment
def test_run_reward_task_is_seeded_and_shaped():
    cfg = flx.RewardTaskConfig(n_per_input=4, n_hidden=5, trial_ms=30, n_trials=2, n_test_trials=1)
    a = flx.run_reward_task("mstdp", config=cfg, seed=3)
    b = flx.run_reward_task("mstdp", config=cfg, seed=3)
    assert a["counts"].shape == (2, 2) and a["rate_after_hz"].shape == (2,)
    np.testing.assert_array_equal(a["counts"], b["counts"])
    np.testing.assert_array_equal(a["w_hidden_out"], b["w_hidden_out"])
    assert (np.abs(a["w_hidden_out"]) <= cfg.w_max).all()
    et = flx.run_reward_task("mstdpet", config=cfg, seed=3)
    np.testing.assert_array_equal(et["rate_before_hz"], a["rate_before_hz"])  # same seed, same start


@pytest.mark.parametrize("kwargs,name", [(dict(n_hidden=0), "n_hidden"), (dict(rate_hz=-1.0), "rate_hz"),
                                         (dict(targets=(1,)), "targets")])
def test_reward_task_config_rejects_bad_fields(kwargs, name):
    with pytest.raises(ValueError, match=name):
        flx.RewardTaskConfig(**kwargs)


def test_run_reward_task_rejects_stdp():
    with pytest.raises(ValueError, match="rule"):
        flx.run_reward_task("stdp")


# ----------------------------------------------------------------------------- device
def test_run_seed_example_and_reward_task_on_cpu_device_equal_the_default(assert_same):
    assert_same(run_seed_example("delayed", "nearest", device="cpu"), run_seed_example("delayed", "nearest"))
    cfg = flx.RewardTaskConfig(n_trials=2, trial_ms=30, n_test_trials=1)
    assert_same(flx.run_reward_task("mstdpet", config=cfg, seed=3, device=torch.device("cpu")),
                flx.run_reward_task("mstdpet", config=cfg, seed=3))
