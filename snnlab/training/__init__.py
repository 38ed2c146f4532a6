"""The pieces of ``snnlab train`` (the command itself, with its re-exports, is :mod:`snnlab.train`).

``config`` (the typed ``TrainConfig``, recipes, overrides, ``--help``), ``data`` (the training ``Source``,
splits, cuts, per-rank batches, normalisation; the dataset *readers* are :mod:`snnlab.data`),
``augment`` (crop, flip, label smoothing, mixup), ``schedule`` (learning-rate schedules), ``distributed``
(torchrun process group, per-rank RNG states), ``trainer`` (``run``: the training loop and what it
writes) and ``study`` (the paired-seed DA-SSDP study; its statistics are :mod:`snnlab.stats`).
Import the submodule you need.
"""
