"""What ``snnlab train`` trains on: the training ``Source`` (in-memory tensors or a file dataset), the
train/val/test splits and cuts of each dataset, this rank's batches of an epoch, and the per-dataset
normalisation. The dataset *readers* (CIFAR binaries, image folders, DVS frames, the bundled digits) are
:mod:`snnlab.data`.
"""
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import data as sdata
from ..errors import ConfigError, DataError
from ..utils import derive_seed, derived_generator
from .config import FILELESS_DATASETS

# CIFAR: the constants of the released SpikingResformer/DA-SSDP create_loader calls (for CIFAR-10 the widely
# copied std 0.2023/0.1994/0.2010, not the per-pixel 0.247/0.2435/0.2616; for CIFAR-100 /255 of 0-255 values)
MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": (tuple(v / 255 for v in (129.3, 124.1, 112.4)), tuple(v / 255 for v in (68.2, 65.4, 70.4))),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class Source:
    """A labelled sample collection: tensors held in memory (``x``, ``y``, multiplied by ``scale`` when a
    batch is taken) or a file dataset read through a ``DataLoader``; ``batches(index_lists)`` yields
    ``(x float32, y int64)``."""

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


def normalisation(cfg: dict, dev: torch.device):
    """(mean, std) as ``[1, C, 1, 1]`` tensors for ``cfg['dataset']``, or (None, None) where inputs are used
    as read."""
    ms = MEAN_STD.get(cfg["dataset"])
    if ms is None:
        return None, None
    return (torch.tensor(ms[0], device=dev).view(1, -1, 1, 1), torch.tensor(ms[1], device=dev).view(1, -1, 1, 1))


def prepare_batch(x: torch.Tensor, cfg: dict, mean, std) -> torch.Tensor:
    """A batch as the model takes it: DVS frames resized to ``img_size``, then normalised."""
    if x.dim() == 5 and x.shape[-1] != cfg["img_size"]:  # DVS frames: resize each frame
        B, T = x.shape[:2]
        side = cfg["img_size"]
        x = F.interpolate(x.flatten(0, 1), size=(side, side), mode="area").view(B, T, x.shape[2], side, side)
    if mean is not None:
        x = (x - mean) / std
    return x
