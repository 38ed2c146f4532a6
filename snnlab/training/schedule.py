"""Learning-rate schedules of ``snnlab train``: the kit's per-step warm-up + cosine (``lr_schedule: step``)
and the released SpikingResformer/DA-SSDP timm schedule stepped per epoch (``lr_schedule: timm``), as closed
forms of the position in the run, driven by torch's ``LambdaLR``.
"""
import math

import torch


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
