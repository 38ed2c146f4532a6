"""Each reader on tiny files the test writes; the digits split checked for stratification and seeding."""
import gzip
import struct

import numpy as np
import pytest
import torch

from snnlab import data, errors


def test_data_error_is_the_kits_error_type():
    assert data.DataError is errors.DataError
    assert issubclass(data.DataError, FileNotFoundError)


# --------------------------------------------------------------------------- digits
def test_digits_split_is_stratified_disjoint_and_complete():
    d = data.load_digits_split(0)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert d.train.x.shape[1:] == (1, 8, 8) and d.train.x.dtype == torch.float32
    assert 0.0 <= d.train.x.min() and d.train.x.max() <= 1.0
    counts = torch.bincount(d.test.y, minlength=10)
    assert counts.min() >= 26 and counts.max() <= 28  # ~15% of each class (174..183 images per class)
    flat = lambda s: {tuple(v) for v in s.x.flatten(1).tolist()}
    # Digits contain a few duplicate images, so compare sizes of unions rather than exact disjointness.
    assert len(flat(d.train) | flat(d.test)) > len(flat(d.train))


def test_digits_split_same_seed_same_split_other_seed_other_split():
    a, b, c = data.load_digits_split(3), data.load_digits_split(3), data.load_digits_split(4)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.y, c.train.y)


def test_digits_resize_keeps_range_and_mean_ink():
    small, big = data.load_digits_split(0), data.load_digits_split(0, size=28)
    assert big.train.x.shape[1:] == (1, 28, 28)
    assert big.train.x.min() >= 0 and big.train.x.max() <= 1
    # Bilinear upsampling preserves the average intensity up to border effects.
    assert abs(big.train.x.mean().item() - small.train.x.mean().item()) < 0.02


def test_digits_classes_subset():
    d = data.load_digits_split(0, classes=(0, 1, 2))
    assert set(d.train.y.unique().tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match="classes"):
        data.load_digits_split(0, classes=(11,))


# --------------------------------------------------------------------------- MNIST IDX
def write_idx(path, array, magic, compress=False):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


@pytest.mark.parametrize("compress", [False, True])
def test_read_mnist_idx_reads_tiny_files(tmp_path, compress):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    labels = np.array([7, 0, 3])
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, 2051, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, 2049, compress)
    x, y = data.read_mnist_idx(tmp_path, "test")
    assert x.dtype == torch.uint8 and x.shape == (3, 28, 28)
    assert torch.equal(x, torch.from_numpy(images.astype(np.uint8)))
    assert y.tolist() == [7, 0, 3]


def test_read_mnist_idx_missing_files_name_the_layout(tmp_path):
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.*snnlab never downloads"):
        data.read_mnist_idx(tmp_path, "train")


def test_read_mnist_idx_rejects_truncated_and_wrong_magic(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28)), 2051)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, 5) + b"\x01\x02")
    with pytest.raises(data.DataError, match="5.*bytes"):
        data.read_mnist_idx(tmp_path, "train")
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2), 2051)
    with pytest.raises(data.DataError, match="magic number 2051, expected 2049"):
        data.read_mnist_idx(tmp_path, "train")


def test_read_mnist_idx_truncated_gzip_names_the_file(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28)), 2051, compress=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 0, 3]), 2049, compress=True)
    damaged = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = damaged.read_bytes()
    damaged.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataError, match=r"t10k-images-idx3-ubyte\.gz.*damaged or truncated"):
        data.read_mnist_idx(tmp_path, "test")


def test_read_mnist_idx_corrupt_gzip_names_the_file(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)), 2051)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 0, 3]), 2049, compress=True)
    damaged = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(damaged.read_bytes())
    raw[-8] ^= 0xFF  # the stored CRC-32 no longer matches the data
    damaged.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte\.gz.*re-download"):
        data.read_mnist_idx(tmp_path, "test")
    damaged.write_bytes(b"\x1f\x8b" + b"\x00" * 30)  # gzip magic, then nonsense
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        data.read_mnist_idx(tmp_path, "test")


# --------------------------------------------------------------------------- CIFAR binary
def cifar_records(labels, coarse=None):
    rows = []
    for i, label in enumerate(labels):
        pixels = np.full(3072, i * 10 % 256, dtype=np.uint8)
        head = [label] if coarse is None else [coarse[i], label]
        rows.append(np.concatenate([np.array(head, dtype=np.uint8), pixels]))
    return np.stack(rows).tobytes()


def test_read_cifar10_binary_from_subfolder(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(cifar_records([i, 9]))
    x, y = data.read_cifar_binary(tmp_path, "cifar10", "train")
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.uint8
    assert y.tolist() == [1, 9, 2, 9, 3, 9, 4, 9, 5, 9]
    assert int(x[1, 2, 31, 31]) == 10


def test_read_cifar100_binary_returns_fine_labels(tmp_path):
    (tmp_path / "test.bin").write_bytes(cifar_records([55, 99], coarse=[3, 19]))
    x, y = data.read_cifar_binary(tmp_path, "cifar100", "test")
    assert y.tolist() == [55, 99] and x.shape == (2, 3, 32, 32)


def test_read_cifar_binary_errors(tmp_path):
    with pytest.raises(data.DataError, match="test_batch.bin"):
        data.read_cifar_binary(tmp_path, "cifar10", "test")
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(data.DataError, match="multiple of the 3073-byte"):
        data.read_cifar_binary(tmp_path, "cifar10", "test")
    with pytest.raises(ValueError, match="variant"):
        data.read_cifar_binary(tmp_path, "cifar11", "test")


# --------------------------------------------------------------------------- folders
def test_image_folder_reads_classes_and_resizes(tmp_path):
    from PIL import Image

    for cls, value in (("cat", 0), ("dog", 255)):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.full((6, 10, 3), value, dtype=np.uint8)).save(tmp_path / cls / "a.png")
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    ds = data.ImageFolder(tmp_path, size=4)
    assert ds.classes == ["cat", "dog"] and len(ds) == 2
    x, label = ds[1]
    assert x.shape == (3, 4, 4) and label == 1 and torch.allclose(x, torch.ones_like(x))


def test_image_folder_errors_name_the_layout(tmp_path):
    with pytest.raises(data.DataError, match="one folder per class"):
        data.ImageFolder(tmp_path)


def test_image_folder_corrupt_image_names_the_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    ds = data.ImageFolder(tmp_path)
    with pytest.raises(data.DataError, match=r"broken\.png: not a readable image"):
        ds[0]


def write_image_classes(root, names, *, files=("0.png",)):
    from PIL import Image

    for name in names:
        (root / name).mkdir(parents=True)
        for file in files:
            Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(root / name / file)


def test_image_folder_split_missing_a_class_keeps_training_indices(tmp_path):
    write_image_classes(tmp_path / "train", ["a", "b", "c"])
    write_image_classes(tmp_path / "val", ["a", "c"])
    train = data.ImageFolder(tmp_path / "train")
    val = data.ImageFolder(tmp_path / "val", classes=train.classes)
    assert val.classes == ["a", "b", "c"]
    assert [(path.parent.name, label) for path, label in val.samples] == [("a", 0), ("c", 2)]
    assert val[1][1] == 2
    # Without the training classes, val/c would get index 1: the bug `classes` exists to prevent.
    assert data.ImageFolder(tmp_path / "val").samples[1][1] == 1


def test_image_folder_split_with_an_unknown_class_names_it(tmp_path):
    write_image_classes(tmp_path / "train", ["a", "b", "c"])
    write_image_classes(tmp_path / "val", ["a", "d"])
    with pytest.raises(data.DataError, match=r"val[/\\]d not among the 3 known classes \(a, b, c\)"):
        data.ImageFolder(tmp_path / "val", classes=["a", "b", "c"])


@pytest.mark.parametrize("classes", [None, ["a", "b"]])
def test_image_folder_empty_class_folder_names_it(tmp_path, classes):
    write_image_classes(tmp_path, ["a"])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    with pytest.raises(data.DataError, match=r"[/\\]b: class folder holds no \.png"):
        data.ImageFolder(tmp_path, classes=classes)


def test_scan_class_folders_rejects_bad_classes_argument(tmp_path):
    write_image_classes(tmp_path, ["a"])
    with pytest.raises(ValueError, match="classes must not repeat"):
        data.scan_class_folders(tmp_path, (".png",), classes=["a", "a"])
    with pytest.raises(ValueError, match="classes must be a non-empty list"):
        data.scan_class_folders(tmp_path, (".png",), classes=[])


def test_dvs_frames(tmp_path):
    (tmp_path / "airplane").mkdir()
    frames = np.random.default_rng(0).integers(0, 3, size=(4, 2, 8, 8))
    np.savez(tmp_path / "airplane" / "0.npz", frames=frames)
    np.savez(tmp_path / "airplane" / "1.npz", other=frames)
    ds = data.DVSFrames(tmp_path)
    x, label = ds[0]
    assert x.dtype == torch.float32 and x.shape == (4, 2, 8, 8) and label == 0
    assert torch.equal(x, torch.from_numpy(frames.astype(np.float32)))
    with pytest.raises(data.DataError, match="no 'frames' array"):
        ds[1]


def test_dvs_frames_test_split_uses_training_classes(tmp_path):
    frames = np.zeros((2, 2, 4, 4))
    for split, names in (("train", ["airplane", "cat", "dog"]), ("test", ["dog"])):
        for name in names:
            (tmp_path / split / name).mkdir(parents=True)
            np.savez(tmp_path / split / name / "0.npz", frames=frames)
    train = data.DVSFrames(tmp_path / "train")
    test = data.DVSFrames(tmp_path / "test", classes=train.classes)
    assert test.classes == ["airplane", "cat", "dog"] and test[0][1] == 2
    (tmp_path / "test" / "ship").mkdir()
    with pytest.raises(data.DataError, match="ship not among"):
        data.DVSFrames(tmp_path / "test", classes=train.classes)


def test_splits_move_to_a_device_whole():
    splits = data.load_digits_split(0)
    moved = splits.to("cpu")
    assert moved.description == splits.description and moved.num_classes == splits.num_classes
    for part in ("train", "val", "test"):
        a, b = getattr(splits, part), getattr(moved, part)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and b.x.device == torch.device("cpu")
