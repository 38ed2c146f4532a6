"""Florian's network task (Florian 2007, section 4): XOR with rate-coded and temporally coded input,
learnt with MSTDP or MSTDPET, with immediate or delayed reward.

Many independent networks run at once as one batch ``B`` (every seed x condition), each with its own
weights, so a whole study is one loop over time steps of tensor operations on ``[B, ...]``.

**Network** (feed-forward, dt = 1 ms). Two input groups of ``n_per_input`` neurons (one group per input
bit), ``n_hidden`` hidden leaky integrate-and-fire (LIF) neurons, one LIF output neuron. A fraction
``frac_inhibitory`` of each input group is inhibitory (weights bounded to ``[-w_max, 0]``), the others
excitatory (``[0, w_max]``); hidden -> output weights are excitatory (``[0, w_max]``). Membrane:

.. math:: V(t) = V(t-\\Delta t)\\,e^{-\\Delta t/\\tau_m} + \\sum_j w_{ij} s_j(t) + \\sigma\\,\\xi(t), \\qquad
    V \\ge \\theta \\Rightarrow \\text{spike}, V \\leftarrow 0

(weights and ``V`` in mV above rest; a pre spike of step t reaches its target in the same step).

**Input coding.** ``"rate"``: a bit 1 makes its group fire Poisson spikes at ``rate_hz``, a bit 0 keeps
it silent. ``"temporal"``: every input neuron fires at ``rate_hz`` for both values; a bit value picks one
of two fixed spike trains (drawn once per network from its seed), so only spike *timing* tells 0 from 1.

**Protocol.** An epoch presents the four XOR patterns once each for ``trial_ms`` (order shuffled each
epoch), with no reset between trials. Reward (Florian's scheme): at each output spike, ``+1`` when the
pattern's target is 1 and ``-1`` when it is 0; no reward otherwise. With ``reward_delay_ms = d`` the same
reward reaches the synapses ``d`` ms after the spike. MSTDP: ``dw = gamma r zeta``; MSTDPET:
``z <- z e^{-dt/tau_z} + zeta/tau_z``, ``dw = gamma dt r z`` (:mod:`snnlab.plasticity.florian`, same-step
ordering: ``r(t)`` meets ``zeta(t)``). The same global reward reaches both layers.

**Success.** After training, learning paused, ``n_test_trials`` presentations of each pattern: XOR is
learnt when the lowest output rate for (0,1), (1,0) is above the highest for (0,0), (1,1).

Parameters: the paper's text of section 4 was not available to us; the network sizes (rate: 2 x 30
inputs, 60 hidden, 1 output; temporal: 2 inputs, 20 hidden, 1 output), the 500 ms trials, the 40 Hz
rate, tau_m = 20 ms, the 16 mV threshold, w_max = 5 mV, half of the inputs inhibitory, tau+- = 20 ms and
tau_z = 25 ms are those listed by a public replication (SpikeyCNS/spikey, ``florian_rate`` /
``florian_temporal``); learning rates, initial weights, noise and epochs are ours (see
``results/florian_xor.md``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from collections.abc import Sequence

import numpy as np
import torch

from ..utils import check_choice, check_float, check_int, check_positive, derive_seed, limit_threads
from ..utils import progress as progress_bar

XOR_PATTERNS = ((0, 0), (0, 1), (1, 0), (1, 1))
XOR_TARGETS = (0, 1, 1, 0)
CODINGS = ("rate", "temporal")
NETWORK_RULES = ("mstdp", "mstdpet")


@dataclass(frozen=True)
class XorConfig:
    """One XOR experiment (Florian 2007 section 4). Defaults: the rate-coded network.

    Attributes:
        coding: ``"rate"`` or ``"temporal"``.  n_per_input: input neurons per bit.
        n_hidden: hidden LIF neurons.  frac_inhibitory: fraction of each input group that is inhibitory.
        rate_hz: input rate (Hz; rate coding: for a 1, temporal coding: always).
        trial_ms: one pattern presentation (ms).  n_epochs: epochs of 4 presentations.
        n_test_trials: presentations of each pattern (learning paused) to measure rates after training.
        tau_m_ms: membrane time constant (ms).  threshold_mv: firing threshold above rest (mV).
        noise_mv: std of a Gaussian added to V every step (mV), exploration.
        w_max_mv: weight bound (mV).  w_init_mv: initial |w| uniform in ``[0, w_init_mv]``.
        gamma_mstdp: MSTDP's gamma (mV per unit zeta).  gamma_mstdpet: MSTDPET's gamma (mV per ms per unit z).
        tau_plus_ms, tau_minus_ms, tau_z_ms: trace time constants (ms); A+ = 1, A- = -1.
        dt: step (ms).
    """

    coding: str = "rate"
    n_per_input: int = 30
    n_hidden: int = 60
    frac_inhibitory: float = 0.5
    rate_hz: float = 40.0
    trial_ms: int = 500
    n_epochs: int = 200
    n_test_trials: int = 5
    tau_m_ms: float = 20.0
    threshold_mv: float = 16.0
    noise_mv: float = 0.0
    w_max_mv: float = 5.0
    w_init_mv: float = 5.0
    gamma_mstdp: float = 0.05
    gamma_mstdpet: float = 1.25
    tau_plus_ms: float = 20.0
    tau_minus_ms: float = 20.0
    tau_z_ms: float = 25.0
    dt: float = 1.0

    def __post_init__(self):
        check_choice("coding", self.coding, CODINGS)
        for name in ("n_per_input", "n_hidden", "trial_ms", "n_epochs", "n_test_trials"):
            check_int(name, getattr(self, name), minimum=1)
        check_float("frac_inhibitory", self.frac_inhibitory, minimum=0.0, maximum=1.0)
        for name in ("rate_hz", "tau_m_ms", "threshold_mv", "w_max_mv", "tau_plus_ms", "tau_minus_ms",
                     "tau_z_ms", "dt"):
            check_positive(name, getattr(self, name))
        for name in ("noise_mv", "w_init_mv", "gamma_mstdp", "gamma_mstdpet"):
            check_float(name, getattr(self, name), minimum=0.0)
        if self.rate_hz * self.dt / 1000.0 > 1.0:
            raise ValueError(f"rate_hz: at most one spike per step, got rate_hz={self.rate_hz} with dt={self.dt}")

    @property
    def n_inputs(self) -> int:
        return 2 * self.n_per_input

    @property
    def n_inhibitory_per_input(self) -> int:
        return int(round(self.frac_inhibitory * self.n_per_input))


def rate_config(**overrides) -> XorConfig:
    """Rate-coded XOR: 2 x 30 Poisson inputs (40 Hz for a 1, silent for a 0), 60 hidden, 1 output, 500 ms."""
    return replace(XorConfig(), **overrides)


def temporal_config(**overrides) -> XorConfig:
    """Temporally coded XOR: 2 x 10 inputs (half inhibitory), each with a fixed 40 Hz train per bit value,
    20 hidden, 1 output, 500 ms, 2 mV membrane noise, learning rates 4x the rate-coded ones.

    The public replication lists 2 inputs (one per bit); with 2 excitatory inputs our network did not
    learn in 30 epochs (0/5 seeds, both rules), with 2 x 10 inputs MSTDPET began to (2/5), and its output
    fires at ~30 Hz instead of ~200 Hz, so it sees fewer rewards: hence the larger rates."""
    base = XorConfig(coding="temporal", n_per_input=10, n_hidden=20, frac_inhibitory=0.5, noise_mv=2.0,
                     gamma_mstdp=0.2, gamma_mstdpet=5.0)
    return replace(base, **overrides)


@dataclass(frozen=True)
class Condition:
    """One learning condition: the rule and the reward delay (ms)."""

    rule: str = "mstdpet"
    reward_delay_ms: int = 0

    def __post_init__(self):
        check_choice("rule", self.rule, NETWORK_RULES)
        check_int("reward_delay_ms", self.reward_delay_ms, minimum=0)

    @property
    def label(self) -> str:
        delay = "immediate" if self.reward_delay_ms == 0 else f"delay {self.reward_delay_ms} ms"
        return f"{self.rule.upper()}, {delay}"


# ============================================================================ building blocks
def input_sign(config: XorConfig) -> torch.Tensor:
    """+1 (excitatory) / -1 (inhibitory) per input neuron ``[n_inputs]``; the first
    ``n_inhibitory_per_input`` neurons of each group are inhibitory."""
    sign = torch.ones(config.n_inputs)
    k = config.n_inhibitory_per_input
    for g in range(2):
        sign[g * config.n_per_input: g * config.n_per_input + k] = -1.0
    return sign


def input_probabilities(config: XorConfig, bits: torch.Tensor) -> torch.Tensor:
    """Rate coding: spike probability per step ``[B, n_inputs]`` for bits ``[B, 2]`` (0/1)."""
    p = config.rate_hz * config.dt / 1000.0
    return bits.repeat_interleave(config.n_per_input, dim=1).float() * p


def temporal_trains(config: XorConfig, seeds: Sequence[int]) -> torch.Tensor:
    """Temporal coding: the fixed spike trains ``[S, 2 values, n_steps, n_inputs]`` of each seed's network.

    Value v of bit g is the train ``trains[s, v, :, g * n_per_input:(g + 1) * n_per_input]``: every input
    neuron has one Poisson train at ``rate_hz`` for 0 and another for 1, drawn once from the seed."""
    n_steps = int(round(config.trial_ms / config.dt))
    p = config.rate_hz * config.dt / 1000.0
    out = []
    for s in seeds:
        gen = torch.Generator().manual_seed(derive_seed(int(s), "florian-xor", "temporal-trains"))
        out.append((torch.rand(2, n_steps, config.n_inputs, generator=gen) < p).float())
    return torch.stack(out)


def initial_weights(config: XorConfig, seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial ``w_ih [S, n_hidden, n_inputs]`` (signed by :func:`input_sign`) and ``w_ho [S, 1, n_hidden]``."""
    sign = input_sign(config)
    w_ih, w_ho = [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(derive_seed(int(s), "florian-xor", "init"))
        w_ih.append(torch.rand(config.n_hidden, config.n_inputs, generator=gen) * config.w_init_mv * sign)
        w_ho.append(torch.rand(1, config.n_hidden, generator=gen) * config.w_init_mv)
    return torch.stack(w_ih), torch.stack(w_ho)


def pattern_orders(config: XorConfig, seeds: Sequence[int]) -> torch.Tensor:
    """Presentation order ``[S, n_epochs * 4]`` (pattern indices; each epoch a permutation of 0..3)."""
    out = []
    for s in seeds:
        gen = torch.Generator().manual_seed(derive_seed(int(s), "florian-xor", "order"))
        out.append(torch.cat([torch.randperm(4, generator=gen) for _ in range(config.n_epochs)]))
    return torch.stack(out)


def xor_reward(out_spikes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Florian's reward at one step: ``+1`` for an output spike when the target is 1, ``-1`` when it is 0,
    ``0`` without a spike. ``out_spikes``, ``targets``: ``[B]`` (0/1)."""
    return out_spikes * (2.0 * targets - 1.0)


class _Layer:
    """Traces and eligibility of one plastic projection for B networks (same-step ordering)."""

    def __init__(self, w, lo, hi, config: XorConfig, is_et: torch.Tensor, gamma: torch.Tensor):
        b, n_post, n_pre = w.shape
        self.w, self.lo, self.hi = w, lo, hi
        kw = dict(dtype=w.dtype, device=w.device)
        self.p_plus = torch.zeros(b, n_pre, **kw)
        self.p_minus = torch.zeros(b, n_post, **kw)
        self.z = torch.zeros(b, n_post, n_pre, **kw)
        self.d_plus = math.exp(-config.dt / config.tau_plus_ms)
        self.d_minus = math.exp(-config.dt / config.tau_minus_ms)
        self.d_z = math.exp(-config.dt / config.tau_z_ms)
        self.tau_z = config.tau_z_ms
        self.is_et = is_et[:, None, None]
        self.gamma = gamma[:, None, None]

    def step(self, pre: torch.Tensor, post: torch.Tensor, reward: torch.Tensor | None) -> None:
        self.p_plus = self.p_plus * self.d_plus + pre
        self.p_minus = self.p_minus * self.d_minus - post
        zeta = post[:, :, None] * self.p_plus[:, None, :] + self.p_minus[:, :, None] * pre[:, None, :]
        self.z = self.z * self.d_z + zeta / self.tau_z
        if reward is None:
            return
        e = torch.where(self.is_et, self.z, zeta)
        self.w = torch.minimum(torch.maximum(self.w + self.gamma * reward[:, None, None] * e, self.lo), self.hi)


def _lif(v, current, decay, threshold):
    v = v * decay + current
    s = (v >= threshold).to(v.dtype)
    return v * (1.0 - s), s


# ============================================================================ the experiment
@torch.no_grad()
def run_xor(
    config: XorConfig = XorConfig(),
    conditions: Sequence[Condition] = (Condition("mstdp"), Condition("mstdpet")),
    seeds: Sequence[int] = (0,),
    *,
    record_every: int = 1,
    progress: bool = False,
    device: str | torch.device = "cpu",
) -> dict:
    """Train ``len(conditions) x len(seeds)`` XOR networks at once; return their rates and curves.

    Network ``(c, s)`` starts from seed ``s``'s weights and sees seed ``s``'s inputs (the same for every
    condition), so conditions differ only by their rule and reward delay. Random numbers come from CPU
    generators derived with :func:`snnlab.utils.derive_seed` and are moved to ``device``; input spikes and
    noise are drawn once per seed and shared by that seed's networks (common random numbers), until
    their output spikes differ.

    Returns:
        dict of numpy arrays: ``rate_after_hz [C, S, 4]`` (test, learning paused), ``rate_before_hz``,
        ``curve_hz [C, S, n_points, 4]`` (output rate of each pattern's latest training presentation,
        every ``record_every`` epochs), ``epochs`` ``[n_points]``, ``margin_hz [C, S]``, ``solved [C, S]``,
        ``labels``, ``conditions``, ``seeds``, ``config`` (dict), final weights ``w_ho [C, S, n_hidden]``
        and ``w_ih [C, S, n_hidden, n_inputs]``.
    """
    if not isinstance(config, XorConfig):
        raise ValueError(f"config must be an XorConfig, got {type(config).__name__}")
    conditions = [c if isinstance(c, Condition) else Condition(*c) for c in conditions]
    if not conditions:
        raise ValueError("conditions must not be empty")
    seeds = [check_int("seed", s, minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    record_every = check_int("record_every", record_every, minimum=1)
    n_c, n_s = len(conditions), len(seeds)
    b = n_c * n_s
    seed_of = torch.arange(b) % n_s  # network k = (condition k // S, seed k % S)
    seed_cpu = seed_of
    dev = torch.device(device)
    cfg = config
    n_steps = int(round(cfg.trial_ms / cfg.dt))

    w_ih0, w_ho0 = initial_weights(cfg, seeds)
    sign = input_sign(cfg)
    lo_ih = torch.where(sign < 0, -cfg.w_max_mv, 0.0)[None, None, :].to(dev)
    hi_ih = torch.where(sign < 0, 0.0, cfg.w_max_mv)[None, None, :].to(dev)
    is_et = torch.tensor([c.rule == "mstdpet" for c in conditions]).repeat_interleave(n_s).to(dev)
    gamma = torch.tensor([cfg.gamma_mstdpet * cfg.dt if c.rule == "mstdpet" else cfg.gamma_mstdp
                          for c in conditions]).repeat_interleave(n_s).to(dev)
    delays = torch.tensor([c.reward_delay_ms for c in conditions]).repeat_interleave(n_s)
    delay_steps = (delays.float() / cfg.dt).round().long().to(dev)
    max_delay = int(delay_steps.max())
    hidden = _Layer(w_ih0[seed_of].to(dev), lo_ih, hi_ih, cfg, is_et, gamma)
    output = _Layer(w_ho0[seed_of].to(dev), torch.tensor(0.0, device=dev), torch.tensor(cfg.w_max_mv, device=dev),
                    cfg, is_et, gamma)
    orders = pattern_orders(cfg, seeds)[seed_of]  # [B, n_epochs*4]
    bits_all = torch.tensor(XOR_PATTERNS, dtype=torch.float32)
    targets_all = torch.tensor(XOR_TARGETS, dtype=torch.float32)
    trains = temporal_trains(cfg, seeds)[seed_of].to(dev) if cfg.coding == "temporal" else None
    gen = torch.Generator().manual_seed(derive_seed(seeds[0], "florian-xor", "run", *seeds))
    decay_m = math.exp(-cfg.dt / cfg.tau_m_ms)
    v_h = torch.zeros(b, cfg.n_hidden, device=dev)
    v_o = torch.zeros(b, 1, device=dev)
    # reward ring buffer: slot (t mod (D+1)) holds the reward emitted at step t
    ring = torch.zeros(max_delay + 1, b, device=dev)
    ar = torch.arange(b, device=dev)

    def trial(pattern: torch.Tensor, learn: bool, t0: int):
        nonlocal v_h, v_o
        bits = bits_all[pattern]
        target = targets_all[pattern].to(dev)
        if trains is None:
            p_in = input_probabilities(cfg, bits).to(dev)
        else:  # [B, n_steps, n_inputs]: pick value bits[g] for group g
            sel = bits.repeat_interleave(cfg.n_per_input, dim=1).long().to(dev)  # [B, n_in]
            x_trial = torch.where(sel[:, None, :] == 1, trains[:, 1], trains[:, 0])
        count = torch.zeros(b, device=dev)
        if trains is None:  # one draw for the whole trial: [n_steps, B, n_in]
            u = torch.rand(n_steps, n_s, cfg.n_inputs, generator=gen)[:, seed_cpu].to(dev)  # one draw per seed
            x_trial = (u < p_in).float()
        else:
            x_trial = x_trial.transpose(0, 1)
        if cfg.noise_mv > 0:
            noise_trial = torch.randn(n_steps, n_s, cfg.n_hidden + 1, generator=gen)[:, seed_cpu].to(dev) * cfg.noise_mv
        for k in range(n_steps):
            x = x_trial[k]
            i_h = torch.bmm(hidden.w, x[:, :, None])[:, :, 0]
            if cfg.noise_mv > 0:
                i_h = i_h + noise_trial[k, :, :-1]
            v_h, s_h = _lif(v_h, i_h, decay_m, cfg.threshold_mv)
            i_o = torch.bmm(output.w, s_h[:, :, None])[:, :, 0]
            if cfg.noise_mv > 0:
                i_o = i_o + noise_trial[k, :, -1:]
            v_o, s_o = _lif(v_o, i_o, decay_m, cfg.threshold_mv)
            count += s_o[:, 0]
            if learn:
                t = t0 + k
                ring[t % (max_delay + 1)] = xor_reward(s_o[:, 0], target)
                r = ring[(t - delay_steps) % (max_delay + 1), ar] if max_delay else ring[0]
                hidden.step(x, s_h, r)
                output.step(s_h, s_o, r)
        return count / (cfg.trial_ms / 1000.0)

    def test_rates():
        rates = torch.zeros(b, 4, device=dev)
        for _ in range(cfg.n_test_trials):
            for p in range(4):
                rates[:, p] += trial(torch.full((b,), p), learn=False, t0=0)
        return rates / cfg.n_test_trials

    with limit_threads(1):
        before = test_rates()
        latest = torch.zeros(b, 4, device=dev)
        curve, epochs = [], []
        t0 = 0
        for e in progress_bar(range(cfg.n_epochs), disable=not progress, desc="XOR"):
            for j in range(4):
                pattern = orders[:, 4 * e + j]
                latest[ar, pattern.to(dev)] = trial(pattern, learn=True, t0=t0)
                t0 += n_steps
            if (e + 1) % record_every == 0 or e + 1 == cfg.n_epochs:
                curve.append(latest.clone())
                epochs.append(e + 1)
        after = test_rates()

    def cs(x):  # [B, ...] -> [C, S, ...] numpy
        x = x.cpu().numpy().astype(float)
        return x.reshape(n_c, n_s, *x.shape[1:])

    target = np.array(XOR_TARGETS, dtype=bool)
    after_np = cs(after)
    margin = after_np[..., target].min(-1) - after_np[..., ~target].max(-1)
    return {
        "rate_before_hz": cs(before),
        "rate_after_hz": after_np,
        "curve_hz": np.stack([cs(c) for c in curve], axis=2),
        "epochs": np.array(epochs),
        "margin_hz": margin,
        "solved": margin > 0,
        "labels": [c.label for c in conditions],
        "conditions": [(c.rule, c.reward_delay_ms) for c in conditions],
        "seeds": list(seeds),
        "config": dict(cfg.__dict__),
        "w_ho": cs(output.w[:, 0, :]),
        "w_ih": cs(hidden.w),
    }


# ============================================================================ summaries and figures
RULE_COLORS = {"mstdp": "tab:orange", "mstdpet": "tab:red"}  # the colours of notebook 01's seed figure


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (95% for z = 1.96)."""
    check_int("n", n, minimum=1)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise_run(res: dict) -> dict:
    """A :func:`run_xor` result as JSON-ready rows (one per condition) and seed-mean learning curves.

    Returns ``{"config", "epochs", "rows": [{rule, reward_delay_ms, label, solved, n, success,
    success_ci95, margin_hz_mean, margin_hz, rate_after_hz_mean}], "curve_hz_mean" [C, points, 4],
    "rate_before_hz_mean" [C, 4]}``."""
    rows = []
    for c, (rule, delay) in enumerate(res["conditions"]):
        n = len(res["seeds"])
        k = int(res["solved"][c].sum())
        rows.append({
            "rule": rule, "reward_delay_ms": int(delay), "label": res["labels"][c], "solved": k, "n": n,
            "success": k / n, "success_ci95": list(wilson_interval(k, n)),
            "margin_hz_mean": float(res["margin_hz"][c].mean()), "margin_hz": res["margin_hz"][c].tolist(),
            "rate_after_hz_mean": res["rate_after_hz"][c].mean(0).tolist(),
        })
    return {"config": res["config"], "epochs": res["epochs"].tolist(), "rows": rows,
            "curve_hz_mean": res["curve_hz"].mean(1).tolist(),
            "rate_before_hz_mean": res["rate_before_hz"].mean(1).tolist()}


def plot_xor(block: dict, *, reward_delay_ms: int = 0, title: str = ""):
    """Learning curves (seed mean: target-1 patterns solid, target-0 dashed) of MSTDP and MSTDPET at one
    reward delay, and the success rate of every condition. ``block``: :func:`summarise_run` output (or
    one coding of ``results/florian_xor.json``). Returns the Figure."""
    import matplotlib.pyplot as plt

    rows = block["rows"]
    delays = sorted({r["reward_delay_ms"] for r in rows})
    if reward_delay_ms not in delays:
        raise ValueError(f"reward_delay_ms must be one of {delays}, got {reward_delay_ms}")
    epochs = np.asarray(block["epochs"])
    curves = np.asarray(block["curve_hz_mean"])  # [C, points, 4]
    target = np.array(XOR_TARGETS, dtype=bool)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    for c, r in enumerate(rows):
        if r["reward_delay_ms"] != reward_delay_ms:
            continue
        color = RULE_COLORS[r["rule"]]
        ax.plot(epochs, curves[c][:, target].mean(1), color=color, lw=2, label=f"{r['rule'].upper()}: (0,1), (1,0)")
        ax.plot(epochs, curves[c][:, ~target].mean(1), color=color, lw=2, ls="--",
                label=f"{r['rule'].upper()}: (0,0), (1,1)")
    ax.set_xlabel("epoch (4 presentations)")
    ax.set_ylabel("output rate (Hz)")
    delay_txt = "immediate reward" if reward_delay_ms == 0 else f"reward {reward_delay_ms} ms late"
    ax.set_title(f"{title}{delay_txt}: seed mean", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.22), ncol=2, frameon=False)
    x = np.arange(len(rows))
    succ = [100 * r["success"] for r in rows]
    err = np.array([[100 * (r["success"] - r["success_ci95"][0]) for r in rows],
                    [100 * (r["success_ci95"][1] - r["success"]) for r in rows]])
    bx.bar(x, succ, color=[RULE_COLORS[r["rule"]] for r in rows],
           alpha=1.0, edgecolor="k", hatch=None)
    for xi, r in zip(x, rows):
        if r["reward_delay_ms"]:
            bx.bar(xi, 100 * r["success"], color="none", edgecolor="k", hatch="//")
    bx.errorbar(x, succ, yerr=err, fmt="none", ecolor="k", capsize=3)
    bx.set_xticks(x)
    bx.set_xticklabels([f"{r['rule'].upper()}\n" + ("0 ms" if r["reward_delay_ms"] == 0 else f"{r['reward_delay_ms']} ms")
                        for r in rows], fontsize=8)
    bx.set_xlabel("rule and reward delay")
    bx.set_ylabel(f"XOR solved (% of {rows[0]['n']} seeds)")
    bx.set_ylim(0, 105)
    bx.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def load_study(path=None) -> dict:
    """``results/florian_xor.json`` (the committed study of ``scripts/florian_xor_study.py``)."""
    import json
    from pathlib import Path

    from ..utils import repo_root

    if path is None:
        root = repo_root(Path(__file__).parent)
        path = Path(root if root is not None else ".") / "results" / "florian_xor.json"
    return json.loads(Path(path).read_text())


def xor_panel(coding: str = "rate", reward_delay_ms: int = 0, *, study: dict | None = None):
    """Notebook 01's XOR widget: re-plots the committed study (no simulation)."""
    study = load_study() if study is None else study
    check_choice("coding", coding, tuple(study["codings"]))
    return plot_xor(study["codings"][coding], reward_delay_ms=int(reward_delay_ms), title=f"{coding} coding, ")
