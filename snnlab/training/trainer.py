"""``run``: one ``snnlab train`` run (train, or evaluate a checkpoint), and the files it writes.

What a run writes to its output folder: ``config.yaml`` (resolved), ``run_card.json``, ``metrics.csv`` and
``metrics.jsonl`` (one row per epoch), ``dassdp_steps.jsonl`` (per-step rule diagnostics), ``checkpoint.pth``
(atomic, each epoch: model, optimizer, LR scheduler, scaler, RNG, DA-SSDP state, history), ``best.pth`` (model
at the best *validation* epoch) and ``results.json``. The reported accuracy is the test accuracy at the epoch
chosen on validation, never the best test epoch.
"""
import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from ..checkpoints import load_checkpoint, load_module_state, save_checkpoint
from ..errors import CheckpointError, ConfigError, UsageError, one_line
from ..models.spikingresformer import spikingresformer
from ..plasticity.dassdp import DASSDP
from ..utils import (atomic_write_text, derived_generator, pause_point, remove_stale_temporaries, seed_everything,
                     write_run_card)
from .augment import mixup, random_crop, random_hflip, soft_targets
from .config import TrainConfig
from .data import Source, load_data, normalisation, prepare_batch, shard_batches
from .distributed import init_distributed, replica_max_diff, restore_rng, rng_states
from .schedule import lr_scheduler


# --------------------------------------------------------------------------- the model
def build_model(cfg: dict, num_classes: int, in_channels: int) -> nn.Module:
    """The configured SpikingResformer for this dataset, BatchNorm momentum set from ``bn_momentum``."""
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
    mean, std = normalisation(cfg, dev)
    batches = shard_batches(len(source), cfg["eval_batch_size"], rank=rank, world=world, seed=0, epoch=0,
                            shuffle=False, drop_last=False)
    for x, y in source.batches(batches, cfg["workers"]):
        x, y = prepare_batch(x.to(dev), cfg, mean, std), y.to(dev)
        with amp_ctx():
            logits = model(x)
        total += torch.stack([F.cross_entropy(logits.float(), y, reduction="sum").double(),
                              (logits.argmax(1) == y).sum().double(), torch.tensor(float(len(y)), device=dev,
                                                                                   dtype=torch.float64)])
    if world > 1:
        torch.distributed.all_reduce(total)
    n = max(float(total[2]), 1.0)
    return {"loss": float(total[0]) / n, "acc": 100.0 * float(total[1]) / n, "n": int(total[2])}


# --------------------------------------------------------------------------- the run's files
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


# --------------------------------------------------------------------------- the run
def run(cfg: TrainConfig | Mapping[str, Any], *, output_dir: str | os.PathLike | None = None,
        resume: str | None = None, transfer: str | None = None, test_only: bool = False, return_model: bool = False,
        stop_after_epochs: int | None = None) -> dict:
    """Train (or evaluate) as configured; returns the results dict (also written to results.json).

    Usable from Python (the notebook and the study call it) as well as from the CLI. With
    ``return_model`` the trained model and the DA-SSDP component are added under ``"model"`` and
    ``"dassdp"`` (not written to disk). ``stop_after_epochs`` ends this call after that many epochs
    (the schedule still spans ``cfg['epochs'] + cfg['cooldown_epochs']``): a time-boxed job, continued later
    with ``resume``. ``cfg`` is a :class:`TrainConfig` or its dict view (what ``load_config`` returns).
    """
    config = (cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)).resolved()
    cfg = config.to_dict()
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
        plast = DASSDP(model, config.dassdp.params(), seed=cfg["seed"])

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
            restore_rng(ckpt["rng"], dev, rank, world)
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
    mean, std = normalisation(cfg, dev)
    # Nothing is written before here, so a bad input leaves the output folder as it was; config.yaml and
    # the run card are written with the first committed epoch.
    meta = {"config": cfg, "device": dev, "card": {**cfg, "world_size": world, "data": description,
                                                   "resume": resume, "transfer": transfer}}
    if main_proc and out is not None:
        remove_stale_temporaries(out)  # left by a kill between writing a temporary file and its rename
        steps_file = out / "dassdp_steps.jsonl"
        if steps_file.exists():  # drop the diagnostics of epochs after the checkpoint, and a torn last line
            _clean_steps_log(steps_file, start_epoch)

    from ..utils import progress as progress_bar

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
        bar = progress_bar(train_src.batches(batches, cfg["workers"]), total=len(batches),
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
            x = prepare_batch(x, cfg, mean, std)
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
            rng = rng_states(dev, world)
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
