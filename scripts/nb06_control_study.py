"""Notebook 06's no-trace control over seeds: why MSTDP scores far from 0.5 on a single seed.

Runs the delayed-reward task of :mod:`snnlab.experiments.reward` (notebook 06's defaults: 80 trials,
200 ms delay, ITI 300 ms) for each seed under four conditions:

* ``mstdpet``: the eligibility-trace rule (tau_z = 1 s);
* ``mstdp``: the no-trace control;
* ``mstdp_long_iti``: the same control with an ITI long enough that no dopamine is left when the
  next stimulus starts (e^{-iti/tau_da} tiny);
* ``frozen``: no learning at all (gamma = 0): the score of the initial random weights.

For each run it records the score over the last ``SCORE_WINDOW`` trials, the trials without an
output spike, and the share of the total weight change (sum of |change of the group-mean weights|)
made before each trial's own reward (:func:`snnlab.experiments.reward.weight_change_split`), when the
only dopamine is what earlier trials left: |before| / (|before| + |after|). Writes JSON and a markdown table.

    python scripts/nb06_control_study.py --seeds 0 1 2 3 4 5 6 7 8 9 --out results/06_control_study
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from snnlab import utils
from snnlab.experiments import reward as reward_exp
from snnlab.learning import reward

CONDITIONS = ("mstdpet", "mstdp", "mstdp_long_iti", "frozen")


def run_condition(condition: str, *, seed: int, n_trials: int, delay_ms: float, long_iti_ms: float) -> dict:
    """One run; returns its scores and where its weight change happened."""
    task = reward_exp.DelayedRewardTask(delay_ms=delay_ms)
    rule, params = "mstdp", reward.DEFAULT_RULE
    if condition == "mstdpet":
        rule = "mstdpet"
    elif condition == "mstdp_long_iti":
        task = dataclasses.replace(task, iti_ms=long_iti_ms)
    elif condition == "frozen":
        params = dataclasses.replace(params, gamma=0.0)
    start = time.perf_counter()
    res = reward_exp.run_delayed_reward_task(task=task, n_trials=n_trials, rule=rule, params=params, seed=seed,
                                             progress=False)
    window = min(reward_exp.SCORE_WINDOW, n_trials)
    before, after = reward_exp.weight_change_split(res)
    total = before + after
    return {"condition": condition, "seed": seed, "n_trials": n_trials,
            "score_last": float(res["correct"][-window:].mean()), "score_window": window,
            "no_spike_last": int((res["action"][-window:] == -1).sum()),
            "total_abs_dw": total, "before_reward_share": before / total if total > 0 else float("nan"),
            "dopamine_at_stimulus_mean_abs": float(res["dopamine_at_stimulus"][1:].abs().mean()) if n_trials > 1 else 0.0,
            "seconds": time.perf_counter() - start}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for cond in CONDITIONS:
        scores = [r["score_last"] for r in runs if r["condition"] == cond]
        if not scores:
            continue
        shares = [r["before_reward_share"] for r in runs if r["condition"] == cond and r["total_abs_dw"] > 0]
        t = torch.tensor(scores)
        totals = [r["total_abs_dw"] for r in runs if r["condition"] == cond]
        out[cond] = {"n": len(scores), "total_abs_dw_mean": sum(totals) / len(totals), "mean": float(t.mean()), "sd": float(t.std()) if len(scores) > 1 else 0.0,
                     "min": float(t.min()), "max": float(t.max()), "scores": scores,
                     "before_reward_share_mean": float(sum(shares) / len(shares)) if shares else None}
    return out


def markdown(study: dict) -> str:
    lines = ["# Notebook 06: the no-trace control over seeds", "", f"Command: `{study['command']}`", "",
             f"Score: fraction correct over the last {study['runs'][0]['score_window']} of {study['n_trials']} "
             f"trials (chance 0.5 for a network that guesses). Before-reward share: part of the total |weight change| "
             f"made before each trial's own reward (only earlier trials' dopamine is present then).", "",
             "| condition | n seeds | mean | sd | min | max | scores by seed | before-reward share | total abs. weight change |",
             "|---|---|---|---|---|---|---|---|---|"]
    for cond, row in study["summary"].items():
        share = "-" if row["before_reward_share_mean"] is None else f"{row['before_reward_share_mean']:.2f}"
        lines.append(f"| {cond} | {row['n']} | {row['mean']:.2f} | {row['sd']:.2f} | {row['min']:.2f} | "
                     f"{row['max']:.2f} | {', '.join(f'{s:.2f}' for s in row['scores'])} | {share} | "
                     f"{row['total_abs_dw_mean']:.2e} |")
    if study.get("note"):
        lines += ["", study["note"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--n-trials", type=int, default=80)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--long-iti-ms", type=float, default=1000.0)
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    parser.add_argument("--out", type=Path, required=True, help="output stem: writes STEM.json and STEM.md")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in STEM.json (same n_trials and delay) and skip their (seed, condition)")
    args = parser.parse_args(argv)
    utils.limit_threads(1).apply()
    command = "python scripts/nb06_control_study.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    study = {"command": command, "commands": [command], "n_trials": args.n_trials, "delay_ms": args.delay_ms,
             "long_iti_ms": args.long_iti_ms, "versions": utils.package_versions(), "runs": []}
    path = args.out.with_suffix(".json")
    if args.resume and path.exists():
        old = json.loads(path.read_text())
        same = all(old.get(k) == study[k] for k in ("n_trials", "delay_ms", "long_iti_ms"))
        if not same:
            parser.error(f"--resume: {path} was made with other n_trials / delay / long ITI")
        study["runs"] = old["runs"]
        study["commands"] = old.get("commands", [old["command"]]) + [command]
        study["command"] = " ; ".join(study["commands"])
    done = {(r["seed"], r["condition"]) for r in study["runs"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for cond in args.conditions:
            if (seed, cond) in done:
                continue
            run = run_condition(cond, seed=seed, n_trials=args.n_trials, delay_ms=args.delay_ms,
                                long_iti_ms=args.long_iti_ms)
            study["runs"].append(run)
            study["runs"].sort(key=lambda r: (r["seed"], CONDITIONS.index(r["condition"])))
            print(f"seed {seed} {cond:15s} score {run['score_last']:.2f} before-reward share {run['before_reward_share']:.2f} "
                  f"({run['seconds']:.0f} s)", flush=True)
            study["summary"] = summarise(study["runs"])
            utils.atomic_write_text(args.out.with_suffix(".json"), json.dumps(study, indent=1) + "\n")
            utils.atomic_write_text(args.out.with_suffix(".md"), markdown(study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
