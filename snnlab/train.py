"""``snnlab train``: SpikingResformer with or without DA-SSDP, from a YAML recipe, alone or under torchrun.

Seed-shaped commands (``-c`` picks a recipe under ``configs/``; every key can be overridden)::

    snnlab train -c configs/direct_training/digits.yaml --output-dir runs/digits
    snnlab train -c configs/direct_training/cifar10.yaml --data-path data/cifar10 --output-dir runs/c10
    snnlab train -c configs/transfer/cifar10dvs.yaml --data-path data/cifar10dvs --output-dir runs/dvs \\
        --transfer runs/imagenet/checkpoint.pth
    torchrun --standalone --nnodes=1 --nproc-per-node=8 -m snnlab.train \\
        -c configs/main/spikingresformer_l.yaml --data-path /path/to/imagenet --output-dir runs/l
    snnlab train -c configs/direct_training/digits.yaml --epochs 3 --amp false --dassdp.enabled true

Overrides: ``--KEY VALUE`` or ``--KEY=VALUE`` for every key of the resolved config (``snnlab train
--print-config`` lists them); nested keys use dots (``--dassdp.variant released``). Values are read as
YAML scalars and checked against the default's type, so ``--amp false`` is the boolean false and
``--dassdp.sites classifier,dssa_proj`` (or ``[classifier]``) is a list.

What one run writes to ``--output-dir``: ``config.yaml`` (resolved), ``run_card.json``,
``metrics.csv`` and ``metrics.jsonl`` (one row per epoch), ``dassdp_steps.jsonl`` (per-step rule
diagnostics), ``checkpoint.pth`` (atomic, each epoch: model, optimizer, LR scheduler, scaler, RNG, DA-SSDP state,
history), ``best.pth`` (model at the best *validation* epoch) and ``results.json``. The reported
accuracy is the test accuracy at the epoch chosen on validation, never the best test epoch.

Under torchrun (``RANK``/``WORLD_SIZE`` set) the process group uses gloo on CPU and nccl on CUDA;
each rank trains on its share of one seeded permutation (torch's ``DistributedSampler``), gradients are averaged by DDP, and the
DA-SSDP statistics and updates are all-reduced so every replica applies the same dW.
"""
from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from . import data as sdata
from .checkpoints import load_checkpoint, load_module_state, save_checkpoint
from .errors import CheckpointError, ConfigError, DataError, UsageError, command_boundary, one_line
from .utils import (atomic_write_text, check_choice, check_float, check_int, derive_seed, derived_generator,
                    pause_point, pick_device, remove_stale_temporaries, seed_everything, write_run_card)

DATASETS = ("digits", "mnist5k", "cifar10", "cifar100", "imagefolder", "cifar10dvs")
FILELESS_DATASETS = ("digits", "mnist5k")  # shipped with a package: data_path would be ignored, so it is refused
LR_SCHEDULES = ("step", "timm")  # see DEFAULTS["lr_schedule"], cosine_lr and timm_cosine_lr

DEFAULTS: dict[str, Any] = {
    "model": "nano",            # ti | s | m | l | cifar | dvs | nano
    "T": 4,                     # time steps (static images are repeated T times)
    "img_size": 16,             # input side after resizing (digits: 8x8 upsampled)
    "drop_path": 0.0,
    "bn_momentum": 0.1,         # BatchNorm running-statistics momentum (null = cumulative average: short runs)
    "dataset": "digits",        # digits | mnist5k | cifar10 | cifar100 | imagefolder | cifar10dvs
    "data_path": None,
    "split_seed": 0,            # fixes the train/val(/test) split, separate from `seed`
    "val_fraction": 0.1,        # held out of train for model selection when the data has no val split
    "test_fraction": 0.1,       # cifar10dvs without train/test folders: held out for test
    "max_train_samples": 0,     # use only the first n training samples (0 = all): smoke tests, quick runs
    "max_eval_samples": 0,      # the same for validation and test
    "epochs": 10,               # warm-up + cosine; the run trains epochs + cooldown_epochs
    "batch_size": 64,           # per process
    "lr": 5.0e-4,
    "min_lr": 1.0e-5,
    "weight_decay": 0.01,
    "lr_schedule": "step",      # step: set every optimizer step, warm-up lr/n .. lr over the warm-up steps, then
                                #   cosine from lr (end of warm-up) to min_lr (end of `epochs`) |
                                # timm: timm's CosineLRScheduler stepped per epoch, as the released SpikingResformer
                                #   and DA-SSDP code: warm-up warmup_lr .. lr, cosine over all `epochs` (timm_cosine_lr)
    "warmup_epochs": 1,         # linear learning-rate warm-up before the cosine decay
    "warmup_lr": 1.0e-5,        # lr_schedule timm: the learning rate of the first warm-up epoch
    "cooldown_epochs": 0,       # epochs at min_lr after the `epochs` of the schedule
    "label_smoothing": 0.1,
    "mixup_alpha": 0.0,         # 0 = off
    "mixup_prob": 1.0,
    "hflip": False,
    "crop_padding": 0,          # random crop after zero padding (0 = off)
    "clip_grad": None,
    "amp": True,                # only acts on CUDA
    "seed": 0,
    "device": "auto",
    "workers": 0,               # DataLoader workers for file datasets
    "threads": 0,               # torch CPU threads per process (0 = torch's default; 1 on a busy machine)
    "progress": True,
    "log_every": 1,             # DA-SSDP diagnostics every n steps
    "eval_batch_size": 256,
    "dassdp": {                 # null: the variant's value (snnlab.plasticity.dassdp.variant_params)
        "enabled": False,
        "variant": "paper",     # released | paper
        "warmup_epochs": 1,
        "a_plus": None,         # released and paper: 1.5e-3
        "a_minus": None,        # released 5e-4, paper 1e-4
        "sigma": None,          # 1.0 (time steps)
        "latency": None,        # first | last (released)
        "gate": "fitted",       # fitted | constant (k = 0 control)
        "sites": None,          # [classifier, dssa_proj]
        "dssa_tap": None,       # synapse (paper) | block (released)
        "classifier_readout": None,   # time_mean (both variants) | any (positive at some step)
        "gate_loss": None,      # sample (paper) | batch (released: the batch-mean loss per sample)
        "dssa_silent_latency": None,  # T (paper) | zero (released)
        "control": "none",      # none | random (dW replaced by seeded noise of the same norm)
        "ddp_sync": True,
    },
}

# CIFAR: the constants of the released SpikingResformer/DA-SSDP create_loader calls (for CIFAR-10 the widely
# copied std 0.2023/0.1994/0.2010, not the per-pixel 0.247/0.2435/0.2616; for CIFAR-100 /255 of 0-255 values)
MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": (tuple(v / 255 for v in (129.3, 124.1, 112.4)), tuple(v / 255 for v in (68.2, 65.4, 70.4))),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


# =========================================================================== config
def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check an override/YAML value against the default's type (booleans are never truthy strings)."""
    if isinstance(value, str) and not isinstance(default, str):
        parsed = yaml.safe_load(value) if value.strip() else None
        if isinstance(default, list) and isinstance(parsed, str):
            parsed = [s.strip() for s in parsed.split(",") if s.strip()]
        if isinstance(parsed, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
            try:  # YAML 1.1 reads "5e-4" (no dot) as a string; a number is meant
                parsed = float(parsed) if isinstance(default, float) else int(parsed)
            except ValueError:
                pass
        value = parsed
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, list):
        if isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        if not isinstance(value, list):
            raise ValueError(f"{key} must be a list, got {value!r}")
        return value
    if isinstance(default, str):
        return str(value)
    return value


def _set(cfg: dict, dotted: str, value: Any, where: str = "") -> None:
    flat = _flatten(DEFAULTS)
    if dotted not in flat:
        raise ConfigError(f"{where}unknown config key {dotted!r}; known keys: {', '.join(sorted(flat))}")
    node = cfg
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node[p]
    proto = flat[dotted]
    if proto is None and parents == ["dassdp"]:
        # null means "the variant's value": the type comes from the DA-SSDP parameters
        from .plasticity.dassdp import DASSDPParams

        proto = DASSDPParams.__dataclass_fields__[leaf].default
        proto = list(proto) if isinstance(proto, tuple) else proto
    try:
        node[leaf] = _coerce(dotted, value, proto)
    except ValueError as exc:
        raise ConfigError(f"{where}{exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}{dotted}: {one_line(exc)}") from None


def read_yaml_config(path: str | os.PathLike) -> dict:
    """A YAML recipe as a dict, through ``yaml.safe_load`` (plain YAML only: no ``!!python/...`` tags).

    Raises :class:`ConfigError` naming the file for a missing file, malformed YAML, an unsafe tag or
    a top level that is not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"-c/--config {path}: no such file" + ("" if not p.exists() else " (a folder)")
                          + "; the recipes are under configs/")
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.constructor.ConstructorError as exc:
        mark = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark is not None else ""
        raise ConfigError(f"-c/--config {path}{mark}: refused: {exc.problem}; snnlab configs are plain YAML "
                          "(numbers, strings, lists, mappings), never Python objects") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"-c/--config {path}{where}: not valid YAML: {getattr(exc, 'problem', None) or one_line(exc)}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"-c/--config {path}: cannot be read as text ({exc})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"-c/--config {path}: expected a mapping of config keys at the top level, "
                          f"found a {type(loaded).__name__}")
    return loaded


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """DEFAULTS <- YAML file <- overrides (dotted keys).

    Unknown keys, bad values and unreadable or unsafe files raise :class:`ConfigError` (a
    ``ValueError``) naming the key or file."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        for key, value in _flatten(read_yaml_config(path)).items():
            _set(cfg, key, value, where=f"config {path}: ")
    for key, value in (overrides or {}).items():
        _set(cfg, key, value)
    validate_config(cfg)
    # a DA-SSDP key left null takes the variant's value; written out so the run card and --print-config
    # say what ran
    for key, value in asdict(dassdp_params(cfg)).items():
        if key != "variant":
            cfg["dassdp"][key] = list(value) if isinstance(value, tuple) else value
    return cfg


def validate_config(cfg: dict) -> None:
    """Check every value of a resolved config; a bad one raises :class:`ConfigError` naming it."""
    try:
        _validate_config(cfg)
    except ConfigError:
        raise
    except ValueError as exc:  # the check_* helpers raise ValueError naming the key
        raise ConfigError(str(exc)) from None


def _validate_config(cfg: dict) -> None:
    from .models.spikingresformer import VARIANTS as MODELS

    check_choice("model", cfg["model"], tuple(MODELS))
    check_choice("dataset", cfg["dataset"], DATASETS)
    for key in ("T", "img_size", "epochs", "batch_size", "eval_batch_size", "log_every"):
        check_int(key, cfg[key], minimum=1)
    for key in ("seed", "split_seed", "warmup_epochs", "cooldown_epochs", "workers", "crop_padding", "threads",
                "max_train_samples", "max_eval_samples"):
        check_int(key, cfg[key], minimum=0)
    check_choice("lr_schedule", cfg["lr_schedule"], LR_SCHEDULES)
    for key in ("lr", "min_lr", "warmup_lr", "weight_decay", "label_smoothing", "mixup_alpha"):
        check_float(key, cfg[key], minimum=0.0)
    check_float("label_smoothing", cfg["label_smoothing"], maximum=0.99)
    check_float("mixup_prob", cfg["mixup_prob"], minimum=0.0, maximum=1.0)
    check_float("val_fraction", cfg["val_fraction"], minimum=0.0, maximum=0.5)
    check_float("test_fraction", cfg["test_fraction"], minimum=0.0, maximum=0.5)
    check_float("drop_path", cfg["drop_path"], minimum=0.0, maximum=0.99)
    if cfg["bn_momentum"] is not None:
        check_float("bn_momentum", cfg["bn_momentum"], minimum=0.0, maximum=1.0)
    if cfg["clip_grad"] is not None:
        check_float("clip_grad", cfg["clip_grad"], minimum=0.0, strict_minimum=True)
    d = cfg["dassdp"]
    dassdp_params(cfg)  # validates the section
    check_int("dassdp.warmup_epochs", d["warmup_epochs"], minimum=0)
    if cfg["dataset"] in FILELESS_DATASETS and cfg["data_path"] is not None:
        # refused rather than ignored: a user who names a folder expects it to be read
        raise ConfigError(f"data_path/--data-path {cfg['data_path']!r} is set, but dataset {cfg['dataset']!r} reads "
                          f"no files (it ships with its package); drop --data-path, or choose a dataset that reads "
                          f"files: {', '.join(d for d in DATASETS if d not in FILELESS_DATASETS)}")
    if cfg["dataset"] in ("cifar10", "cifar100") and cfg["img_size"] != 32:
        raise ConfigError(f"img_size must be 32 for {cfg['dataset']}, got {cfg['img_size']}")


def dassdp_params(cfg: dict):
    from .plasticity.dassdp import variant_params

    d = dict(cfg["dassdp"])
    d.pop("enabled")
    variant = d.pop("variant")
    return variant_params(variant, **d)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, dict]:
    parser = argparse.ArgumentParser(
        prog="snnlab train", description="Train SpikingResformer (optionally with DA-SSDP) from a YAML config.",
        epilog="Any config key is an override: --epochs 3 --amp false --dassdp.enabled true "
               "--dassdp.variant released (see --print-config).")
    parser.add_argument("-c", "--config", help="YAML recipe (default: built-in digits defaults)")
    parser.add_argument("--data-path", dest="data_path_flag", help="dataset root (overrides data_path)")
    parser.add_argument("--output-dir", help="folder for checkpoints, metrics and results")
    parser.add_argument("--resume", help="checkpoint (or run folder) to continue from")
    parser.add_argument("--transfer", help="checkpoint whose backbone initialises this model (head replaced)")
    parser.add_argument("--test-only", action="store_true", help="evaluate a checkpoint (--resume or output-dir/best.pth)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback for input errors too (or set SNNLAB_DEBUG=1)")
    args, rest = parser.parse_known_args(argv)
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        token = rest[i]
        if not token.startswith("--") or len(token) < 3:
            parser.error(f"unexpected argument {token!r} (overrides look like --key value)")
        key = token[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(rest):
                parser.error(f"override {token} needs a value")
            value = rest[i + 1]
            i += 2
        overrides[key.replace("-", "_") if "." not in key else key] = value
    if args.data_path_flag is not None:
        overrides["data_path"] = args.data_path_flag
    return args, overrides


# =========================================================================== data
class Source:
    """A labelled sample collection with ``take(indices) -> (x float32, y int64)``."""

    def __init__(self, x=None, y=None, dataset=None, labels=None, scale: float = 1.0):
        self.x, self.y, self.dataset, self.scale = x, y, dataset, scale
        self.labels = y if labels is None else labels

    def __len__(self):
        return len(self.labels)

    def subset(self, idx: torch.Tensor) -> "Source":
        if self.x is not None:
            return Source(self.x[idx], self.y[idx], scale=self.scale)
        return Source(dataset=torch.utils.data.Subset(self.dataset, idx.tolist()), labels=self.labels[idx])

    def batches(self, index_lists: list[list[int]], workers: int):
        if self.x is not None:
            for idx in index_lists:
                idx = torch.as_tensor(idx)
                yield self.x[idx].float() * self.scale, self.y[idx]
            return
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=index_lists, num_workers=workers,
                                             persistent_workers=False)
        try:
            for x, y in loader:
                yield x.float(), torch.as_tensor(y, dtype=torch.long)
        except DataError as exc:
            # a DataLoader worker re-raises with its whole traceback in the message: keep the reader's line
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            raise DataError(lines[-1].split("DataError: ", 1)[-1] if len(lines) > 1 else str(exc)) from exc


def _split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = int(round(fraction * n))
    return perm[k:], perm[:k]


def load_data(cfg: dict) -> tuple[Source, Source, Source, int, int, str]:
    """(train, val, test, num_classes, in_channels, description) for ``cfg['dataset']``, each part cut
    to ``max_train_samples`` / ``max_eval_samples`` when those are set."""
    train, val, test, n_cls, in_ch, desc = _load_data(cfg)
    cut = lambda src, n: src.subset(torch.arange(min(n, len(src)))) if n else src  # noqa: E731
    if cfg["max_train_samples"] or cfg["max_eval_samples"]:
        desc += f" (cut to {cfg['max_train_samples'] or 'all'} train / {cfg['max_eval_samples'] or 'all'} eval samples)"
    return (cut(train, cfg["max_train_samples"]), cut(val, cfg["max_eval_samples"]),
            cut(test, cfg["max_eval_samples"]), n_cls, in_ch, desc)


def _load_data(cfg: dict):
    name, root, size = cfg["dataset"], cfg["data_path"], cfg["img_size"]
    if name in FILELESS_DATASETS:
        loader = sdata.load_digits_split if name == "digits" else sdata.load_mnist5k_split
        sp = loader(cfg["split_seed"], size=size)
        mk = lambda s: Source(s.x, s.y)  # noqa: E731
        return mk(sp.train), mk(sp.val), mk(sp.test), sp.num_classes, 1, sp.description
    if root is None:
        raise ConfigError(f"dataset {name!r} needs --data-path (the folder holding it; see data/README.md for "
                          "the expected layout)")
    if not Path(root).is_dir():
        raise DataError(f"--data-path {root}: no such folder (dataset {name!r}; see data/README.md for the layout)")
    if name in ("cifar10", "cifar100"):
        xtr, ytr = sdata.read_cifar_binary(root, name, "train")
        xte, yte = sdata.read_cifar_binary(root, name, "test")
        full = Source(xtr, ytr, scale=1.0 / 255.0)
        tr, va = _split(len(full), cfg["val_fraction"], cfg["split_seed"])
        return (full.subset(tr), full.subset(va), Source(xte, yte, scale=1.0 / 255.0),
                10 if name == "cifar10" else 100, 3, f"{name} binary at {root}")
    if name == "imagefolder":
        root = Path(root)
        train_ds = sdata.ImageFolder(root / "train", size=size)
        # one class index for every split, from train/: val/ sorted on its own would shift the labels
        test_ds = sdata.ImageFolder(root / "val", size=size, classes=train_ds.classes)
        labels = torch.tensor([c for _, c in train_ds.samples])
        full = Source(dataset=train_ds, labels=labels)
        tr, va = _split(len(full), cfg["val_fraction"], cfg["split_seed"])
        test = Source(dataset=test_ds, labels=torch.tensor([c for _, c in test_ds.samples]))
        return (full.subset(tr), full.subset(va), test, len(train_ds.classes), 3,
                f"image folders {root}/train (minus {cfg['val_fraction']:.0%} for validation), test = {root}/val")
    # cifar10dvs
    root = Path(root)
    if (root / "train").is_dir() and (root / "test").is_dir():
        train_ds = sdata.DVSFrames(root / "train")
        test_ds = sdata.DVSFrames(root / "test", classes=train_ds.classes)
        full = Source(dataset=train_ds, labels=torch.tensor([c for _, c in train_ds.samples]))
        test = Source(dataset=test_ds, labels=torch.tensor([c for _, c in test_ds.samples]))
    else:
        ds = sdata.DVSFrames(root)
        whole = Source(dataset=ds, labels=torch.tensor([c for _, c in ds.samples]))
        rest, te = _split(len(whole), cfg["test_fraction"], derive_seed(cfg["split_seed"], "test-split"))
        full, test = whole.subset(rest), whole.subset(te)
        train_ds = ds
    tr, va = _split(len(full), cfg["val_fraction"], cfg["split_seed"])
    return full.subset(tr), full.subset(va), test, len(train_ds.classes), 2, f"DVS frames at {root}"


def shard_batches(n: int, batch_size: int, *, rank: int, world: int, seed: int, epoch: int,
                  shuffle: bool, drop_last: bool) -> list[list[int]]:
    """This rank's index batches of one epoch.

    Training (``drop_last``): torch's ``DistributedSampler`` deals one permutation per epoch (the same
    on every rank, seeded from ``derive_seed(seed, "sample-order")`` and the epoch), padded to a
    multiple of ``world``; an incomplete last batch is dropped. Evaluation: every sample exactly once,
    strided over the ranks, because ``DistributedSampler`` would pad with repeats and count them twice.
    """
    if not drop_last:
        order = (torch.randperm(n, generator=derived_generator(seed, "sample-order", epoch)).tolist() if shuffle
                 else list(range(n)))
        mine = order[rank::world]
        return [mine[i: i + batch_size] for i in range(0, len(mine), batch_size)]
    sampler = torch.utils.data.DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle,
                                                  seed=derive_seed(seed, "sample-order"), drop_last=False)
    sampler.set_epoch(epoch)
    return list(torch.utils.data.BatchSampler(sampler, batch_size, drop_last=True))


# =========================================================================== augmentation
def random_crop(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop back to the original size at a random offset per sample."""
    if padding == 0:
        return x
    B, H, W = x.shape[0], x.shape[-2], x.shape[-1]
    lead = x.shape[1:-2]
    flat = x.reshape(B, -1, H, W)
    padded = F.pad(flat, (padding,) * 4)
    oy = torch.randint(0, 2 * padding + 1, (B,), generator=gen).to(x.device)
    ox = torch.randint(0, 2 * padding + 1, (B,), generator=gen).to(x.device)
    rows = (oy[:, None] + torch.arange(H, device=x.device))[:, :, None]   # [B, H, 1]
    cols = (ox[:, None] + torch.arange(W, device=x.device))[:, None, :]   # [B, 1, W]
    b = torch.arange(B, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[b, rows, cols]                          # [B, H, W, C']
    return out.permute(0, 3, 1, 2).reshape(B, *lead, H, W)


def random_hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mask = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device)
    return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


def soft_targets(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    return F.one_hot(y, num_classes).float() * (1.0 - smoothing) + smoothing / num_classes


def mixup(x, targets, alpha: float, prob: float, gen: torch.Generator):
    """Mix each batch with its reversed copy: ``x' = lam x + (1 - lam) x_rev`` (same for the targets)."""
    if alpha <= 0 or float(torch.rand((), generator=gen)) >= prob:
        return x, targets
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31 - 1, (), generator=gen))).beta(alpha, alpha))
    return lam * x + (1 - lam) * x.flip(0), lam * targets + (1 - lam) * targets.flip(0)


def cosine_lr(step: int, *, total: int, warmup: int, lr: float, min_lr: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from ``lr`` to ``min_lr`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def timm_cosine_lr(epoch: int, *, epochs: int, warmup: int, warmup_lr: float, lr: float, min_lr: float) -> float:
    """The learning rate of epoch ``epoch`` (0-based) under the released SpikingResformer/DA-SSDP scheduler.

    They call timm ``create_scheduler_v2(optimizer, sched='cosine', num_epochs=epochs, cooldown_epochs=10,
    min_lr=1e-5, warmup_lr=1e-5, warmup_epochs=3)`` and ``lr_scheduler.step(epoch + 1)`` after each epoch.
    What timm does with that (read in huggingface/pytorch-image-models, timm/scheduler/scheduler_factory.py
    ``create_scheduler_v2`` and timm/scheduler/cosine_lr.py ``CosineLRScheduler._get_lr``): a
    CosineLRScheduler(t_initial=epochs, lr_min=min_lr, warmup_t=warmup, warmup_lr_init=warmup_lr,
    warmup_prefix=False, cycle_limit=1, t_in_epochs=True); its constructor sets the lr to warmup_lr, so epoch 0
    trains at warmup_lr, and epoch t at ``_get_lr(t)``:

    * t < warmup: ``warmup_lr + t * (lr - warmup_lr) / warmup`` (never reaches lr inside the warm-up);
    * warmup <= t < epochs: ``min_lr + (lr - min_lr) * (1 + cos(pi * t / epochs)) / 2``; with
      warmup_prefix False, t is *not* shifted by the warm-up: the cosine spans all ``epochs`` and the warm-up
      overwrites its first epochs;
    * t >= epochs (cycle index 1 >= cycle_limit): ``min_lr``.

    ``cooldown_epochs`` does not enter the scheduler: create_scheduler_v2 only returns
    ``epochs + cooldown_epochs`` as the suggested run length (timm's own train.py loops that long). The released
    code discards it (``lr_scheduler, _ = create_scheduler_v2(...)``) and loops ``range(args.epochs)``, so its
    runs train no cooldown epoch. Per-iteration updates (``step_update``) are a no-op with t_in_epochs.
    """
    if epoch < warmup:
        return warmup_lr + epoch * (lr - warmup_lr) / warmup
    if epoch >= epochs:
        return min_lr
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * epoch / epochs))


def lr_scheduler(opt: torch.optim.Optimizer, cfg: dict, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """torch's ``LambdaLR`` stepping once per optimizer step through :func:`scheduled_lr`; its state (the
    step count) travels in the checkpoint.

    The optimizer is built with ``lr=1``, so the factor LambdaLR multiplies by *is* the learning rate:
    exact (no ``lr * (f / lr)`` rounding) and defined for ``lr=0`` with a non-zero warm-up. LambdaLR rather
    than a chain of torch's cosine/linear schedulers: those update the rate recursively, and the timm
    schedule (cosine over all epochs, overwritten by the warm-up) has no torch built-in; the closed form
    is the one tested against timm."""
    if any(g["lr"] != 1.0 for g in opt.param_groups):
        raise ValueError("lr_scheduler expects an optimizer built with lr=1.0 (the schedule gives the rate)")
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: scheduled_lr(cfg, step // steps_per_epoch, step % steps_per_epoch, steps_per_epoch))


def scheduled_lr(cfg: dict, epoch: int, step_in_epoch: int, steps_per_epoch: int) -> float:
    """The learning rate of one optimizer step under ``cfg['lr_schedule']``; epochs past ``cfg['epochs']``
    (the ``cooldown_epochs``) get ``min_lr`` under both schedules. A pure function of the position, so a
    resumed run continues the schedule exactly."""
    if cfg["lr_schedule"] == "timm":
        return timm_cosine_lr(epoch, epochs=cfg["epochs"], warmup=cfg["warmup_epochs"], warmup_lr=cfg["warmup_lr"],
                              lr=cfg["lr"], min_lr=cfg["min_lr"])
    return cosine_lr(epoch * steps_per_epoch + step_in_epoch, total=steps_per_epoch * cfg["epochs"],
                     warmup=cfg["warmup_epochs"] * steps_per_epoch, lr=cfg["lr"], min_lr=cfg["min_lr"])


# =========================================================================== distributed
def init_distributed(device_name: str) -> tuple[int, int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    try:
        dev = pick_device(device_name)
    except (RuntimeError, ValueError) as exc:  # cuda asked for on a machine without it: the user's choice
        raise UsageError(f"device: {exc}") from None
    if dev.type == "cuda":
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return rank, world, local, dev


# =========================================================================== model helpers
def build_model(cfg: dict, num_classes: int, in_channels: int):
    from .models.spikingresformer import spikingresformer

    model = spikingresformer(cfg["model"], num_classes=num_classes, in_channels=in_channels,
                             img_size=cfg["img_size"], T=cfg["T"], drop_path=cfg["drop_path"])
    # With momentum 0.1 the running variance keeps 0.9^n of its initial 1.0 while the true variance
    # after the std-0.02 init is ~1e-4: evaluation is wrong for the first ~80 steps. Runs that short
    # use null (cumulative average); the published recipe's 0.1 is the default.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = cfg["bn_momentum"]
    return model


def transfer_backbone(model: nn.Module, path: str | os.PathLike) -> dict:
    """Load every tensor of a checkpoint whose name and shape match, except the classifier head
    (which keeps its fresh initialisation).

    Returns ``{"loaded": [names], "skipped": [names], "missing": [names], "skipped_shapes": {name:
    "why"}}``. Raises :class:`CheckpointError` when no weight or bias matched: scalar buffers such as
    ``num_batches_tracked`` match any model and must not make a wrong checkpoint look transferred."""
    state = load_checkpoint(path, what="--transfer", kind="model checkpoint (a state_dict, or a dict with 'model')")
    state = state.get("model", state)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"--transfer {path}: expected a mapping of parameter names to tensors")
    own = model.state_dict()
    params = {name for name, _ in model.named_parameters()}
    head = tuple(model.head_names())
    loaded, skipped, why = {}, [], {}
    for k, v in state.items():
        k = k[7:] if k.startswith("module.") else k
        if k.startswith(head):
            why[k] = "classifier head (replaced)"
        elif k not in own:
            why[k] = f"{tuple(v.shape)}: not in this model"
        elif own[k].shape != v.shape:
            why[k] = f"{tuple(v.shape)} in the file, {tuple(own[k].shape)} here"
        else:
            loaded[k] = v
            continue
        skipped.append(k)
    if not any(k in params for k in loaded):
        raise CheckpointError(
            f"--transfer {path}: no weight or bias of this {len(params)}-parameter-tensor model matches the file "
            f"by name and shape ({len(skipped)} skipped, e.g. "
            f"{'; '.join(f'{k} {why[k]}' for k in skipped[:3]) or 'none'}): a checkpoint of another model?")
    model.load_state_dict(loaded, strict=False)
    missing = [k for k in own if k not in loaded]
    return {"loaded": sorted(loaded), "skipped": sorted(skipped), "missing": sorted(missing),
            "skipped_shapes": {k: why[k] for k in sorted(skipped)},
            "loaded_parameters": sum(1 for k in loaded if k in params), "model_parameters": len(params)}


def describe_transfer(info: dict, path: str | os.PathLike) -> str:
    """What ``--transfer`` loaded and skipped, for the console (names with shapes)."""
    lines = [f"--transfer {path}: loaded {info['loaded_parameters']} of {info['model_parameters']} weight/bias "
             f"tensors ({len(info['loaded'])} tensors with buffers); skipped {len(info['skipped'])}"]
    lines += [f"  skipped {name}: {reason}" for name, reason in list(info["skipped_shapes"].items())[:20]]
    if len(info["skipped"]) > 20:
        lines.append(f"  ... and {len(info['skipped']) - 20} more (all in results.json)")
    return "\n".join(lines)


@torch.no_grad()
def evaluate(model, source: Source, cfg, dev, rank, world, amp_ctx) -> dict:
    model.eval()
    total = torch.zeros(3, dtype=torch.float64, device=dev)  # loss sum, correct, count
    mean, std = _norm(cfg, dev)
    batches = shard_batches(len(source), cfg["eval_batch_size"], rank=rank, world=world, seed=0, epoch=0,
                            shuffle=False, drop_last=False)
    for x, y in source.batches(batches, cfg["workers"]):
        x, y = _prepare(x.to(dev), cfg, mean, std), y.to(dev)
        with amp_ctx():
            logits = model(x)
        total += torch.stack([F.cross_entropy(logits.float(), y, reduction="sum").double(),
                              (logits.argmax(1) == y).sum().double(), torch.tensor(float(len(y)), device=dev,
                                                                                   dtype=torch.float64)])
    if world > 1:
        torch.distributed.all_reduce(total)
    n = max(float(total[2]), 1.0)
    return {"loss": float(total[0]) / n, "acc": 100.0 * float(total[1]) / n, "n": int(total[2])}


@torch.no_grad()
def replica_max_diff(model: nn.Module) -> float:
    """Largest |w_rank - w_rank0| over all parameters and ranks (0.0 = the replicas are identical)."""
    flat = torch.cat([p.detach().flatten().float() for p in model.parameters()])
    ref = flat.clone()
    torch.distributed.broadcast(ref, 0)
    diff = (flat - ref).abs().max().reshape(1)
    torch.distributed.all_reduce(diff, op=torch.distributed.ReduceOp.MAX)
    return float(diff)


def _norm(cfg, dev):
    ms = MEAN_STD.get(cfg["dataset"])
    if ms is None:
        return None, None
    return (torch.tensor(ms[0], device=dev).view(1, -1, 1, 1), torch.tensor(ms[1], device=dev).view(1, -1, 1, 1))


def _prepare(x: torch.Tensor, cfg: dict, mean, std) -> torch.Tensor:
    if x.dim() == 5 and x.shape[-1] != cfg["img_size"]:  # DVS frames: resize each frame
        B, T = x.shape[:2]
        side = cfg["img_size"]
        x = F.interpolate(x.flatten(0, 1), size=(side, side), mode="area").view(B, T, x.shape[2], side, side)
    if mean is not None:
        x = (x - mean) / std
    return x


# =========================================================================== the run
def _write_history(out: Path, history: list[dict]) -> None:
    if not history:
        return
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for row in history:
        writer.writerow(row)
    atomic_write_text(out / "metrics.csv", buf.getvalue())
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "history", "best", "config", "rng",
                   "dassdp")


def _gather_bytes(t: torch.Tensor, dev: torch.device, world: int) -> list[torch.Tensor]:
    """Every rank's copy of a byte tensor of one shape (a collective: all ranks call it)."""
    x = t.to(device=dev, dtype=torch.int32)  # RNG states are bytes; int32 travels on gloo and nccl alike
    parts = [torch.empty_like(x) for _ in range(world)]
    torch.distributed.all_gather(parts, x)
    return [part.to("cpu", torch.uint8) for part in parts]


def _rng_states(dev: torch.device, world: int) -> dict:
    """Each rank's RNG states, in rank order (a collective under DDP): drop_path draws from the global
    generator of its own rank, so rank 0's state alone cannot resume the others."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None
    if world == 1:
        return {"torch": [cpu], "cuda": None if cuda is None else [cuda]}
    return {"torch": _gather_bytes(cpu, dev, world),
            "cuda": None if cuda is None else _gather_bytes(cuda, dev, world)}


def _restore_rng(saved: dict, dev: torch.device, rank: int, world: int) -> None:
    def mine(states):
        states = [states] if isinstance(states, torch.Tensor) else list(states)
        # another world size cannot reproduce the run anyway (the shards differ): start from rank 0's
        return states[rank] if len(states) == world else states[0]

    torch.set_rng_state(mine(saved["torch"]).to(torch.uint8))
    if dev.type == "cuda" and saved.get("cuda") is not None:
        torch.cuda.set_rng_state(mine(saved["cuda"]).to(torch.uint8), dev)


def _clean_steps_log(path: Path, start_epoch: int) -> None:
    """Keep the diagnostics of committed epochs (< ``start_epoch``) in the append-only step log.

    A kill while appending leaves a torn last line: it is dropped. A damaged line elsewhere means the
    file was edited or corrupted by something else: that is an error naming the line."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # torn by a kill during the append
            raise CheckpointError(f"{path}: line {i + 1} is not JSON (only a torn last line is repaired); "
                                  "move the file away to start a new log") from None
        if isinstance(row, dict) and row.get("epoch", start_epoch) < start_epoch:
            kept.append(line)
    atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def _commit_epoch(out: Path, *, state: dict, best_model: dict | None, history: list[dict], step_lines: list[str],
                  meta: dict | None) -> None:
    """Write one epoch's outputs; ``checkpoint.pth`` last, because it is the commit.

    Everything before it can be repeated: a kill before the checkpoint is written makes ``--resume``
    start from the previous checkpoint and write this epoch's files again; the step log keeps only
    lines of committed epochs (see :func:`_clean_steps_log`)."""
    if meta is not None:
        atomic_write_text(out / "config.yaml", yaml.safe_dump(meta["config"], sort_keys=False))
        write_run_card(out, params=meta["card"], seed=meta["config"]["seed"], device=meta["device"])
    if best_model is not None:
        save_checkpoint(best_model, out / "best.pth")
    _write_history(out, history)
    if step_lines:
        with open(out / "dassdp_steps.jsonl", "a", encoding="utf-8") as fh:
            fh.write("".join(ln + "\n" for ln in step_lines))
            fh.flush()
            os.fsync(fh.fileno())
    pause_point("train:before-commit")
    save_checkpoint(state, out / "checkpoint.pth")


def run(cfg: dict, *, output_dir: str | os.PathLike | None = None, resume: str | None = None,
        transfer: str | None = None, test_only: bool = False, return_model: bool = False,
        stop_after_epochs: int | None = None) -> dict:
    """Train (or evaluate) as configured; returns the results dict (also written to results.json).

    Usable from Python (the notebook and the study call it) as well as from the CLI. With
    ``return_model`` the trained model and the DA-SSDP component are added under ``"model"`` and
    ``"dassdp"`` (not written to disk). ``stop_after_epochs`` ends this call after that many epochs
    (the schedule still spans ``cfg['epochs'] + cfg['cooldown_epochs']``): a time-boxed job, continued later
    with ``resume``.
    """
    validate_config(cfg)
    out = Path(output_dir) if output_dir is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--output-dir {out}: is a file; give a folder (created if missing)")
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    rank, world, _, dev = init_distributed(cfg["device"])
    main_proc = rank == 0
    seed_everything(cfg["seed"])
    train_src, val_src, test_src, num_classes, in_ch, description = load_data(cfg)
    model = build_model(cfg, num_classes, in_ch).to(dev)
    use_amp = bool(cfg["amp"]) and dev.type == "cuda"
    amp_ctx = (lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp else (lambda: torch.autocast("cpu", enabled=False))
    transfer_info = None

    ckpt, rpath = None, None
    if resume is not None:
        rpath = Path(resume)
        rpath = rpath / ("best.pth" if test_only else "checkpoint.pth") if rpath.is_dir() else rpath
        ckpt = load_checkpoint(rpath, what="--resume", required=("model",) if test_only else CHECKPOINT_KEYS,
                               kind="snnlab train checkpoint")
        load_module_state(model, ckpt["model"], what="--resume", path=rpath)
    elif test_only:
        if out is None:
            raise UsageError("--test-only needs --resume CHECKPOINT or an --output-dir holding best.pth")
        state = load_checkpoint(out / "best.pth", what="--test-only", required=("model",),
                                kind="snnlab model checkpoint")
        load_module_state(model, state["model"], what="--test-only", path=out / "best.pth")
    elif transfer is not None:
        transfer_info = transfer_backbone(model, transfer)
        if main_proc:
            print(describe_transfer(transfer_info, transfer), flush=True)
        model.to(dev)

    if test_only:
        res = {"val": evaluate(model, val_src, cfg, dev, rank, world, amp_ctx),
               "test": evaluate(model, test_src, cfg, dev, rank, world, amp_ctx)}
        if main_proc:
            print(json.dumps(res))
            if out is not None:
                atomic_write_text(out / "test_only.json", json.dumps(res, indent=2) + "\n")
        return res

    ddp_model = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1.0)  # see lr_scheduler
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    plast = None
    if cfg["dassdp"]["enabled"]:
        from .plasticity.dassdp import DASSDP

        plast = DASSDP(model, dassdp_params(cfg), seed=cfg["seed"])

    steps_per_epoch = len(shard_batches(len(train_src), cfg["batch_size"], rank=rank, world=world, seed=cfg["seed"],
                                        epoch=0, shuffle=True, drop_last=True))
    if steps_per_epoch == 0:
        raise ConfigError(f"batch_size={cfg['batch_size']} x {world} process(es) exceeds the {len(train_src)} training samples")
    sched = lr_scheduler(opt, cfg, steps_per_epoch)

    start_epoch, history, best = 0, [], {"epoch": -1, "val_acc": -1.0, "test_acc": None}
    if ckpt is not None:
        try:
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
            start_epoch, history, best = int(ckpt["epoch"]) + 1, list(ckpt["history"]), dict(ckpt["best"])
            _restore_rng(ckpt["rng"], dev, rank, world)
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
            raise CheckpointError(f"--resume {rpath}: its training state does not fit this run ({one_line(exc)})") from exc
        if (plast is None) != (ckpt.get("dassdp") is None):
            raise CheckpointError(f"--resume {rpath}: the checkpoint was trained with DA-SSDP "
                                  f"{'off' if plast is not None else 'on'}, but dassdp.enabled is {plast is not None}")
        if plast is not None:
            try:
                plast.load_state_dict(ckpt["dassdp"], rank=rank, world=world)
            except (ValueError, KeyError, TypeError) as exc:
                raise CheckpointError(f"--resume {rpath}: its DA-SSDP state does not fit this run ({one_line(exc)})") from exc

    total_epochs = cfg["epochs"] + cfg["cooldown_epochs"]  # the schedule's epochs, then the cooldown at min_lr
    mean, std = _norm(cfg, dev)
    # Nothing is written before here, so a bad input leaves the output folder as it was; config.yaml and
    # the run card are written with the first committed epoch.
    meta = {"config": cfg, "device": dev, "card": {**cfg, "world_size": world, "data": description,
                                                   "resume": resume, "transfer": transfer}}
    if main_proc and out is not None:
        remove_stale_temporaries(out)  # left by a kill between writing a temporary file and its rename
        steps_file = out / "dassdp_steps.jsonl"
        if steps_file.exists():  # drop the diagnostics of epochs after the checkpoint, and a torn last line
            _clean_steps_log(steps_file, start_epoch)

    from tqdm.auto import tqdm

    t_start = time.time()
    last_epoch = total_epochs if stop_after_epochs is None else min(total_epochs, start_epoch + stop_after_epochs)
    for epoch in range(start_epoch, last_epoch):
        ddp_model.train()
        if plast is not None:
            plast.set_epoch(epoch)
        gen = derived_generator(cfg["seed"], "augment", epoch, rank)
        batches = shard_batches(len(train_src), cfg["batch_size"], rank=rank, world=world, seed=cfg["seed"],
                                epoch=epoch, shuffle=True, drop_last=True)
        sums = torch.zeros(3, dtype=torch.float64)
        diag_sums: dict[str, float] = {}
        step_lines = []
        t0 = time.time()
        bar = tqdm(train_src.batches(batches, cfg["workers"]), total=len(batches),
                   desc=f"epoch {epoch + 1}/{total_epochs}", disable=not (cfg["progress"] and main_proc),
                   leave=False)
        for i, (x, y) in enumerate(bar):
            gstep = epoch * steps_per_epoch + i
            lr = opt.param_groups[0]["lr"]
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            if cfg["crop_padding"]:
                x = random_crop(x, cfg["crop_padding"], gen)
            if cfg["hflip"]:
                x = random_hflip(x, gen)
            x = _prepare(x, cfg, mean, std)
            targets = soft_targets(y, num_classes, cfg["label_smoothing"])
            x, targets = mixup(x, targets, cfg["mixup_alpha"], cfg["mixup_prob"], gen)
            with amp_ctx():
                logits = ddp_model(x)
            loss_b = -(targets * F.log_softmax(logits.float(), 1)).sum(1)
            loss = loss_b.mean()
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg["clip_grad"] is not None:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), cfg["clip_grad"])
            scaler.step(opt)
            scaler.update()
            sched.step()
            if plast is not None:
                diag = plast.step(loss_b)
                for k, v in diag.items():
                    diag_sums[k] = diag_sums.get(k, 0.0) + v
                if main_proc and (i % cfg["log_every"] == 0):
                    step_lines.append(json.dumps({"epoch": epoch, "step": gstep, "loss": float(loss.detach()), **diag}))
            sums += torch.tensor([float(loss.detach()) * len(y), float((logits.argmax(1) == y).sum()), float(len(y))],
                                 dtype=torch.float64)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        bar.close()
        if world > 1:
            s = sums.to(dev)
            torch.distributed.all_reduce(s)
            sums = s.cpu()
        if world > 1:
            # BN statistics and firing-rate EMAs are updated locally after DDP's per-forward broadcast:
            # take rank 0's so evaluation and checkpoints see one model
            for buf in model.buffers():
                if buf.dtype != torch.bool:  # gloo has no bool; the DSSA 'initialised' flags agree anyway
                    torch.distributed.broadcast(buf, 0)
        train_time = time.time() - t0
        val = evaluate(model, val_src, cfg, dev, rank, world, amp_ctx)
        test = evaluate(model, test_src, cfg, dev, rank, world, amp_ctx)
        row = {"epoch": epoch, "lr": lr, "train_loss": float(sums[0] / sums[2]),
               "train_acc": 100.0 * float(sums[1] / sums[2]), "val_loss": val["loss"], "val_acc": val["acc"],
               "test_loss": test["loss"], "test_acc": test["acc"], "epoch_seconds": train_time,
               "step_seconds": train_time / max(1, len(batches))}
        row.update({f"dassdp/{k}": v / max(1, len(batches)) for k, v in diag_sums.items()})
        if world > 1:
            row["replica_max_diff"] = replica_max_diff(model)
        history.append(row)
        improved = val["acc"] > best["val_acc"]
        if improved:
            best = {"epoch": epoch, "val_acc": val["acc"], "test_acc": test["acc"]}
        if main_proc and cfg["progress"]:
            print(f"epoch {epoch + 1}/{total_epochs}: loss {row['train_loss']:.4f} train {row['train_acc']:.2f}% "
                  f"val {val['acc']:.2f}% test {test['acc']:.2f}% ({train_time:.1f} s)", flush=True)
        pause_point("train:epoch-end")
        if out is not None:
            # collectives on every rank first: each rank's RNG states and gate statistics go into the checkpoint
            rng = _rng_states(dev, world)
            plast_state = plast.state_dict() if plast is not None else None
            if main_proc:
                weights = model.state_dict()
                state = {"model": weights, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "scaler": scaler.state_dict(),
                         "epoch": epoch, "history": history, "best": best, "config": cfg, "rng": rng,
                         "dassdp": plast_state, "world_size": world}
                _commit_epoch(out, state=state, history=history, step_lines=step_lines, meta=meta,
                              best_model={"model": weights, "epoch": epoch, "config": cfg} if improved else None)
                meta = None
    results = {"reported_test_acc": best["test_acc"], "selected_epoch": best["epoch"],
               "selected_val_acc": best["val_acc"],
               "last_test_acc": history[-1]["test_acc"] if history else None,
               "replica_max_diff": history[-1].get("replica_max_diff") if history else None,
               "params": sum(p.numel() for p in model.parameters()), "world_size": world,
               "wall_seconds": time.time() - t_start, "data": description, "dassdp": cfg["dassdp"]["enabled"],
               "transfer": transfer_info, "history": history}
    if main_proc and out is not None:
        atomic_write_text(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    if return_model:
        results["model"], results["dassdp"] = model, plast
    return results


def main(argv: list[str] | None = None) -> int:
    """``snnlab train``: exit 0 when done, 2 for a usage error (bad key, value or config, an output path
    that is a file), 1 for a data or checkpoint file that is missing, damaged or unsafe. Input errors
    print one line (``--debug`` or ``SNNLAB_DEBUG=1`` adds the traceback); a bug keeps its traceback."""
    args, overrides = parse_args(argv)
    return command_boundary("snnlab train", lambda: _main(args, overrides), debug=args.debug)


def _main(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    cfg = load_config(args.config, overrides)
    if args.print_config:
        print(yaml.safe_dump(cfg, sort_keys=False), end="")
        return 0
    if args.output_dir is None and not args.test_only:
        raise UsageError("--output-dir is required (checkpoints and metrics go there)")
    try:
        res = run(cfg, output_dir=args.output_dir, resume=args.resume, transfer=args.transfer,
                  test_only=args.test_only)
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if not args.test_only and int(os.environ.get("RANK", "0")) == 0:
        print(f"reported test accuracy {res['reported_test_acc']:.2f}% (epoch {res['selected_epoch'] + 1}, chosen on "
              f"validation {res['selected_val_acc']:.2f}%); results in {args.output_dir}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# =========================================================================== paired replication
CONDITIONS: dict[str, dict[str, Any]] = {
    "baseline": {"dassdp.enabled": False},
    "released": {"dassdp.enabled": True, "dassdp.variant": "released", "dassdp.gate": "fitted"},
    "paper": {"dassdp.enabled": True, "dassdp.variant": "paper", "dassdp.gate": "fitted"},
    # the dopamine signal removed (G = 1), and the update's structure removed (noise of dW's norm)
    "k0": {"dassdp.enabled": True, "dassdp.variant": "paper", "dassdp.gate": "constant"},
    "random": {"dassdp.enabled": True, "dassdp.variant": "paper", "dassdp.gate": "fitted",
               "dassdp.control": "random"},
}


def bootstrap_ci(diffs, *, n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean of paired differences and its percentile-bootstrap confidence interval (seeded)."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        raise ValueError("diffs must not be empty")
    check_float("level", level, minimum=0.5, maximum=0.999)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(d.mean()), float(lo), float(hi)


def _study_run(condition: str, cfg: dict) -> dict:
    """One run of :func:`paired_study` (a top-level function, so a process pool can call it)."""
    res = run(cfg, return_model=True)
    plast = res.pop("dassdp")
    model = res.pop("model")
    last = res["history"][-1]
    return {"condition": condition, "seed": cfg["seed"], "reported_test_acc": res["reported_test_acc"],
            "selected_epoch": res["selected_epoch"], "selected_val_acc": res["selected_val_acc"],
            "last_test_acc": res["last_test_acc"],
            "val_curve": [h["val_acc"] for h in res["history"]],
            "step_seconds": float(np.mean([h["step_seconds"] for h in res["history"]])),
            "diagnostics": {k[len("dassdp/"):]: v for k, v in last.items() if k.startswith("dassdp/")},
            "diag_curves": {k[len("dassdp/"):]: [h.get(k) for h in res["history"]]
                            for k in last if k.startswith("dassdp/")},
            "gate": {s.name: s.gate for s in plast.sites} if plast is not None else None,
            "classifier_norm": float(model.classifier.weight.detach().norm())}


def paired_study(base_overrides: dict[str, Any], *, seeds, conditions=tuple(CONDITIONS), config=None,
                 progress: bool = True, on_result=None, done: list[dict] | None = None, jobs: int = 1) -> dict:
    """Train every condition for every seed (paired: one seed = one initialisation, data order and split
    for all conditions) and summarise the test accuracy chosen on validation.

    Returns ``{"runs": [{condition, seed, reported_test_acc, selected_epoch, last diagnostics}],
    "summary": {condition: {mean, sd, n, diff_mean, diff_lo, diff_hi}}}`` (differences against
    ``baseline``, 95 % bootstrap CI and paired-t CI). ``on_result(study_so_far)`` is called after each
    run. ``done``: runs of an earlier, interrupted or shorter study with the same settings; their
    (seed, condition) pairs are kept and not trained again. ``jobs`` > 1 trains that many runs at once
    in worker processes (give each ``threads: 1``); the results do not depend on it.
    """
    from tqdm.auto import tqdm

    check_int("jobs", jobs, minimum=1)
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"conditions: unknown {sorted(unknown)}; choose from {list(CONDITIONS)}")
    runs = list(done or [])
    have = {(r["seed"], r["condition"]) for r in runs}
    todo = [(s, c) for s in seeds for c in conditions if (s, c) not in have]
    cfgs = []
    for seed, cond in todo:
        cfgs.append((cond, load_config(config, {**base_overrides, **CONDITIONS[cond], "seed": seed,
                                                "progress": False})))

    def record(row):
        runs.append(row)
        runs.sort(key=lambda r: (r["seed"], list(CONDITIONS).index(r["condition"])))
        if on_result is not None:
            on_result({"runs": runs, "summary": summarise_study(runs)})

    bar = tqdm(total=len(cfgs), desc="paired runs", disable=not progress)
    if jobs == 1:
        for cond, cfg in cfgs:
            record(_study_run(cond, cfg))
            bar.update(1)
    else:
        import concurrent.futures as cf
        import multiprocessing

        with cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for fut in cf.as_completed([pool.submit(_study_run, cond, cfg) for cond, cfg in cfgs]):
                record(fut.result())
                bar.update(1)
    bar.close()
    return {"runs": runs, "summary": summarise_study(runs)}


def summarise_study(runs: list[dict]) -> dict:
    """Per condition: mean and sd of the reported accuracy; paired differences against baseline."""
    by = {}
    for r in runs:
        by.setdefault(r["condition"], {})[r["seed"]] = r["reported_test_acc"]
    out = {}
    for cond, accs in by.items():
        vals = np.array(list(accs.values()), dtype=float)
        row = {"n": int(vals.size), "mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if vals.size > 1 else 0.0}
        if cond != "baseline" and "baseline" in by:
            diffs = [accs[s] - by["baseline"][s] for s in accs if s in by["baseline"]]
            if diffs:
                row["diff_mean"], row["diff_lo"], row["diff_hi"] = bootstrap_ci(diffs)
                row["diffs"] = diffs
                if len(diffs) > 1:  # the percentile bootstrap is too narrow for a handful of seeds
                    from scipy.stats import t as student_t

                    half = student_t.ppf(0.975, len(diffs) - 1) * np.std(diffs, ddof=1) / math.sqrt(len(diffs))
                    row["t_lo"], row["t_hi"] = row["diff_mean"] - half, row["diff_mean"] + half
        out[cond] = row
    return out
