"""Paired-seed DA-SSDP replication on the CPU default (nano SpikingResformer, offline digits).

Four conditions per seed (same initialisation, data order and split): baseline, DA-SSDP "released",
DA-SSDP "paper", and the k = 0 control (paper variant, gate fixed at 1). Writes the runs, a summary
with bootstrap CIs of the paired differences, and the exact command, to a JSON file and a markdown
table; both are rewritten after every run, so an interrupted study keeps what it finished.

    python scripts/dassdp_study.py --seeds 0 1 2 3 --epochs 4 --out results/dassdp_study.json
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


def markdown(study: dict, meta: dict) -> str:
    lines = [f"# DA-SSDP paired-seed study ({meta['setting']})", "",
             f"Command: `{meta['command']}`", "",
             "| condition | n seeds | test acc. mean (%) | sd | paired diff. vs baseline (points) | 95% bootstrap CI "
             "| 95% paired-t CI |", "|---|---|---|---|---|---|---|"]
    for cond, row in study["summary"].items():
        diff = f"{row['diff_mean']:+.2f}" if "diff_mean" in row else "-"
        ci = f"[{row['diff_lo']:+.2f}, {row['diff_hi']:+.2f}]" if "diff_lo" in row else "-"
        tci = f"[{row['t_lo']:+.2f}, {row['t_hi']:+.2f}]" if "t_lo" in row else "-"
        lines.append(f"| {cond} | {row['n']} | {row['mean']:.2f} | {row['sd']:.2f} | {diff} | {ci} | {tci} |")
    lines += ["", f"Wall time {meta['wall_seconds']:.0f} s on {meta['machine']}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--img-size", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dassdp-warmup", type=int, default=1)
    p.add_argument("--max-train-samples", type=int, default=0)
    p.add_argument("--max-eval-samples", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    p.add_argument("--out", default=str(ROOT / "results" / "dassdp_study.json"))
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--extend", action="store_true",
                   help="keep the runs already in --out (same settings) and train only the missing seeds")
    a = p.parse_args(argv)
    base = {"img_size": a.img_size, "batch_size": a.batch_size, "lr": a.lr, "epochs": a.epochs,
            "crop_padding": 0, "threads": a.threads, "max_train_samples": a.max_train_samples,
            **({"max_eval_samples": a.max_eval_samples} if a.max_eval_samples else {}),
            "dassdp.warmup_epochs": a.dassdp_warmup}
    out = Path(a.out)
    t0 = time.time()
    meta = {"command": "python scripts/dassdp_study.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])),
            "config": "configs/direct_training/digits.yaml", "overrides": base, "seeds": a.seeds,
            "setting": f"nano SpikingResformer, digits {a.img_size}x{a.img_size}, T 4, {a.epochs} epochs, "
                       f"DA-SSDP warm-up {a.dassdp_warmup} epoch(s)",
            "machine": "2 shared CPU cores", "versions": package_versions()}

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
                         progress=not a.no_progress, on_result=save)
    save(study)
    print(markdown(study, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
