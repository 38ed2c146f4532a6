"""Notebook 06's three-factor experiment: a pattern-to-action task whose reward arrives late, and its figures.

The task (:func:`run_delayed_reward_task`), a small pattern-to-action problem: each trial one of
``n_patterns`` input groups fires at a high rate for ``stimulus_ms`` (all inputs fire at a background
rate always); ``n_actions`` LIF output neurons with lateral inhibition compete; the action is the
output with the most spikes during the stimulus; the reward (+1 correct, -1 wrong, 0 no spike)
arrives ``delay_ms`` *after* the stimulus ends, while background activity keeps tagging random
synapses. Action a is correct for pattern p when a = p mod n_actions. The network learns with the
dopamine-modulated STDP of :mod:`snnlab.learning.reward` (``rule="mstdpet"``, or the no-trace control
``"mstdp"``); :func:`plot_learning` and :func:`plot_trial` draw the notebook's figures.
Used by ``notebooks/06_three_factor_homeostasis_stp.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from ..utils import progress as progress_bar

from ..encoding import poisson_spikes
from ..learning.reward import DEFAULT_RULE, RULES, DopamineParams, rstdp_init, rstdp_step
from ..neurons import LIFParams, lif_step
from ..plasticity.florian import FlorianParams
from ..utils import check_choice, check_float, check_int

__all__ = ["DelayedRewardTask", "run_delayed_reward_task", "weight_change_split", "plot_learning", "plot_credit",
           "plot_trial", "SCORE_WINDOW", "RULE_COLORS"]

#: Trials at the end of a run over which notebook 06 scores a rule (its table and its learning curve).
SCORE_WINDOW = 20
#: One colour per rule in every figure of notebook 06.
RULE_COLORS = {"mstdpet": "tab:blue", "mstdp": "tab:red", "frozen": "tab:grey"}


# --------------------------------------------------------------------------- the delayed-reward task
@dataclass(frozen=True)
class DelayedRewardTask:
    """A pattern-to-action task with delayed reward.

    Attributes:
        n_inputs: input neurons (split evenly into ``n_patterns`` groups). n_patterns, n_actions: >= 2.
        stimulus_ms: how long a pattern's group fires at ``stimulus_rate_hz``.
        delay_ms: time from the end of the stimulus to the reward.
        iti_ms: time after the reward before the next trial (dopamine decays meanwhile).
        stimulus_rate_hz, background_rate_hz: input rates during the stimulus / always.
        w_init_max: initial weights are uniform in [0, w_init_max].
        inhibition: lateral inhibition: each output spike subtracts this from the other outputs' v.
        dt_ms: time step.
    """

    n_inputs: int = 60
    n_patterns: int = 2
    n_actions: int = 2
    stimulus_ms: float = 50.0
    delay_ms: float = 200.0
    iti_ms: float = 300.0
    stimulus_rate_hz: float = 60.0
    background_rate_hz: float = 2.0
    w_init_max: float = 0.08
    inhibition: float = 2.0
    dt_ms: float = 1.0

    def __post_init__(self):
        check_int("n_inputs", self.n_inputs, minimum=2)
        check_int("n_patterns", self.n_patterns, minimum=2, maximum=self.n_inputs)
        check_int("n_actions", self.n_actions, minimum=2)
        for name in ("stimulus_ms", "dt_ms"):
            check_float(name, getattr(self, name), minimum=0.0, strict_minimum=True)
        for name in ("delay_ms", "iti_ms", "background_rate_hz", "w_init_max", "inhibition"):
            check_float(name, getattr(self, name), minimum=0.0)
        check_float("stimulus_rate_hz", self.stimulus_rate_hz, minimum=0.0, maximum=1000.0 / self.dt_ms)


@torch.no_grad()
def run_delayed_reward_task(*, task: DelayedRewardTask = DelayedRewardTask(), n_trials: int = 150,
                            rule: str = "mstdpet", params: FlorianParams = DEFAULT_RULE,
                            dopamine: DopamineParams = DopamineParams(), lif: LIFParams = LIFParams(),
                            seed: int = 0, record_trials: tuple[int, ...] = (), progress: bool = True,
                            device: str | torch.device = "cpu") -> dict:
    """Train the pattern-to-action network with delayed reward; returns the learning record.

    The network, its weights and the rule's traces live on ``device``; every random number (initial
    weights, patterns, input spikes, tie breaks) is drawn on the CPU from ``seed`` and moved, so every
    device sees the same trials. The record comes back on the CPU.

    Returns a dict: ``correct`` [n_trials] (1 correct, 0 wrong or no spike), ``reward`` [n_trials],
    ``pattern`` and ``action`` [n_trials] (action -1: no output spike), ``w`` (final ``[n_actions,
    n_inputs]``), ``w0``, ``group_w`` [n_trials + 1, n_actions, n_patterns] (mean weight from each
    input group to each output, before and after every trial), ``group_dw_before_reward``
    [n_trials, n_actions, n_patterns] (the part of each trial's change of ``group_w`` made before its
    own reward arrives: the dopamine then is what is left of earlier trials' rewards),
    ``dopamine_at_stimulus`` [n_trials] (d at the first step of each trial), and for each trial index in
    ``record_trials`` a dict with ``pre`` [T, n_inputs], ``post`` [T, n_actions], ``dopamine`` [T],
    ``z_group`` [T, n_actions, n_patterns] (mean eligibility per group) under ``trials[k]``.
    """
    check_int("n_trials", n_trials, minimum=1)
    check_choice("rule", rule, RULES)
    check_int("seed", seed, minimum=0)
    dt = task.dt_ms
    gen = torch.Generator().manual_seed(seed)
    n_in, n_out = task.n_inputs, task.n_actions
    group = torch.arange(n_in) * task.n_patterns // n_in            # input neuron -> its pattern group
    onehot = torch.nn.functional.one_hot(group, task.n_patterns).float()   # [n_in, n_patterns]
    group_mean = (onehot / onehot.sum(dim=0)).to(device)
    w = (task.w_init_max * torch.rand(n_out, n_in, generator=gen)).to(device)
    w0 = w.clone()
    steps_stim = int(round(task.stimulus_ms / dt))
    steps_delay = int(round(task.delay_ms / dt))
    steps_iti = int(round(task.iti_ms / dt))
    n_steps = steps_stim + steps_delay + steps_iti
    reward_step = steps_stim + steps_delay                         # reward delivered at this step
    inhibit = (task.inhibition * (1.0 - torch.eye(n_out))).to(device)
    state = rstdp_init(1, n_in, n_out, rule=rule, device=device)
    v = torch.zeros(1, n_out, device=device)
    alpha = lif.decay(dt)
    patterns = torch.randint(task.n_patterns, (n_trials,), generator=gen)
    correct = torch.zeros(n_trials)
    rewards = torch.zeros(n_trials)
    actions = torch.full((n_trials,), -1, dtype=torch.long)
    group_w = [w @ group_mean]
    group_dw_before_reward = torch.zeros(n_trials, n_out, task.n_patterns)
    dopamine_at_stimulus = torch.zeros(n_trials)
    trials = {}
    for trial in progress_bar(range(n_trials), disable=not progress, desc=f"R-STDP ({rule})", leave=False):
        p = int(patterns[trial])
        rate = torch.full((n_steps, 1, n_in), task.background_rate_hz)
        rate[:steps_stim, 0, group == p] = task.stimulus_rate_hz
        pre_all = poisson_spikes(rate, dt_ms=dt, generator=gen).to(device)   # the whole trial at once
        counts = torch.zeros(n_out, device=device)
        rec = trial in record_trials
        log = {"pre": [], "post": [], "dopamine": [], "z_group": []} if rec else None
        r_trial = 0.0
        post = torch.zeros(1, n_out, device=device)
        w_trial_start = w
        for k in range(n_steps):
            pre = pre_all[k]
            # lateral inhibition from the previous step's output spikes, then the feed-forward input
            post, _, v = lif_step(pre @ w.T - post @ inhibit, v, alpha=alpha, v_threshold=lif.v_threshold,
                                  reset=lif.reset)
            if k < steps_stim:
                counts += post[0]
            pulse = 0.0
            if k == reward_step:
                if counts.max() > 0:
                    winners = torch.nonzero(counts == counts.max()).flatten()
                    a = int(winners[torch.randint(len(winners), (1,), generator=gen)])
                    actions[trial] = a
                    r_trial = 1.0 if a == p % n_out else -1.0
                pulse = r_trial
            dw, state = rstdp_step(pre, post, state, w, reward_pulse=pulse, rule=rule, params=params,
                                   dopamine=dopamine, dt=dt)
            w = w + dw
            if k == 0:
                dopamine_at_stimulus[trial] = float(state.dopamine)
            if k == reward_step - 1:
                group_dw_before_reward[trial] = ((w - w_trial_start) @ group_mean).cpu()
            if rec:
                log["pre"].append(pre[0])
                log["post"].append(post[0])
                log["dopamine"].append(state.dopamine.clone())
                z = state.florian.z if rule == "mstdpet" else torch.zeros(n_out, n_in, device=device)
                log["z_group"].append(z @ group_mean)
        rewards[trial] = r_trial
        correct[trial] = float(r_trial > 0)
        group_w.append(w @ group_mean)
        if rec:
            trials[trial] = {key: torch.stack(val).cpu() for key, val in log.items()}
            trials[trial].update(pattern=p, reward_step=reward_step, steps_stim=steps_stim)
    return {"correct": correct, "reward": rewards, "pattern": patterns, "action": actions, "w": w.cpu(),
            "w0": w0.cpu(), "group_w": torch.stack(group_w).cpu(), "group_dw_before_reward": group_dw_before_reward,
            "dopamine_at_stimulus": dopamine_at_stimulus, "trials": trials, "rule": rule}


# --------------------------------------------------------------------------- analysis and figures (notebook 06)
#: Colours of the four input-group -> action pairs (not a rule's colour: those are RULE_COLORS).
PAIR_COLORS = ("tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "k")


def weight_change_split(result: dict) -> tuple[float, float]:
    """Where a run's learning happened: ``(before each trial's reward, from the reward on)``.

    Sums of |change of the group-mean weights| (``group_w``) over trials and (action, pattern) pairs:
    the first part is made during the stimulus and the delay, before the trial's own reward (the
    dopamine then is only what is left of earlier trials' rewards); the second from the reward step to
    the end of the trial's inter-trial interval.
    """
    before = result["group_dw_before_reward"]
    after = result["group_w"][1:] - result["group_w"][:-1] - before
    return float(before.abs().sum()), float(after.abs().sum())


def _rule_color(res: dict) -> str:
    return RULE_COLORS.get(res.get("rule", ""), "k")


def plot_learning(results: dict, *, window: int = SCORE_WINDOW, linestyles: dict | None = None):
    """Left: running fraction correct per run (over the last ``window`` trials, as the notebook's table),
    coloured by rule (``RULE_COLORS``), with an optional line style per run label; right: mean weight
    from each pattern group to each action for the first run."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for label, res in results.items():
        c = res["correct"].numpy()
        k = min(window, len(c))
        running = [c[max(0, i - k + 1):i + 1].mean() for i in range(len(c))]
        ax1.plot(range(1, len(c) + 1), running, label=label, color=_rule_color(res),
                 linestyle=(linestyles or {}).get(label, "-"))
    ax1.axhline(0.5, color="grey", linestyle=":", label="chance (0.5)")
    ax1.set_xlabel("trial")
    ax1.set_ylabel(f"fraction correct (last {window} trials)")
    ax1.set_ylim(-0.02, 1.02)
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.25), ncol=2, frameon=False)
    first = next(iter(results.values()))
    gw = first["group_w"]
    n_pat = gw.shape[2]
    for a in range(gw.shape[1]):
        for p in range(n_pat):
            ax2.plot(gw[:, a, p], label=f"pattern {p} -> action {a}", color=PAIR_COLORS[(a * n_pat + p) % len(PAIR_COLORS)],
                     linestyle="-" if a == p % gw.shape[1] else "--")
    ax2.set_xlabel("trial")
    ax2.set_ylabel("mean weight (threshold units)")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_title(next(iter(results)), fontsize=9)
    ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_credit(results: dict):
    """Bars: each run's total |weight change| before and after each trial's reward (:func:`weight_change_split`)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    names = list(results)
    width = 0.38
    for i, name in enumerate(names):
        before, after = weight_change_split(results[name])
        color = _rule_color(results[name])
        ax.bar(i - width / 2, before, width, color=color, alpha=0.35, hatch="//", edgecolor=color,
               label="before the trial's reward\n(earlier trials' dopamine)" if i == 0 else None)
        ax.bar(i + width / 2, after, width, color=color, edgecolor=color,
               label="from the trial's own reward on" if i == 0 else None)
    ax.set_xticks(range(len(names)), names)
    ax.set_yscale("log")
    ax.set_ylabel("total |change of mean weights|\n(threshold units, log)")
    ax.set_xlabel("rule")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_trial(trial: dict, *, dt: float = 1.0):
    """One recorded trial: input raster, output raster, dopamine, and the eligibility of each group."""
    import matplotlib.pyplot as plt

    from ..plots import raster

    fig, axes = plt.subplots(4, 1, figsize=(9, 6.5), sharex=True,
                             gridspec_kw={"height_ratios": [2, 0.8, 1, 1.4]})
    raster(trial["pre"], dt=dt, ax=axes[0], markersize=3)
    axes[0].set_ylabel("input neuron")
    axes[0].axvspan(0, trial["steps_stim"] * dt, color="tab:green", alpha=0.1, label="stimulus")
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    raster(trial["post"], dt=dt, ax=axes[1], markersize=6, color="tab:red")
    axes[1].set_ylabel("action")
    t = torch.arange(trial["dopamine"].shape[0]) * dt
    axes[2].plot(t, trial["dopamine"], color="tab:purple")
    axes[2].set_ylabel("dopamine d")
    z = trial["z_group"]
    n_pat = z.shape[2]
    for a in range(z.shape[1]):
        for p in range(n_pat):
            axes[3].plot(t, z[:, a, p], label=f"pattern {p} -> action {a}",
                         color=PAIR_COLORS[(a * n_pat + p) % len(PAIR_COLORS)])
    axes[3].axvline(trial["reward_step"] * dt, color="k", linestyle=":", label="reward")
    axes[3].set_ylabel("mean z (1/ms)")
    axes[3].set_xlabel("time in trial (ms)")
    axes[3].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for ax in axes[:3]:
        ax.set_xlabel("")
    fig.tight_layout()
    return fig
