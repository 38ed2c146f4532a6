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
diagnostics), ``checkpoint.pth`` (atomic, each epoch: model, optimizer, scaler, RNG, DA-SSDP state,
history), ``best.pth`` (model at the best *validation* epoch) and ``results.json``. The reported
accuracy is the test accuracy at the epoch chosen on validation, never the best test epoch.

Under torchrun (``RANK``/``WORLD_SIZE`` set) the process group uses gloo on CPU and nccl on CUDA;
each rank trains on its shard of one seeded permutation, gradients are averaged by DDP, and the
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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from . import data as sdata
from .utils import (atomic_torch_save, atomic_write_text, check_choice, check_float, check_int,
                    pick_device, seed_everything, write_run_card)

DATASETS = ("digits", "cifar10", "cifar100", "imagefolder", "cifar10dvs")

DEFAULTS: dict[str, Any] = {
    "model": "nano",            # ti | s | m | l | cifar | dvs | nano
    "T": 4,                     # time steps (static images are repeated T times)
    "img_size": 16,             # input side after resizing (digits: 8x8 upsampled)
    "drop_path": 0.0,
    "bn_momentum": 0.1,         # BatchNorm running-statistics momentum (null = cumulative average: short runs)
    "dataset": "digits",        # digits | cifar10 | cifar100 | imagefolder | cifar10dvs
    "data_path": None,
    "split_seed": 0,            # fixes the train/val(/test) split, separate from `seed`
    "val_fraction": 0.1,        # held out of train for model selection when the data has no val split
    "test_fraction": 0.1,       # cifar10dvs without train/test folders: held out for test
    "max_train_samples": 0,     # use only the first n training samples (0 = all): smoke tests, quick runs
    "max_eval_samples": 0,      # the same for validation and test
    "epochs": 10,
    "batch_size": 64,           # per process
    "lr": 5.0e-4,
    "min_lr": 1.0e-5,
    "weight_decay": 0.01,
    "warmup_epochs": 1,         # linear learning-rate warm-up before the cosine decay
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
    "dassdp": {
        "enabled": False,
        "variant": "paper",     # released | paper
        "warmup_epochs": 1,
        "a_plus": 1.5e-3,
        "a_minus": 1.0e-4,
        "sigma": 1.0,
        "latency": "first",     # first | last
        "gate": "fitted",       # fitted | constant (k = 0 control)
        "sites": ["classifier", "dssa_proj"],
        "dssa_tap": "layer",    # layer | block
        "ddp_sync": True,
    },
}

MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
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


def _set(cfg: dict, dotted: str, value: Any) -> None:
    flat = _flatten(DEFAULTS)
    if dotted not in flat:
        raise ValueError(f"unknown config key {dotted!r}; known keys: {', '.join(sorted(flat))}")
    node = cfg
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = _coerce(dotted, value, flat[dotted])


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """DEFAULTS <- YAML file <- overrides (dotted keys). Unknown keys raise ``ValueError``."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        text = Path(path).read_text()
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"config {path}: expected a mapping at the top level")
        for key, value in _flatten(loaded).items():
            _set(cfg, key, value)
    for key, value in (overrides or {}).items():
        _set(cfg, key, value)
    validate_config(cfg)
    return cfg


def validate_config(cfg: dict) -> None:
    from .models.spikingresformer import VARIANTS as MODELS

    check_choice("model", cfg["model"], tuple(MODELS))
    check_choice("dataset", cfg["dataset"], DATASETS)
    for key in ("T", "img_size", "epochs", "batch_size", "eval_batch_size", "log_every"):
        check_int(key, cfg[key], minimum=1)
    for key in ("seed", "split_seed", "warmup_epochs", "workers", "crop_padding", "threads", "max_train_samples",
                "max_eval_samples"):
        check_int(key, cfg[key], minimum=0)
    for key in ("lr", "min_lr", "weight_decay", "label_smoothing", "mixup_alpha"):
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
        for x, y in loader:
            yield x.float(), torch.as_tensor(y, dtype=torch.long)


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
    if name == "digits":
        sp = sdata.load_digits_split(cfg["split_seed"], size=size)
        mk = lambda s: Source(s.x, s.y)  # noqa: E731
        return mk(sp.train), mk(sp.val), mk(sp.test), sp.num_classes, 1, sp.description
    if root is None:
        raise ValueError(f"dataset {name!r} needs --data-path (see data/README.md for the expected layout)")
    if name in ("cifar10", "cifar100"):
        xtr, ytr = sdata.read_cifar_binary(root, name, "train")
        xte, yte = sdata.read_cifar_binary(root, name, "test")
        if size != 32:
            raise ValueError(f"img_size must be 32 for {name}, got {size}")
        full = Source(xtr, ytr, scale=1.0 / 255.0)
        tr, va = _split(len(full), cfg["val_fraction"], cfg["split_seed"])
        return (full.subset(tr), full.subset(va), Source(xte, yte, scale=1.0 / 255.0),
                10 if name == "cifar10" else 100, 3, f"{name} binary at {root}")
    if name == "imagefolder":
        root = Path(root)
        train_ds = sdata.ImageFolder(root / "train", size=size)
        test_ds = sdata.ImageFolder(root / "val", size=size)
        labels = torch.tensor([c for _, c in train_ds.samples])
        full = Source(dataset=train_ds, labels=labels)
        tr, va = _split(len(full), cfg["val_fraction"], cfg["split_seed"])
        test = Source(dataset=test_ds, labels=torch.tensor([c for _, c in test_ds.samples]))
        return (full.subset(tr), full.subset(va), test, len(train_ds.classes), 3,
                f"image folders {root}/train (minus {cfg['val_fraction']:.0%} for validation), test = {root}/val")
    # cifar10dvs
    root = Path(root)
    if (root / "train").is_dir() and (root / "test").is_dir():
        train_ds, test_ds = sdata.DVSFrames(root / "train"), sdata.DVSFrames(root / "test")
        full = Source(dataset=train_ds, labels=torch.tensor([c for _, c in train_ds.samples]))
        test = Source(dataset=test_ds, labels=torch.tensor([c for _, c in test_ds.samples]))
    else:
        ds = sdata.DVSFrames(root)
        whole = Source(dataset=ds, labels=torch.tensor([c for _, c in ds.samples]))
        rest, te = _split(len(whole), cfg["test_fraction"], cfg["split_seed"] + 1)
        full, test = whole.subset(rest), whole.subset(te)
        train_ds = ds
    tr, va = _split(len(full), cfg["val_fraction"], cfg["split_seed"])
    return full.subset(tr), full.subset(va), test, len(train_ds.classes), 2, f"DVS frames at {root}"


def shard_batches(n: int, batch_size: int, *, rank: int, world: int, seed: int, epoch: int,
                  shuffle: bool, drop_last: bool) -> list[list[int]]:
    """This rank's index batches: one seeded permutation per epoch (same on every rank), padded to a
    multiple of ``world`` (training) and dealt out round-robin, as ``DistributedSampler`` does."""
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    else:
        order = list(range(n))
    if drop_last and world > 1:
        order += order[: (-len(order)) % world]
    mine = order[rank::world]
    batches = [mine[i: i + batch_size] for i in range(0, len(mine), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


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


# =========================================================================== distributed
def init_distributed(device_name: str) -> tuple[int, int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device_name)
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
    (which keeps its fresh initialisation). Returns the loaded, skipped and missing key lists."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("model", state) if isinstance(state, dict) else state
    own = model.state_dict()
    head = tuple(model.head_names())
    loaded, skipped = {}, []
    for k, v in state.items():
        k = k[7:] if k.startswith("module.") else k
        if k.startswith(head) or k not in own or own[k].shape != v.shape:
            skipped.append(k)
        else:
            loaded[k] = v
    if not loaded:
        raise ValueError(f"--transfer {path}: no tensor matches this model (wrong checkpoint?)")
    model.load_state_dict(loaded, strict=False)
    missing = [k for k in own if k not in loaded]
    return {"loaded": sorted(loaded), "skipped": sorted(skipped), "missing": sorted(missing)}


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


def _rng_state(dev):
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}


def run(cfg: dict, *, output_dir: str | os.PathLike | None = None, resume: str | None = None,
        transfer: str | None = None, test_only: bool = False, return_model: bool = False,
        stop_after_epochs: int | None = None) -> dict:
    """Train (or evaluate) as configured; returns the results dict (also written to results.json).

    Usable from Python (the notebook and the study call it) as well as from the CLI. With
    ``return_model`` the trained model and the DA-SSDP component are added under ``"model"`` and
    ``"dassdp"`` (not written to disk). ``stop_after_epochs`` ends this call after that many epochs
    (the schedule still spans ``cfg['epochs']``): a time-boxed job, continued later with ``resume``.
    """
    validate_config(cfg)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    rank, world, _, dev = init_distributed(cfg["device"])
    out = Path(output_dir) if output_dir is not None else None
    main_proc = rank == 0
    seed_everything(cfg["seed"])
    train_src, val_src, test_src, num_classes, in_ch, description = load_data(cfg)
    model = build_model(cfg, num_classes, in_ch).to(dev)
    use_amp = bool(cfg["amp"]) and dev.type == "cuda"
    amp_ctx = (lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp else (lambda: torch.autocast("cpu", enabled=False))
    transfer_info = None

    ckpt = None
    if resume is not None:
        rpath = Path(resume)
        rpath = rpath / ("best.pth" if test_only else "checkpoint.pth") if rpath.is_dir() else rpath
        if not rpath.is_file():
            raise FileNotFoundError(f"--resume {resume}: no checkpoint at {rpath}")
        ckpt = torch.load(rpath, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
    elif test_only:
        if out is None or not (out / "best.pth").is_file():
            raise FileNotFoundError("--test-only needs --resume CHECKPOINT or an --output-dir holding best.pth")
        model.load_state_dict(torch.load(out / "best.pth", map_location="cpu", weights_only=False)["model"])
    elif transfer is not None:
        transfer_info = transfer_backbone(model, transfer)
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
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"])
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    plast = None
    if cfg["dassdp"]["enabled"]:
        from .plasticity.dassdp import DASSDP

        plast = DASSDP(model, dassdp_params(cfg))

    start_epoch, history, best = 0, [], {"epoch": -1, "val_acc": -1.0, "test_acc": None}
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, history, best = ckpt["epoch"] + 1, ckpt["history"], ckpt["best"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        if dev.type == "cuda" and ckpt["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], dev)
        if plast is not None:
            if ckpt.get("dassdp") is None:
                raise ValueError("--resume: the checkpoint was trained without DA-SSDP but dassdp.enabled is true")
            plast.load_state_dict(ckpt["dassdp"])

    steps_per_epoch = len(shard_batches(len(train_src), cfg["batch_size"], rank=rank, world=world, seed=cfg["seed"],
                                        epoch=0, shuffle=True, drop_last=True))
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={cfg['batch_size']} x {world} process(es) exceeds the {len(train_src)} training samples")
    total_steps = steps_per_epoch * cfg["epochs"]
    mean, std = _norm(cfg, dev)
    if main_proc and out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        write_run_card(out, params={**cfg, "world_size": world, "data": description, "resume": resume,
                                    "transfer": transfer}, seed=cfg["seed"], device=dev)
        steps_file = out / "dassdp_steps.jsonl"
        if steps_file.exists():  # a resumed run drops the diagnostics of the epoch it repeats
            kept = [ln for ln in steps_file.read_text().splitlines() if ln and json.loads(ln)["epoch"] < start_epoch]
            atomic_write_text(steps_file, "".join(ln + "\n" for ln in kept))

    from tqdm.auto import tqdm

    t_start = time.time()
    last_epoch = cfg["epochs"] if stop_after_epochs is None else min(cfg["epochs"], start_epoch + stop_after_epochs)
    for epoch in range(start_epoch, last_epoch):
        ddp_model.train()
        if plast is not None:
            plast.set_epoch(epoch)
        gen = torch.Generator().manual_seed(cfg["seed"] * 7919 + epoch * 104_729 + rank)
        batches = shard_batches(len(train_src), cfg["batch_size"], rank=rank, world=world, seed=cfg["seed"],
                                epoch=epoch, shuffle=True, drop_last=True)
        sums = torch.zeros(3, dtype=torch.float64)
        diag_sums: dict[str, float] = {}
        step_lines = []
        t0 = time.time()
        bar = tqdm(train_src.batches(batches, cfg["workers"]), total=len(batches),
                   desc=f"epoch {epoch + 1}/{cfg['epochs']}", disable=not (cfg["progress"] and main_proc),
                   leave=False)
        for i, (x, y) in enumerate(bar):
            gstep = epoch * steps_per_epoch + i
            lr = cosine_lr(gstep, total=total_steps, warmup=cfg["warmup_epochs"] * steps_per_epoch,
                           lr=cfg["lr"], min_lr=cfg["min_lr"])
            for g in opt.param_groups:
                g["lr"] = lr
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
        if main_proc:
            if cfg["progress"]:
                print(f"epoch {epoch + 1}/{cfg['epochs']}: loss {row['train_loss']:.4f} train {row['train_acc']:.2f}% "
                      f"val {val['acc']:.2f}% test {test['acc']:.2f}% ({train_time:.1f} s)", flush=True)
            if out is not None:
                state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scaler": scaler.state_dict(),
                         "epoch": epoch, "history": history, "best": best, "config": cfg, "rng": _rng_state(dev),
                         "dassdp": plast.state_dict() if plast is not None else None}
                atomic_torch_save(state, out / "checkpoint.pth")
                if improved:
                    atomic_torch_save({"model": model.state_dict(), "epoch": epoch, "config": cfg}, out / "best.pth")
                _write_history(out, history)
                if step_lines:
                    with open(out / "dassdp_steps.jsonl", "a") as fh:
                        fh.write("".join(ln + "\n" for ln in step_lines))
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
    args, overrides = parse_args(argv)
    try:
        cfg = load_config(args.config, overrides)
    except (ValueError, FileNotFoundError) as exc:
        print(f"snnlab train: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(yaml.safe_dump(cfg, sort_keys=False), end="")
        return 0
    if args.output_dir is None and not args.test_only:
        print("snnlab train: --output-dir is required (checkpoints and metrics go there)", file=sys.stderr)
        return 2
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
    "released": {"dassdp.enabled": True, "dassdp.variant": "released", "dassdp.a_minus": 5e-4,
                 "dassdp.latency": "last", "dassdp.dssa_tap": "block", "dassdp.gate": "fitted"},
    "paper": {"dassdp.enabled": True, "dassdp.variant": "paper", "dassdp.a_minus": 1e-4,
              "dassdp.latency": "first", "dassdp.dssa_tap": "layer", "dassdp.gate": "fitted"},
    "k0": {"dassdp.enabled": True, "dassdp.variant": "paper", "dassdp.a_minus": 1e-4,
           "dassdp.latency": "first", "dassdp.dssa_tap": "layer", "dassdp.gate": "constant"},
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


def paired_study(base_overrides: dict[str, Any], *, seeds, conditions=tuple(CONDITIONS), config=None,
                 progress: bool = True, on_result=None, done: list[dict] | None = None) -> dict:
    """Train every condition for every seed (paired: one seed = one initialisation, data order and split
    for all conditions) and summarise the test accuracy chosen on validation.

    Returns ``{"runs": [{condition, seed, reported_test_acc, selected_epoch, last diagnostics}],
    "summary": {condition: {mean, sd, n, diff_mean, diff_lo, diff_hi}}}`` (differences against
    ``baseline``, 95 % bootstrap CI and paired-t CI). ``on_result(study_so_far)`` is called after each
    run. ``done``: runs of an earlier, interrupted or shorter study with the same settings; their
    (seed, condition) pairs are kept and not trained again.
    """
    from tqdm.auto import tqdm

    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"conditions: unknown {sorted(unknown)}; choose from {list(CONDITIONS)}")
    runs = list(done or [])
    have = {(r["seed"], r["condition"]) for r in runs}
    jobs = [(s, c) for s in seeds for c in conditions if (s, c) not in have]
    for seed, cond in tqdm(jobs, desc="paired runs", disable=not progress):
        cfg = load_config(config, {**base_overrides, **CONDITIONS[cond], "seed": seed, "progress": False})
        res = run(cfg, return_model=True)
        plast = res.pop("dassdp")
        model = res.pop("model")
        last = res["history"][-1]
        runs.append({"condition": cond, "seed": seed, "reported_test_acc": res["reported_test_acc"],
                     "selected_epoch": res["selected_epoch"], "last_test_acc": res["last_test_acc"],
                     "val_curve": [h["val_acc"] for h in res["history"]],
                     "step_seconds": float(np.mean([h["step_seconds"] for h in res["history"]])),
                     "diagnostics": {k[len("dassdp/"):]: v for k, v in last.items() if k.startswith("dassdp/")},
                     "diag_curves": {k[len("dassdp/"):]: [h.get(k) for h in res["history"]]
                                     for k in last if k.startswith("dassdp/")},
                     "gate": {s.name: s.gate for s in plast.sites} if plast is not None else None,
                     "classifier_norm": float(model.classifier.weight.detach().norm())})
        study = {"runs": runs, "summary": summarise_study(runs)}
        if on_result is not None:
            on_result(study)
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
