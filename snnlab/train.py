"""``snnlab train``: SpikingResformer with or without DA-SSDP, from a YAML recipe, alone or under torchrun.

Seed-shaped commands (``-c`` picks a recipe under ``configs/``; every key can be overridden)::

    snnlab train -c configs/direct_training/digits.yaml --output-dir runs/digits
    snnlab train -c configs/direct_training/cifar10.yaml --data-path data/cifar10 --output-dir runs/c10
    snnlab train -c configs/transfer/cifar10dvs.yaml --data-path data/cifar10dvs --output-dir runs/dvs \\
        --transfer runs/imagenet/checkpoint.pth
    torchrun --standalone --nnodes=1 --nproc-per-node=8 -m snnlab.train \\
        -c configs/main/spikingresformer_l.yaml --data-path /path/to/imagenet --output-dir runs/l
    snnlab train -c configs/direct_training/digits.yaml --epochs 3 --amp false --dassdp.enabled true

Overrides: ``--KEY VALUE`` or ``--KEY=VALUE`` for every key of the config (``snnlab train --help`` lists them
with type and default, ``--print-config`` shows the resolved values); nested keys use dots
(``--dassdp.variant released``). Values are read as YAML scalars and checked against the key's type, so
``--amp false`` is the boolean false and ``--dassdp.sites classifier,dssa_proj`` (or ``[classifier]``) is a
list. The keys are the fields of :class:`snnlab.training.config.TrainConfig`.

Under torchrun (``RANK``/``WORLD_SIZE`` set) the process group uses gloo on CPU and nccl on CUDA;
each rank trains on its share of one seeded permutation (torch's ``DistributedSampler``), gradients are averaged
by DDP, and the DA-SSDP statistics and updates are all-reduced so every replica applies the same dW.

This module is the command line; the pieces live in :mod:`snnlab.training` (config, data, augment, schedule,
distributed, trainer, study) and are re-exported here, so ``from snnlab import train; train.run(...)`` works.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import torch
import yaml

from .errors import ConfigError, UsageError, command_boundary
from .stats import bootstrap_ci
from .training.augment import mixup, random_crop, random_hflip, soft_targets
from .training.config import (DATASETS, FILELESS_DATASETS, LR_SCHEDULES, DASSDPConfig, TrainConfig, dassdp_params,
                              load_config, parse_args, read_yaml_config, validate_config)
from .training.data import MEAN_STD, Source, load_data, shard_batches
from .training.distributed import init_distributed, replica_max_diff
from .training.schedule import cosine_lr, lr_scheduler, scheduled_lr, timm_cosine_lr
from .training.study import CONDITIONS, paired_study, summarise_study
from .training.trainer import CHECKPOINT_KEYS, build_model, describe_transfer, evaluate, run, transfer_backbone

__all__ = ["CHECKPOINT_KEYS", "CONDITIONS", "DATASETS", "FILELESS_DATASETS", "LR_SCHEDULES", "MEAN_STD",
           "ConfigError", "DASSDPConfig", "Source", "TrainConfig", "bootstrap_ci", "build_model", "cosine_lr",
           "dassdp_params", "describe_transfer", "evaluate", "init_distributed", "load_config", "load_data",
           "lr_scheduler", "main", "mixup", "paired_study", "parse_args", "random_crop", "random_hflip", "read_yaml_config",
           "replica_max_diff", "run", "scheduled_lr", "shard_batches", "soft_targets", "summarise_study",
           "timm_cosine_lr", "transfer_backbone", "validate_config"]


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
