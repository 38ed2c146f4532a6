"""The CIFAR recipes against the released SpikingResformer / DA-SSDP code (issue 14, "The recipe").

The released train.py (xyshi2000/SpikingResformer main.py, NeuroSyd/DA-SSDP SSDP-V5/model/train.py) uses, for
CIFAR10/100: FastCollateMixup(mixup_alpha=0.5, cutmix_alpha=0.0, prob=1.0, mode='batch', label_smoothing),
create_loader(scale=[1, 1], ratio=[1, 1], hflip=0.5), CIFAR-10 mean/std (0.4914, 0.4822, 0.4465) /
(0.2023, 0.1994, 0.2010), CIFAR-100 (129.3, 124.1, 112.4) / (68.2, 65.4, 70.4) over 255, and
create_scheduler_v2(sched='cosine', num_epochs=epochs, cooldown_epochs=10, min_lr=1e-5, warmup_lr=1e-5,
warmup_epochs=3) with lr_scheduler.step(epoch + 1) after each of range(args.epochs) epochs.
"""
import math
from pathlib import Path

import pytest
import yaml

from snnlab import train

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = ROOT / "configs" / "direct_training" / "cifar10.yaml"
CIFAR100 = ROOT / "configs" / "direct_training" / "cifar100.yaml"
DIGITS = ROOT / "configs" / "direct_training" / "digits.yaml"
RELEASED = dict(lr=5e-4, warmup_lr=1e-5, min_lr=1e-5, warmup=3, epochs=600)


class TimmCosineReference:
    """timm's CosineLRScheduler as create_scheduler_v2(sched='cosine', ...) builds it (cycle_limit 1,
    cycle_mul 1, k_decay 1, no noise, warmup_prefix False, t_in_epochs True), and the released loop driving it:
    the constructor sets the lr to warmup_lr; after each epoch ``step(epoch + 1)`` sets ``_get_lr(epoch + 1)``."""

    def __init__(self, *, lr, warmup_lr, min_lr, warmup, epochs):
        self.base, self.warmup_lr, self.min_lr, self.warmup_t, self.t_initial = lr, warmup_lr, min_lr, warmup, epochs
        self.warmup_step = (lr - warmup_lr) / warmup if warmup else 1
        self.lr = warmup_lr if warmup else lr

    def _get_lr(self, t):
        if t < self.warmup_t:
            return self.warmup_lr + t * self.warmup_step
        i = t // self.t_initial                      # cycle index; warmup_prefix False: t is not shifted
        t_curr = t - self.t_initial * i
        if i < 1:                                    # cycle_limit 1
            return self.min_lr + 0.5 * (self.base - self.min_lr) * (1 + math.cos(math.pi * t_curr / self.t_initial))
        return self.min_lr

    def step(self, epoch):
        self.lr = self._get_lr(epoch)


def released_lrs(n_epochs, **kw):
    sched, lrs = TimmCosineReference(**kw), []
    for epoch in range(n_epochs):
        lrs.append(sched.lr)             # the lr this epoch trains with
        sched.step(epoch + 1)
    return lrs


def test_timm_schedule_hand_values():
    lr = lambda e: train.timm_cosine_lr(e, **RELEASED)  # noqa: E731
    # warm-up: warmup_lr + e (lr - warmup_lr) / 3, starting at warmup_lr and never reaching lr
    assert lr(0) == pytest.approx(1.0e-5, rel=1e-12)
    assert lr(1) == pytest.approx(1.0e-5 + 4.9e-4 / 3, rel=1e-12)       # 1.7333e-4
    assert lr(2) == pytest.approx(1.0e-5 + 2 * 4.9e-4 / 3, rel=1e-12)   # 3.3667e-4
    # cosine over all 600 epochs (t not shifted by the warm-up): at t = 3 already just below lr
    assert lr(3) == pytest.approx(1e-5 + 0.5 * 4.9e-4 * (1 + math.cos(math.pi * 3 / 600)), rel=1e-12)
    assert lr(3) < 5e-4
    assert lr(300) == pytest.approx(2.55e-4, rel=1e-12)                 # half way: (lr + min_lr) / 2
    assert lr(599) == pytest.approx(1e-5 + 0.5 * 4.9e-4 * (1 + math.cos(math.pi * 599 / 600)), rel=1e-12)
    # epochs 600.. (timm's cooldown range): min_lr
    assert [lr(e) for e in (600, 605, 609)] == [1e-5] * 3


def test_timm_schedule_equals_the_released_loop_epoch_by_epoch():
    ref = released_lrs(610, **RELEASED)
    ours = [train.timm_cosine_lr(e, **RELEASED) for e in range(610)]
    assert ours == pytest.approx(ref, rel=1e-12)
    # no warm-up: the cosine from epoch 0
    kw = dict(RELEASED, warmup=0, epochs=10)
    assert [train.timm_cosine_lr(e, **kw) for e in range(12)] == pytest.approx(released_lrs(12, **kw), rel=1e-12)


def test_scheduled_lr_dispatches_and_cooldown_is_min_lr():
    cfg = train.load_config(CIFAR10)
    assert train.scheduled_lr(cfg, 1, 0, 351) == train.scheduled_lr(cfg, 1, 350, 351)   # constant within an epoch
    assert train.scheduled_lr(cfg, 2, 7, 351) == pytest.approx(1.0e-5 + 2 * 4.9e-4 / 3)
    step = train.load_config(DIGITS, {"epochs": 4, "cooldown_epochs": 2, "warmup_epochs": 1, "lr": 1.0,
                                      "min_lr": 0.0})
    assert step["lr_schedule"] == "step"                 # the kit's per-step schedule stays the default
    assert train.scheduled_lr(step, 0, 0, 10) == pytest.approx(0.1)    # lr / n warm-up steps
    assert train.scheduled_lr(step, 0, 9, 10) == pytest.approx(1.0)
    assert [train.scheduled_lr(step, e, i, 10) for e in (4, 5) for i in (0, 9)] == [0.0] * 4


@pytest.mark.parametrize("key,value,match", [("cooldown_epochs", "-1", "cooldown_epochs"),
                                             ("cooldown_epochs", "1.5", "cooldown_epochs must be an integer"),
                                             ("lr_schedule", "linear", "lr_schedule"),
                                             ("warmup_lr", "-1e-5", "warmup_lr")])
def test_schedule_keys_are_validated(key, value, match):
    with pytest.raises(ValueError, match=match):
        train.load_config(DIGITS, {key: value})


@pytest.mark.parametrize("path", [CIFAR10, CIFAR100])
def test_cifar_configs_match_the_release(path):
    cfg = train.load_config(path)
    assert cfg["model"] == "cifar" and cfg["T"] == 4 and cfg["img_size"] == 32
    assert cfg["epochs"] == 600 and cfg["batch_size"] == 128
    assert cfg["lr"] == 5e-4 and cfg["weight_decay"] == 0.01 and cfg["min_lr"] == 1e-5
    assert cfg["lr_schedule"] == "timm" and cfg["warmup_epochs"] == 3 and cfg["warmup_lr"] == 1e-5
    # create_scheduler_v2(cooldown_epochs=10) only lengthens the epoch count it returns, which the release
    # discards: it trains range(args.epochs), so no cooldown epoch
    assert cfg["cooldown_epochs"] == 0
    assert cfg["mixup_alpha"] == 0.5 and cfg["mixup_prob"] == 1.0 and cfg["label_smoothing"] == 0.1
    assert cfg["crop_padding"] == 0 and cfg["hflip"] is True
    assert cfg["amp"] is True and cfg["drop_path"] == 0.0 and cfg["clip_grad"] is None


def test_cifar_normalisation_is_the_released_one():
    mean, std = train.MEAN_STD["cifar10"]
    assert mean == (0.4914, 0.4822, 0.4465) and std == (0.2023, 0.1994, 0.2010)
    mean, std = train.MEAN_STD["cifar100"]
    assert mean == pytest.approx([129.3 / 255, 124.1 / 255, 112.4 / 255], abs=1e-12)
    assert std == pytest.approx([68.2 / 255, 65.4 / 255, 70.4 / 255], abs=1e-12)


def test_print_config_shows_the_recipe(capsys):
    assert train.main(["-c", str(CIFAR10), "--print-config"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["mixup_alpha"] == 0.5 and shown["crop_padding"] == 0
    assert shown["lr_schedule"] == "timm" and shown["warmup_epochs"] == 3 and shown["warmup_lr"] == 1e-5
    assert shown["cooldown_epochs"] == 0
    assert train.main(["-c", str(CIFAR10), "--print-config", "--cooldown_epochs", "10"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["cooldown_epochs"] == 10


# a tiny run: nano at 8x8, 64 training samples, batches of 16 -> 4 steps per epoch
TINY = {"img_size": 8, "max_train_samples": 64, "max_eval_samples": 32, "batch_size": 16, "eval_batch_size": 32,
        "threads": 1, "progress": False, "lr": 5e-3, "min_lr": 1e-4}


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["timm", "step"])
def test_run_trains_the_cooldown_and_resumes_through_it(tmp_path, schedule):
    cfg = train.load_config(DIGITS, {**TINY, "epochs": 2, "cooldown_epochs": 1, "warmup_epochs": 1,
                                     "warmup_lr": 1e-4, "lr_schedule": schedule})
    full = train.run(cfg, output_dir=tmp_path / "full")
    lrs = [h["lr"] for h in full["history"]]            # the lr of each epoch's last step
    assert len(lrs) == 3
    if schedule == "timm":
        assert lrs == pytest.approx([1e-4, 1e-4 + 0.5 * (5e-3 - 1e-4) * (1 + math.cos(math.pi / 2)), 1e-4])
    else:   # 4 warm-up steps, cosine over steps 4..8, then min_lr
        assert lrs == pytest.approx([5e-3, 1e-4 + 0.5 * (5e-3 - 1e-4) * (1 + math.cos(math.pi * 3 / 4)), 1e-4])
    train.run(cfg, output_dir=tmp_path / "part", stop_after_epochs=2)
    resumed = train.run(cfg, output_dir=tmp_path / "part", resume=str(tmp_path / "part"))
    assert [h["lr"] for h in resumed["history"]] == lrs
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in full["history"]]
