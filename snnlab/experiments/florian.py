"""Notebook 01's experiments with the Florian (2007) rules: the worked example, a reward-learning network,
and their figures.

* :func:`run_seed_example`: the one-synapse worked example of DESIGN.md section 4 (the "seed figure"):
  STDP, MSTDP and MSTDPET side by side, in both orderings and trace modes; :func:`plot_seed_figure`,
  :func:`plot_orderings`, :func:`seed_values_table` and the interactive :func:`seed_figure_panel` show it.
* :func:`run_reward_task`: a small rate-coded network in the spirit of Florian 2007 section 4, trained
  with MSTDP or MSTDPET through :class:`~snnlab.plasticity.florian.FlorianLearner`;
  :func:`plot_reward_task` draws its learning curves.

The rules themselves (parameters, pure step functions, the stateful wrappers) are in
:mod:`snnlab.plasticity.florian`. Reference: R. V. Florian (2007), Neural Computation 19(6):1468-1502,
doi:10.1162/neco.2007.19.6.1468. Used by notebook ``01_florian_stdp``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from ..utils import progress as progress_bar

from ..plasticity.florian import ORDERINGS, RULES, FlorianLearner, FlorianParams, simulate
from ..plasticity.traces import TRACE_MODES
from ..utils import check_choice, check_float, check_int, check_positive, limit_threads

# The worked example of DESIGN.md section 4 (the "seed figure"): spike times in ms (= steps, dt = 1 ms).
SEED_PRE_SPIKES_MS = (10, 85, 115, 135)
SEED_POST_SPIKES_MS = (15, 75, 110, 140)
SEED_REWARD_SWITCH_MS = 100  # r = +1 for t <= 100, -1 after
SEED_N_STEPS = 200
SEED_W0 = 0.2


# ============================================================================ the worked example
def _spike_train(times_ms: Sequence[float], n_steps: int, dt: float, name: str) -> np.ndarray:
    s = np.zeros(n_steps + 1)
    for t in times_ms:
        k = int(round(check_float(name, t, minimum=dt) / dt))
        if k > n_steps:
            raise ValueError(f"{name}: spike time {t} ms lies beyond the run ({n_steps} steps of {dt} ms)")
        s[k] = 1.0
    return s


def run_seed_example(
    ordering: str = "same-step",
    trace_mode: str = "all-to-all",
    *,
    pre_times_ms: Sequence[float] = SEED_PRE_SPIKES_MS,
    post_times_ms: Sequence[float] = SEED_POST_SPIKES_MS,
    reward_switch_ms: float = SEED_REWARD_SWITCH_MS,
    a_plus: float = 0.2,
    a_minus: float = -0.2,
    tau_plus_ms: float = 20.0,
    tau_minus_ms: float = 20.0,
    tau_z_ms: float = 25.0,
    gamma: float = 1.0,
    w0: float = SEED_W0,
    n_steps: int = SEED_N_STEPS,
    dt: float = 1.0,
    device: str | torch.device = "cpu",
) -> dict[str, np.ndarray]:
    """The one-synapse worked example (the seed figure): STDP, MSTDP and MSTDPET side by side.

    Defaults: pre spikes at 10, 85, 115, 135 ms; post spikes at 15, 75, 110, 140 ms; r(t) = +1 for
    t <= 100 ms and -1 after; A+ = 0.2, A- = -0.2, gamma = 1, tau+ = tau- = 20 ms, tau_z = 25 ms,
    w0 = 0.2, dt = 1 ms, 200 steps, no bounds. Computed in float64.

    Every array has ``n_steps + 1`` (= 201) entries; **index k is time t = k dt, the state after step k**
    (index 0 = the initial state: traces, z and the changes are zero, weights w0). ``pre[k]``/``post[k]``
    are the spikes of step k and ``reward[k]`` is r(k dt) (``reward[0]`` is +1 by the same rule).

    * ``ordering="same-step"``: at step k the traces take the spikes of step k, then
      ``zeta(k) = x_pre[k] post[k] + x_post[k] pre[k]`` and ``w[k] = w[k-1] + gamma r[k] zeta(k)``
      (MSTDPET: ``eligibility[k] = eligibility[k-1] e^{-dt/tau_z} + zeta(k)/tau_z`` and
      ``w[k] = w[k-1] + gamma dt r[k] eligibility[k]``). Check: ``w_stdp[15] = 0.2 + 0.2 e^{-0.25}``.
    * ``ordering="delayed"``: at step k the weight moves first, with the previous step's point
      eligibility: ``w[k] = w[k-1] + gamma r[k] zeta(k-1)``;
      ``eligibility[k] = eligibility[k-1] e^{-dt/tau_z} + zeta(k-1)/tau_z`` and
      ``w[k] = w[k-1] + gamma dt r[k] eligibility[k]``; then the traces take the spikes of step k.
      ``x_pre``/``x_post`` are the same as in the same-step ordering, ``w_stdp`` is shifted one step
      later (``w_stdp[16] = 0.2 + 0.2 e^{-0.25}``) and the reward meets the eligibility one step later.

    Args:
        ordering: ``"same-step"`` or ``"delayed"``.
        trace_mode: ``"all-to-all"`` or ``"nearest"``.
        pre_times_ms, post_times_ms, reward_switch_ms, a_plus, a_minus, tau_plus_ms, tau_minus_ms,
        tau_z_ms, gamma, w0, n_steps, dt: keyword-only overrides of the example (used by the widgets).
        device: where the three rules run (a [1, 1] synapse: the CPU is the fast place for it).

    Returns:
        dict of float64 numpy arrays, on the CPU whatever ``device``: ``t`` (ms), ``pre``, ``post``,
        ``reward``, ``x_pre`` (P+), ``x_post`` (P-, <= 0), ``eligibility`` (MSTDPET's z), ``w_stdp``,
        ``w_mstdp``, ``w_mstdpet``.
    """
    check_choice("ordering", ordering, ORDERINGS)
    check_choice("trace_mode", trace_mode, TRACE_MODES)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    dt = check_positive("dt", dt)
    check_float("reward_switch_ms", reward_switch_ms)
    check_float("w0", w0)
    params = FlorianParams(a_plus=a_plus, a_minus=a_minus, tau_plus_ms=tau_plus_ms, tau_minus_ms=tau_minus_ms,
                           tau_z_ms=tau_z_ms, gamma=gamma, ordering=ordering, trace_mode=trace_mode)
    pre = _spike_train(pre_times_ms, n_steps, dt, "pre_times_ms")
    post = _spike_train(post_times_ms, n_steps, dt, "post_times_ms")
    t = np.arange(n_steps + 1) * dt
    reward = np.where(t <= reward_switch_ms + 1e-9 * dt, 1.0, -1.0)

    def as_tensor(x):  # steps 1..n_steps as [T, B=1, n=1]
        return torch.as_tensor(x[1:], dtype=torch.float64, device=device).reshape(n_steps, 1, 1)

    def history(x: torch.Tensor) -> np.ndarray:
        return x[:, 0, 0].cpu().numpy().copy()

    w_init = torch.full((1, 1), float(w0), dtype=torch.float64, device=device)
    runs = {}
    with limit_threads(1):
        for rule in RULES:
            r = None if rule == "stdp" else torch.as_tensor(reward[1:], dtype=torch.float64, device=device)
            runs[rule] = simulate(rule, as_tensor(pre), as_tensor(post), w_init, reward=r, params=params, dt=dt)
    et = runs["mstdpet"]
    return {
        "t": t,
        "pre": pre,
        "post": post,
        "reward": reward,
        "x_pre": history(et.x_pre),
        "x_post": history(et.x_post),
        "eligibility": history(et.z),
        "w_stdp": history(runs["stdp"].w),
        "w_mstdp": history(runs["mstdp"].w),
        "w_mstdpet": history(et.w),
    }


# ============================================================================ a network experiment
# Florian 2007 section 4 trains small networks on XOR. Our scaled-down XOR (20+20 inputs, 20 hidden, a
# few hundred trials) collapses to a silent output on a CPU budget, so the notebook's default task is the
# simpler two-pattern discrimination below; XOR stays available as an exercise (patterns=XOR_PATTERNS).
XOR_PATTERNS = ((0, 0), (0, 1), (1, 0), (1, 1))
XOR_TARGETS = (0, 1, 1, 0)
DISCRIMINATION_PATTERNS = ((1, 0), (0, 1))
DISCRIMINATION_TARGETS = (1, 0)


@dataclass(frozen=True)
class RewardTaskConfig:
    """A small rate-coded reward-learning network in the spirit of Florian 2007 section 4 (CPU-sized).

    Input: two groups of ``n_per_input`` Poisson neurons, firing at ``rate_hz`` for a 1 and silent for
    a 0. Hidden: ``n_hidden`` LIF neurons (spikingjelly ``LIFNode``), output: one LIF neuron; both
    layers plastic (``plastic_hidden``), weights hard-bounded to ``[-w_max, w_max]``. The P patterns
    (default: "fire for (1, 0), stay silent for (0, 1)"; ``XOR_PATTERNS``/``XOR_TARGETS`` for XOR) run
    in parallel as a batch of P sharing the weights. Reward at every step and for every pattern
    (Florian's scheme): +1 when the output spikes and the target is 1, -1 when it spikes and the
    target is 0, else 0.

    Attributes:
        n_per_input: input neurons per input bit.  n_hidden: hidden neurons.
        rate_hz: input rate for a 1 (Hz).  trial_ms: trial length (ms).  n_trials: training trials.
        n_test_trials: trials (learning paused) to measure the firing rates before and after training.
        tau_m_ms: membrane time constant (ms).  noise_std: std of a Gaussian current added each step
            (exploration).  w_max: weight bound.  w_in_init: input->hidden weights start uniform in
            ``[0, w_in_init]``.  w_out_init_low, w_out_init_high: hidden->output start uniform in this
            range.  dt: step (ms).
    """

    n_per_input: int = 20
    n_hidden: int = 20
    rate_hz: float = 40.0
    trial_ms: int = 200
    n_trials: int = 30
    n_test_trials: int = 5
    tau_m_ms: float = 10.0
    noise_std: float = 0.1
    w_max: float = 1.0
    w_in_init: float = 0.2
    w_out_init_low: float = -0.1
    w_out_init_high: float = 0.4
    plastic_hidden: bool = True
    patterns: tuple = DISCRIMINATION_PATTERNS
    targets: tuple = DISCRIMINATION_TARGETS
    dt: float = 1.0

    def __post_init__(self):
        if not self.w_out_init_low < self.w_out_init_high:
            raise ValueError("w_out_init_low must be < w_out_init_high")
        check_float("w_in_init", self.w_in_init, minimum=0.0)
        for name in ("n_per_input", "n_hidden", "trial_ms", "n_trials", "n_test_trials"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("rate_hz", "tau_m_ms", "w_max", "dt"):
            check_positive(name, getattr(self, name))
        check_float("noise_std", self.noise_std, minimum=0.0)
        if len(self.patterns) != len(self.targets) or not self.patterns:
            raise ValueError("patterns and targets must be non-empty and of equal length")
        if any(len(p) != 2 or set(p) - {0, 1} for p in self.patterns) or set(self.targets) - {0, 1}:
            raise ValueError("patterns must be pairs of 0/1 bits and targets 0/1")
        if self.rate_hz * self.dt / 1000.0 > 1.0:
            raise ValueError(f"rate_hz * dt must be <= 1000 (at most one spike per step), got {self.rate_hz}")


def _reward_trial(net, learners, gen, cfg: RewardTaskConfig, *, learn: bool) -> torch.Tensor:
    """One trial of all P patterns (batch P); returns output spike counts ``[P]`` on the network's device.

    Spikes and noise are drawn from the CPU generator ``gen`` and then moved, so every device gets
    the same random numbers."""
    from spikingjelly.activation_based import functional

    lin_ih, lif_h, lin_ho, lif_o = net
    device = lin_ih.weight.device
    functional.reset_net(lif_h)
    functional.reset_net(lif_o)
    bits = torch.tensor(cfg.patterns, dtype=torch.float32)  # [P, 2]
    n_pat = bits.shape[0]
    p_fire = (bits.repeat_interleave(cfg.n_per_input, dim=1) * cfg.rate_hz * cfg.dt / 1000.0)  # [4, n_in]
    target = torch.tensor(cfg.targets, dtype=torch.float32, device=device)
    counts = torch.zeros(n_pat, device=device)
    n_steps = int(round(cfg.trial_ms / cfg.dt))
    for learner in learners:
        learner.reset()
        if learn:
            learner.resume()
        else:
            learner.pause()
    for _ in range(n_steps):
        x = (torch.rand(p_fire.shape, generator=gen) < p_fire).float().to(device)
        h = lif_h(lin_ih(x) + cfg.noise_std * torch.randn(n_pat, lin_ih.out_features, generator=gen).to(device))
        o = lif_o(lin_ho(h) + cfg.noise_std * torch.randn(n_pat, 1, generator=gen).to(device))
        counts += o[:, 0]
        if learn:
            reward = o[:, 0] * (2.0 * target - 1.0)  # +1 right spike, -1 wrong spike, 0 silent
            for learner in learners:
                learner.step(reward)
    return counts


def run_reward_task(
    rule: str = "mstdpet",
    *,
    params: FlorianParams | None = None,
    config: RewardTaskConfig = RewardTaskConfig(),
    seed: int = 0,
    progress: bool = False,
    device: str | torch.device = "cpu",
) -> dict:
    """Train the small network of :class:`RewardTaskConfig` with MSTDP or MSTDPET; return rates and curves.

    The same ``seed`` gives the same initial weights, input spikes and noise, so MSTDP and MSTDPET
    runs with one seed differ only by the rule.

    Args:
        rule: ``"mstdp"`` or ``"mstdpet"``.
        params: :class:`FlorianParams` (``w_min``/``w_max`` are set from ``config.w_max``); default
            ``gamma`` 0.001 for MSTDP and 0.01 for MSTDPET (a rewarded step moves MSTDPET's weight by
            ~gamma zeta/tau_z, so it needs a larger gamma for a comparable speed).
        config: :class:`RewardTaskConfig`.  seed: the one seed.  progress: tqdm bar over trials.
        device: where the network runs; weights, spikes and noise are drawn on the CPU (from ``seed``)
            and moved there, so every device starts from the same numbers.

    Returns:
        dict (numpy arrays, on the CPU) with ``counts`` ``[n_trials, P]`` (output spikes per training
        trial and pattern), ``rate_before_hz`` and ``rate_after_hz`` ``[P]`` (learning paused),
        ``patterns``, ``targets``, ``solved`` (every target-1 rate above every target-0 rate after
        training), ``margin_hz`` (lowest target-1 rate minus highest target-0 rate, after training),
        ``w_hidden_out``.
    """
    from spikingjelly.activation_based import neuron

    check_choice("rule", rule, ("mstdp", "mstdpet"))
    check_int("seed", seed, minimum=0)
    if not isinstance(config, RewardTaskConfig):
        raise ValueError(f"config must be an RewardTaskConfig, got {type(config).__name__}")
    if params is None:
        params = FlorianParams(gamma=0.001 if rule == "mstdp" else 0.01)
    params = FlorianParams(**{**params.__dict__, "w_min": -config.w_max, "w_max": config.w_max})
    gen = torch.Generator().manual_seed(seed)
    n_in = 2 * config.n_per_input
    lin_ih = nn.Linear(n_in, config.n_hidden, bias=False)
    lin_ho = nn.Linear(config.n_hidden, 1, bias=False)
    with torch.no_grad():
        # Positive-leaning initial weights so that hidden and output neurons fire at the start (a silent
        # output never gets a reward, so it could never learn).
        lin_ih.weight.copy_(torch.rand(config.n_hidden, n_in, generator=gen) * config.w_in_init)
        lo, hi = config.w_out_init_low, config.w_out_init_high
        lin_ho.weight.copy_(lo + (hi - lo) * torch.rand(1, config.n_hidden, generator=gen))
    lin_ih.to(device)
    lin_ho.to(device)
    tau_steps = config.tau_m_ms / config.dt
    lif_h = neuron.LIFNode(tau=tau_steps, decay_input=False, v_threshold=1.0, v_reset=0.0)
    lif_o = neuron.LIFNode(tau=tau_steps, decay_input=False, v_threshold=1.0, v_reset=0.0)
    net = (lin_ih, lif_h, lin_ho, lif_o)
    per = rule == "mstdpet"
    learners = [FlorianLearner(lin_ho, lif_o, rule=rule, params=params, dt=config.dt, per_sample_eligibility=per)]
    if config.plastic_hidden:
        learners.append(FlorianLearner(lin_ih, lif_h, rule=rule, params=params, dt=config.dt,
                                       per_sample_eligibility=per))
    seconds = config.trial_ms / 1000.0
    try:
        with torch.no_grad(), limit_threads(1):
            before = torch.stack([_reward_trial(net, learners, gen, config, learn=False)
                                  for _ in range(config.n_test_trials)]).mean(0) / seconds
            counts = []
            for _ in progress_bar(range(config.n_trials), disable=not progress, desc=f"reward task {rule}"):
                counts.append(_reward_trial(net, learners, gen, config, learn=True))
            after = torch.stack([_reward_trial(net, learners, gen, config, learn=False)
                                 for _ in range(config.n_test_trials)]).mean(0) / seconds
    finally:
        for learner in learners:
            learner.close()
    target = np.array(config.targets, dtype=bool)
    after_np = after.cpu().numpy().astype(float)
    margin = float(after_np[target].min() - after_np[~target].max())
    return {
        "rule": rule,
        "counts": torch.stack(counts).cpu().numpy().astype(float),
        "rate_before_hz": before.cpu().numpy().astype(float),
        "rate_after_hz": after_np,
        "patterns": np.array(config.patterns),
        "targets": np.array(config.targets),
        "margin_hz": margin,
        "solved": margin > 0,
        "w_hidden_out": lin_ho.weight.detach().cpu().numpy().copy(),
    }


# ============================================================================ figures
def plot_seed_figure(res: dict, *, title: str | None = None):
    """The 8-panel figure of the worked example: pre spikes, post spikes, traces, reward, eligibility,
    and w for STDP, MSTDP, MSTDPET. ``res`` is a :func:`run_seed_example` result. Returns the Figure."""
    import matplotlib.pyplot as plt

    t = res["t"]
    # 6.2 in tall: printed at 72 % (legends 6 pt) it takes under half an A4 page, so it never pushes
    # more than half a page of blank ahead of it; the spike rasters need less height than the curves
    fig, axes = plt.subplots(8, 1, figsize=(7.5, 6.2), sharex=True,
                             gridspec_kw={"height_ratios": [0.55, 0.55, 1, 0.8, 1, 1, 1, 1]})
    panels = [
        ("pre", "pre spikes", "k"), ("post", "post spikes", "k"), (None, "traces", None),
        ("reward", "reward r", "tab:purple"), ("eligibility", "z (MSTDPET)", "tab:green"),
        ("w_stdp", "w STDP", "tab:blue"), ("w_mstdp", "w MSTDP", "tab:orange"), ("w_mstdpet", "w MSTDPET", "tab:red"),
    ]
    for ax, (key, label, color) in zip(axes, panels):
        if key in ("pre", "post"):
            idx = np.flatnonzero(res[key])
            ax.vlines(t[idx], 0, 1, color=color)
            ax.set_yticks([])
        elif key is None:
            ax.plot(t, res["x_pre"], color="tab:blue", label="$P^+$ (pre)")
            ax.plot(t, res["x_post"], color="tab:red", label="$P^-$ (post)")
            ax.axhline(0, color="grey", lw=0.5)
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        elif key == "reward":
            ax.step(t, res[key], where="post", color=color)
            ax.set_ylim(-1.3, 1.3)
        else:
            ax.plot(t, res[key], color=color)
        ax.set_ylabel(label, fontsize="small", rotation=0, ha="right", va="center")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (ms)")
    axes[-1].set_xlim(t[0], t[-1])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_orderings(runs: dict, *, keys: Sequence[str] = ("w_stdp", "w_mstdp", "w_mstdpet")):
    """Weights of several :func:`run_seed_example` results (``{label: res}``) overlaid, one panel per rule."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(3.1 * len(keys), 3), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        for (label, res), style, color in zip(runs.items(), ("-", "--", ":", "-."), ("k", "tab:gray", "tab:olive", "tab:cyan")):
            ax.plot(res["t"], res[key], linestyle=style, color=color, label=label)
        ax.set_title(key.replace("w_", "w ").upper().replace("W ", "w "))
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("weight")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


RULE_COLORS = {"MSTDP": "tab:orange", "MSTDPET": "tab:red"}  # one colour per rule in notebook 01


def plot_reward_task(results: dict):
    """Learning curves (output spikes per trial and pattern) and rates before/after, per rule.

    ``results`` maps a label (``"MSTDP"``, ``"MSTDPET"``) to a :func:`run_reward_task` result; each rule
    keeps its colour of the seed figure (MSTDP orange, MSTDPET red), patterns differ by line style.
    Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(results) + 1, figsize=(3.1 * (len(results) + 1), 3.4))
    for ax, (label, res) in zip(axes, results.items()):
        color = RULE_COLORS.get(label.upper(), "k")
        for k, (pattern, target) in enumerate(zip(res["patterns"], res["targets"])):
            ax.plot(np.arange(1, len(res["counts"]) + 1), res["counts"][:, k], color=color,
                    label=f"{tuple(int(b) for b in pattern)} -> {int(target)}", linestyle="-" if target else "--")
        ax.set_title(label)
        ax.set_xlabel("trial")
        ax.set_ylabel("output spikes / trial")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    ax = axes[-1]
    labels = list(results)
    n_pat = len(next(iter(results.values()))["targets"])
    width = 0.8 / (2 * len(labels))
    for i, label in enumerate(labels):
        res = results[label]
        color = RULE_COLORS.get(label.upper(), "k")
        x = np.arange(n_pat)
        ax.bar(x + (2 * i) * width, res["rate_before_hz"], width, color=color, alpha=0.35, label=f"{label} before")
        ax.bar(x + (2 * i + 1) * width, res["rate_after_hz"], width, color=color, label=f"{label} after")
    first = next(iter(results.values()))
    ax.set_xticks(np.arange(n_pat) + 0.4 - width / 2)
    ax.set_xticklabels([f"{tuple(int(b) for b in p)}->{int(t)}" for p, t in zip(first["patterns"], first["targets"])],
                       fontsize=9)
    ax.set_xlabel("input pattern -> target")
    ax.set_ylabel("output rate (Hz)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def rate_drift(rule: str, gamma: float, *, pre_hz: float = 40.0, post_hz: float = 100.0, n_steps: int = 2000,
               n_samples: int = 200, seed: int = 0, device: str | torch.device = "cpu") -> float:
    """Mean weight change per rewarded post spike when pre and post fire as *independent* Poisson trains.

    The reward is +1 at every post spike (what a target-1 pattern earns), 0 otherwise, so the result is
    the part of learning that needs no causal pre -> post relation at all: a rate-driven drift. For
    MSTDP it is about ``gamma E[P+] = gamma p / (1 - e^{-dt/tau+})`` (p = pre_hz dt / 1000); for MSTDPET
    about ``gamma E[P+] / tau_z`` (only the same-step part of z correlates with the reward).
    Uses :func:`snnlab.plasticity.florian.simulate` on ``n_samples`` independent synapses.
    """
    check_choice("rule", rule, ("mstdp", "mstdpet"))
    gen = torch.Generator().manual_seed(seed)
    pre = (torch.rand(n_steps, n_samples, 1, generator=gen) < pre_hz / 1000.0).double()
    post = (torch.rand(n_steps, n_samples, 1, generator=gen) < post_hz / 1000.0).double()
    params = FlorianParams(gamma=gamma)
    w0 = torch.zeros(1, 1, dtype=torch.float64)
    with limit_threads(1):
        run = simulate(rule, pre.to(device), post.to(device), w0.to(device), reward=post[:, :, 0].to(device),
                       params=params, per_sample_eligibility=(rule == "mstdpet"), record=False)
    return float(run.w[-1, 0, 0].cpu()) / float(post.sum())


# Spike-time presets for the interactive demo (ms): name -> (pre times, post times).
SPIKE_PRESETS = {
    "seed example": (SEED_PRE_SPIKES_MS, SEED_POST_SPIKES_MS),
    "one causal pair (10 -> 15)": ((10,), (15,)),
    "one acausal pair (15 -> 10)": ((15,), (10,)),
    "bursts (overlapping traces)": ((10, 14, 18, 120, 124), (20, 24, 110, 116, 128)),
}


def seed_figure_panel(
    spikes: str = "seed example",
    ordering: str = "same-step",
    trace_mode: str = "all-to-all",
    a_plus: float = 0.2,
    a_minus: float = -0.2,
    tau_plus_ms: float = 20.0,
    tau_minus_ms: float = 20.0,
    tau_z_ms: float = 25.0,
    reward_switch_ms: float = SEED_REWARD_SWITCH_MS,
):
    """Recompute the worked example (cheap: 3 x 200 scalar steps) and draw its 8-panel figure.

    The plot function of notebook ``01``'s interactive demo; ``spikes`` names a :data:`SPIKE_PRESETS` entry.
    """
    check_choice("spikes", spikes, tuple(SPIKE_PRESETS))
    pre, post = SPIKE_PRESETS[spikes]
    res = run_seed_example(ordering, trace_mode, pre_times_ms=pre, post_times_ms=post,
                           reward_switch_ms=reward_switch_ms, a_plus=a_plus, a_minus=a_minus,
                           tau_plus_ms=tau_plus_ms, tau_minus_ms=tau_minus_ms, tau_z_ms=tau_z_ms)
    return plot_seed_figure(res, title=f"{spikes}: {ordering}, {trace_mode}")


def seed_values_table(runs: dict, times: Sequence[int] = (20, 100, 150, 200)) -> str:
    """A markdown table of w_STDP, w_MSTDP, w_MSTDPET at ``times`` for ``{label: run_seed_example(...)}``."""
    lines = ["| run | t (ms) | w_STDP | w_MSTDP | w_MSTDPET |", "|---|---|---|---|---|"]
    for label, res in runs.items():
        for t in times:
            k = int(np.flatnonzero(np.isclose(res["t"], t))[0])
            lines.append(f"| {label} | {t} | {res['w_stdp'][k]:.6f} | {res['w_mstdp'][k]:.6f} | {res['w_mstdpet'][k]:.6f} |")
    return "\n".join(lines)
