"""Paired-seed DA-SSDP replication on the CPU (nano SpikingResformer, offline data).

Five conditions per seed (same initialisation, data order and split): baseline, DA-SSDP "released",
DA-SSDP "paper", the k = 0 control (paper variant, gate fixed at 1) and the random-dW control (paper
variant, each update replaced by noise of its norm). Writes the runs, a summary with bootstrap and
paired-t CIs of the paired differences, and the exact command, to a JSON file and a markdown table;
both are rewritten after every run, so an interrupted study keeps what it finished.

    python scripts/dassdp_study.py --dataset mnist5k --img-size 8 --seeds 0 1 2 3 4 5 --epochs 3 --jobs 2
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import snnlab  # noqa: F401
from snnlab.train import CONDITIONS, paired_study
from snnlab.utils import atomic_write_text, package_versions

ROOT = Path(__file__).resolve().parents[1]


CONDITION_TEXT = {
    "baseline": "no DA-SSDP",
    "released": "the public code's rule (time-mean classifier indicators, batch-loss gate data, DSSA block tap, last spike)",
    "paper": "the paper's rule (first spike, spiking neurons on both sides of W_proj, per-sample gate data)",
    "k0": "paper, gate fixed at G = 1 (no dopamine signal)",
    "random": "paper, each dW replaced by seeded noise of its norm (no structure)",
}
#: last-epoch diagnostics shown per condition (mean over seeds)
DIAGNOSTICS = ("classifier/pre_rate", "classifier/post_rate", "classifier/k", "classifier/drift",
               "dssa_proj/pre_rate", "dssa_proj/post_rate", "dssa_proj/post_unit_sd", "dssa_proj/k", "dssa_proj/drift")


def markdown(study: dict, meta: dict) -> str:
    lines = [f"# DA-SSDP paired-seed study ({meta['setting']})", "",
             f"Command: `{meta['command']}`", "",
             "Each run reports the test accuracy at the epoch chosen on validation; a seed is one initialisation, "
             "data order and split shared by every condition, so the differences are paired.", "",
             "| condition | what it is | n seeds | validation mean (%) | test mean (%) | sd | paired diff. vs baseline "
             "(points) | 95% bootstrap CI | 95% paired-t CI |", "|---|---|---|---|---|---|---|---|---|"]
    vals = {}
    for r in study["runs"]:
        if "selected_val_acc" in r:
            vals.setdefault(r["condition"], []).append(r["selected_val_acc"])
    for cond, row in study["summary"].items():
        diff = f"{row['diff_mean']:+.2f}" if "diff_mean" in row else "-"
        ci = f"[{row['diff_lo']:+.2f}, {row['diff_hi']:+.2f}]" if "diff_lo" in row and row["n"] >= 3 else "-"
        tci = f"[{row['t_lo']:+.2f}, {row['t_hi']:+.2f}]" if "t_lo" in row and row["n"] >= 3 else "-"
        val = f"{sum(vals[cond]) / len(vals[cond]):.2f}" if cond in vals else "-"
        lines.append(f"| {cond} | {CONDITION_TEXT.get(cond, '')} | {row['n']} | {val} | {row['mean']:.2f} | "
                     f"{row['sd']:.2f} | {diff} | {ci} | {tci} |")
    lines += ["", "CIs are shown from 3 paired seeds on (fewer give no interval worth printing).", "",
              "Last-epoch DA-SSDP diagnostics, mean over seeds (rates: fraction of units marked active; drift: "
              "cumulative mean of the applied dW; k: the fitted gate slope):", "",
              ]
    # one row per diagnostic, one column per condition: nine columns of numbers do not fit a printed page
    shown = [c for c in study["summary"] if any(r["condition"] == c and r.get("diagnostics") for r in study["runs"])]
    lines += ["| diagnostic | " + " | ".join(shown) + " |", "|---|" + "---|" * len(shown)]
    for key in DIAGNOSTICS:
        cells = []
        for cond in shown:
            v = [r["diagnostics"][key] for r in study["runs"]
                 if r["condition"] == cond and r.get("diagnostics") and r["diagnostics"].get(key) is not None]
            cells.append(f"{sum(v) / len(v):.3g}" if v else "-")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", f"Wall time {meta['wall_seconds']:.0f} s on {meta['machine']}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--dataset", default="mnist5k", choices=["mnist5k", "digits"])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--img-size", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dassdp-warmup", type=int, default=1)
    p.add_argument("--max-train-samples", type=int, default=0)
    p.add_argument("--max-eval-samples", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (one process each)")
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    p.add_argument("--out", default=str(ROOT / "results" / "dassdp_study.json"))
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--render", action="store_true", help="only rewrite the markdown table of --out from its JSON")
    p.add_argument("--extend", action="store_true",
                   help="keep the runs already in --out (same settings) and train only the missing seeds")
    a = p.parse_args(argv)
    base = {"dataset": a.dataset, "img_size": a.img_size, "batch_size": a.batch_size, "lr": a.lr, "epochs": a.epochs,
            "crop_padding": 0, "threads": a.threads, "max_train_samples": a.max_train_samples,
            **({"max_eval_samples": a.max_eval_samples} if a.max_eval_samples else {}),
            "dassdp.warmup_epochs": a.dassdp_warmup}
    out = Path(a.out)
    if a.render:
        study = json.loads(out.read_text())
        atomic_write_text(out.with_suffix(".md"), markdown(study, study["meta"]))
        return 0
    t0 = time.time()
    meta = {"command": "python scripts/dassdp_study.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])),
            "config": "configs/direct_training/digits.yaml", "overrides": base, "seeds": a.seeds,
            "setting": f"nano SpikingResformer, {a.dataset} {a.img_size}x{a.img_size}, T 4, {a.epochs} epochs, "
                       f"DA-SSDP warm-up {a.dassdp_warmup} epoch(s)",
            "machine": f"2 shared CPU cores, {a.jobs} run(s) at once", "versions": package_versions()}

    def save(study):
        meta["wall_seconds"] = time.time() - t0
        atomic_write_text(out, json.dumps({"meta": meta, **study}, indent=2, default=str) + "\n")
        atomic_write_text(out.with_suffix(".md"), markdown(study, meta))

    done = []
    if a.extend and out.is_file():
        old = json.loads(out.read_text())
        if old["meta"]["overrides"] != base:
            raise SystemExit(f"--extend: {out} was made with other settings {old['meta']['overrides']}")
        done = old["runs"]
        t0 -= old["meta"]["wall_seconds"]   # the wall time covers every run in the file
    study = paired_study(base, seeds=a.seeds, done=done, conditions=a.conditions, config=ROOT / "configs/direct_training/digits.yaml",
                         progress=not a.no_progress, on_result=save, jobs=a.jobs)
    save(study)
    print(markdown(study, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
