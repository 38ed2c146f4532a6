"""What moves the Mozafari et al. 2019 network's accuracy on the offline digits: variants x seeds.

Every run trains the pipeline of ``notebooks/02_mozafari_rstdp.ipynb`` from a baseline (3 + 4 STDP
epochs, 60 R-STDP epochs) with one change, keeps the R-STDP epoch with the best validation accuracy
and reports the held-out test accuracy at that epoch. The notebook's default is the variant with
the best mean validation accuracy ("longer STDP"). The seed fixes the split, the initial weights and the sample order. The
variants are the settings the paper or its public port leave open or set differently, plus two
ablations; none is chosen on the test set. Writes a JSON file and a markdown table, both rewritten
after every run (an interrupted study keeps what it finished).

    python scripts/mozafari_study.py --seeds 0 1 2 --jobs 2       # ~20 minutes on 2 cores
    python scripts/mozafari_study.py --quick --seeds 0            # seconds (smoke test)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
import torch.nn.functional as F

import snnlab  # noqa: F401  (quiets a logger)
from snnlab.data import load_digits_split, resize_images
from snnlab.models.mozafari import MozafariConfig, MozafariNet, MozafariTrainer, accuracy
from snnlab.plasticity.mozafari import RSTDPParams, STDPBounds
from snnlab.utils import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]

#: name -> (what changes, config changes, epochs (conv1, conv2, conv3), inner image size)
NOTEBOOK_DEFAULT = "longer STDP"
VARIANTS = {
    "baseline": ("3 + 4 STDP, 60 R-STDP epochs, adaptive block 100", {}, (3, 4, 60), 28),
    "block 1000": ("adaptive R-STDP rates per 1000 samples (the public port)",
                   {"rstdp": RSTDPParams(block=1000)}, (3, 4, 60), 28),
    "port R-STDP bounds": ("R-STDP without soft bound, weights in [0.2, 0.8] (the public port)",
                           {"rstdp": RSTDPParams(block=100, bounds=STDPBounds(0.2, 0.8, soft_bound=False))},
                           (3, 4, 60), 28),
    "conv2 radius 2": ("k-WTA radius 2 in conv2 (the paper allows 1 or 2)", {"radii": (3, 2)}, (3, 4, 60), 28),
    "longer STDP": ("8 + 12 STDP epochs (the notebook's default: best validation)", {}, (8, 12, 60), 28),
    "120 R-STDP epochs": ("twice the R-STDP epochs", {}, (3, 4, 120), 28),
    "no pointwise inhibition": ("ablation: conv1/conv2 without pointwise inhibition",
                                {"pointwise_inhibition": False}, (3, 4, 60), 28),
    "22x22 in 28x28": ("data: digits resized to 22 x 22 and centred (an MNIST-like margin)", {}, (3, 4, 60), 22),
}
DEFAULT_RSTDP = RSTDPParams(block=100)


def framed_digits(seed: int, inner: int):
    """The offline digits at 28 x 28: resized to ``inner`` (bilinear) and centred with zero margins."""
    splits = load_digits_split(seed)
    pad = (28 - inner) // 2
    out = []
    for part in (splits.train, splits.val, splits.test):
        x = F.pad(resize_images(part.x, inner), (pad, 28 - inner - pad, pad, 28 - inner - pad))
        out.append((x, part.y))
    return out


def run_one(variant: str, seed: int, quick: bool) -> dict:
    """Train one (variant, seed); returns the row written to the JSON file."""
    torch.set_num_threads(1)
    _, changes, epochs, inner = VARIANTS[variant]
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = framed_digits(seed, inner)
    if quick:
        x_tr, y_tr, epochs = x_tr[:40], y_tr[:40], (1, 1, 2)
    config = dataclasses.replace(MozafariConfig(rstdp=DEFAULT_RSTDP), **changes)
    net = MozafariNet(config, seed=seed)
    start = time.perf_counter()
    history = MozafariTrainer(net, x_tr, y_tr, x_va, y_va, epochs=epochs, seed=seed, progress=False).run()
    wall = time.perf_counter() - start
    test_acc, silent = accuracy(net.predict(x_te), y_te)
    return {"variant": variant, "seed": seed, "epochs": list(epochs), "best_epoch": history.best_epoch,
            "val_acc": history.best_val_acc, "test_acc": test_acc, "test_silent": silent,
            "final_train_acc": history.rstdp_train_acc[-1], "seconds": round(wall, 1)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for variant in VARIANTS:
        rows = [r for r in runs if r["variant"] == variant]
        if not rows:
            continue
        val = [100 * r["val_acc"] for r in rows]
        test = [100 * r["test_acc"] for r in rows]
        out[variant] = {"n": len(rows), "val_mean": statistics.fmean(val), "test_mean": statistics.fmean(test),
                        "test_sd": statistics.stdev(test) if len(test) > 1 else 0.0,
                        "train_mean": statistics.fmean(100 * r["final_train_acc"] for r in rows),
                        "seconds_mean": statistics.fmean(r["seconds"] for r in rows),
                        "tests": {r["seed"]: round(100 * r["test_acc"], 1) for r in rows}}
    return out


def markdown(study: dict) -> str:
    meta = study["meta"]
    lines = ["# Mozafari et al. 2019 on the offline digits: what moves the accuracy", "",
             f"Command: `{meta['command']}`", "",
             "Each run keeps the R-STDP epoch with the best validation accuracy (269 images) and reports the "
             "held-out test accuracy (269 images; one image = 0.37 points).", "",
             "| variant | what changes | seeds | validation (%) | test mean (%) | sd | test per seed | "
             "last-epoch train (%) | s/run |", "|---|---|---|---|---|---|---|---|---|"]
    for variant, row in study["summary"].items():
        per_seed = ", ".join(f"{s}: {a:.1f}" for s, a in sorted(row["tests"].items()))
        lines.append(f"| {variant} | {VARIANTS[variant][0]} | {row['n']} | {row['val_mean']:.1f} | "
                     f"{row['test_mean']:.1f} | {row['test_sd']:.1f} | {per_seed} | {row['train_mean']:.1f} | "
                     f"{row['seconds_mean']:.0f} |")
    lines += ["", f"Wall time {meta['wall_seconds']:.0f} s with {meta['jobs']} processes of one thread each.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    p.add_argument("--quick", action="store_true", help="40 training images, epochs 1 + 1 + 2 (smoke test)")
    p.add_argument("--out", default=str(ROOT / "results" / "mozafari_study.json"))
    a = p.parse_args(argv)
    if a.jobs < 1:
        p.error(f"--jobs must be >= 1, got {a.jobs}")
    if any(s < 0 for s in a.seeds):
        p.error(f"--seeds must be >= 0, got {a.seeds}")
    out = Path(a.out)
    start = time.perf_counter()
    runs: list[dict] = []
    study = {}

    def save():
        meta = {"command": " ".join(["python", "scripts/mozafari_study.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
                "jobs": a.jobs, "quick": a.quick, "wall_seconds": time.perf_counter() - start,
                "torch": torch.__version__}
        study.update(meta=meta, runs=sorted(runs, key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"])),
                     summary=summarise(runs))
        atomic_write_text(out, json.dumps(study, indent=1) + "\n")
        atomic_write_text(out.with_suffix(".md"), markdown(study))

    tasks = [(v, s) for v in a.variants for s in a.seeds]
    from tqdm.auto import tqdm

    with ProcessPoolExecutor(max_workers=a.jobs) as pool, tqdm(total=len(tasks), desc="runs") as bar:
        futures = [pool.submit(run_one, v, s, a.quick) for v, s in tasks]
        for fut in as_completed(futures):
            row = fut.result()
            runs.append(row)
            save()
            bar.update(1)
            bar.set_postfix(last=f"{row['variant']} seed {row['seed']}: {100 * row['test_acc']:.1f}%")
    print(markdown(study))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
