"""``snnlab train`` and the Mozafari trainer under bad input: every file is read as data, every input
error is one line with the right exit code, and nothing new appears in the output folder.

Bad inputs run in-process through ``train.main(argv)`` (a subprocess costs seconds of imports).
"""
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from snnlab import train
from snnlab.errors import CheckpointError, ConfigError, DataError
from snnlab.experiments.mozafari import MozafariTrainer
from snnlab.models.mozafari import MozafariConfig, MozafariNet, load_network, save_network
from snnlab.models.spikingresformer import spikingresformer

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "configs" / "direct_training" / "digits.yaml"
CIFAR = ROOT / "configs" / "direct_training" / "cifar10.yaml"
TINY = ["--img_size", "8", "--max_train_samples", "32", "--max_eval_samples", "16", "--batch_size", "16",
        "--eval_batch_size", "16", "--threads", "1", "--progress", "false", "--epochs", "1"]


class Evil:
    """A pickle that runs a shell command when it is loaded with the full unpickler."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_evil(path: Path, marker: Path, *, key: str = "model") -> Path:
    torch.save({"config": {}, "weights": {}, key: Evil(marker)}, path)
    return path


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def run_main(argv, capsys):
    code = train.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_line(err: str, *needles: str) -> None:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("snnlab train: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished one-epoch run: checkpoint.pth, best.pth and the rest."""
    out = tmp_path_factory.mktemp("good") / "run"
    assert train.main(["-c", str(DIGITS), "--output-dir", str(out), *TINY]) == 0
    return out


# --------------------------------------------------------------------------- configs and arguments
def test_malformed_yaml_is_a_usage_error_naming_the_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: nano\nepochs: [1, 2\nlr: 1\n")
    code, err = run_main(["-c", bad, "--output-dir", tmp_path / "out"], capsys)
    assert code == 2
    assert_one_line(err, str(bad), "not valid YAML", "line")
    assert not (tmp_path / "out").exists()


def test_yaml_with_a_python_tag_is_refused_and_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.yaml"
    bad.write_text(f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    code, err = run_main(["-c", bad, "--output-dir", tmp_path / "out"], capsys)
    assert code == 2 and not marker.exists()
    assert_one_line(err, str(bad), "refused", "plain YAML")


@pytest.mark.parametrize("argv,needles", [
    (["--nonsense", "1"], ["unknown config key 'nonsense'"]),
    (["--epochs", "two"], ["epochs must be an integer"]),
    (["--data-path", "/tmp"], ["--data-path", "digits", "reads no files"]),          # silently ignored before
    (["--dataset", "cifar10", "--img_size", "32"], ["--data-path", "cifar10"]),      # needed and missing
])
def test_bad_values_are_usage_errors_and_write_nothing(tmp_path, capsys, argv, needles):
    code, err = run_main(["-c", DIGITS, "--output-dir", tmp_path / "out", *argv], capsys)
    assert code == 2
    assert_one_line(err, *needles)
    assert not (tmp_path / "out").exists()


def test_unknown_key_in_the_yaml_file_names_the_file(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("epochs: 1\nlearning_rate: 0.1\n")
    code, err = run_main(["-c", bad, "--print-config"], capsys)
    assert code == 2
    assert_one_line(err, str(bad), "learning_rate")


def test_output_dir_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    code, err = run_main(["-c", DIGITS, "--output-dir", target, *TINY], capsys)
    assert code == 2
    assert_one_line(err, "--output-dir", str(target), "folder")
    assert target.read_text() == "keep me" and listing(tmp_path) == ["out.txt"]


def test_a_bug_keeps_its_traceback_and_debug_shows_input_tracebacks(tmp_path, capsys, monkeypatch):
    code, err = run_main(["-c", tmp_path / "none.yaml", "--debug"], capsys)
    assert code == 2 and "Traceback" in err and "no such file" in err
    monkeypatch.setenv("SNNLAB_DEBUG", "1")
    code, err = run_main(["-c", tmp_path / "none.yaml"], capsys)
    assert code == 2 and "Traceback" in err
    monkeypatch.delenv("SNNLAB_DEBUG")

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(train, "run", broken)
    with pytest.raises(ZeroDivisionError):
        train.main(["-c", str(DIGITS), "--output-dir", str(tmp_path / "out")])


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("flag", ["--resume", "--transfer", "--test-only"])
def test_malicious_checkpoint_runs_nothing_and_names_the_file(tmp_path, capsys, flag):
    marker = tmp_path / "pwned"
    out = tmp_path / "out"
    if flag == "--test-only":
        out.mkdir()
        evil = write_evil(out / "best.pth", marker)
        argv = ["--test-only"]
    else:
        evil = write_evil(tmp_path / "evil.pth", marker)
        argv = [flag, evil]
    before = listing(out)
    code, err = run_main(["-c", DIGITS, "--output-dir", out, *TINY, *argv], capsys)
    assert code == 1 and not marker.exists()
    assert_one_line(err, str(evil), "refused", "posix.system" if os.name == "posix" else "system")
    assert listing(out) == before


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage", "empty", "not a checkpoint"])
def test_damaged_resume_file_is_one_line_exit_1(run_dir, tmp_path, capsys, damage):
    path = tmp_path / "ckpt.pth"
    good = (run_dir / "checkpoint.pth").read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not a checkpoint":
        torch.save({"weights": torch.zeros(3)}, path)
    out = tmp_path / "out"
    code, err = run_main(["-c", DIGITS, "--output-dir", out, *TINY, "--resume", path], capsys)
    assert code == 1
    assert_one_line(err, "--resume", str(path))
    assert not out.exists()


def test_resume_with_another_model_says_it_does_not_fit(run_dir, tmp_path, capsys):
    code, err = run_main(["-c", DIGITS, "--output-dir", tmp_path / "o", *TINY, "--img_size", "16", "--model", "dvs",
                          "--resume", run_dir / "checkpoint.pth"], capsys)
    assert code == 1
    assert_one_line(err, "--resume", "does not fit this model")


def test_transfer_with_no_matching_weight_is_refused(tmp_path, capsys):
    # every weight and bias has the wrong shape; only the scalar num_batches_tracked buffers would match
    src = spikingresformer("nano", img_size=8)
    state = {k: (torch.zeros([s + 1 for s in v.shape]) if v.dim() else v) for k, v in src.state_dict().items()}
    path = tmp_path / "other.pth"
    torch.save({"model": state}, path)
    code, err = run_main(["-c", DIGITS, "--output-dir", tmp_path / "out", *TINY, "--transfer", path], capsys)
    assert code == 1
    assert_one_line(err, "--transfer", str(path), "no weight or bias")
    assert not (tmp_path / "out").exists()


def test_transfer_reports_what_was_loaded_and_skipped_with_shapes(tmp_path, capsys):
    src = spikingresformer("nano", img_size=8).state_dict()
    name = next(k for k, v in src.items() if k.endswith("weight") and v.dim() == 4 and not k.startswith("classifier"))
    src[name] = torch.zeros(3, 3, 1, 1)
    path = tmp_path / "partial.pth"
    torch.save(src, path)
    out = tmp_path / "out"
    assert train.main(["-c", str(DIGITS), "--output-dir", str(out), *TINY, "--transfer", str(path)]) == 0
    printed = capsys.readouterr().out
    assert f"skipped {name}: (3, 3, 1, 1) in the file" in printed
    assert "skipped classifier.weight: classifier head (replaced)" in printed
    info = json.loads((out / "results.json").read_text())["transfer"]
    assert name in info["skipped"] and name not in info["loaded"]
    assert info["loaded_parameters"] == info["model_parameters"] - 2    # the bad conv and the head's weight


# --------------------------------------------------------------------------- data
def test_bad_cifar_files_are_data_errors(tmp_path, capsys):
    data = tmp_path / "cifar"
    data.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (data / name).write_bytes(b"\x00" * 100)                # not a multiple of a 3073-byte record
    code, err = run_main(["-c", CIFAR, "--data-path", data, "--output-dir", tmp_path / "out"], capsys)
    assert code == 1
    assert_one_line(err, "data_batch_1.bin", "3073")
    code, err = run_main(["-c", CIFAR, "--data-path", tmp_path / "nowhere", "--output-dir", tmp_path / "out"], capsys)
    assert code == 1
    assert_one_line(err, "--data-path", "nowhere")
    assert not (tmp_path / "out").exists()


def _png(path: Path, value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 6), (value, value, value)).save(path)


def _image_folders(root: Path, train_classes, val_classes) -> None:
    for split, classes in (("train", train_classes), ("val", val_classes)):
        for c in classes:
            for i in range(4):
                _png(root / split / c / f"{i}.png", 40 * ord(c[0]) % 255)


IMAGES = ["--dataset", "imagefolder", "--img_size", "8", "--batch_size", "4", "--eval_batch_size", "4",
          "--threads", "1", "--progress", "false", "--epochs", "1", "--val_fraction", "0.25"]


def test_corrupt_png_is_one_line_and_nothing_is_written(tmp_path, capsys):
    data = tmp_path / "images"
    _image_folders(data, ["a", "b"], ["a", "b"])
    bad = data / "train" / "b" / "2.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 10)
    out = tmp_path / "out"
    code, err = run_main(["-c", DIGITS, "--data-path", data, "--output-dir", out, *IMAGES], capsys)
    assert code == 1
    assert_one_line(err, str(bad), "not a readable image")
    assert not out.exists()


def test_image_folders_share_the_training_class_index(tmp_path):
    data = tmp_path / "images"
    _image_folders(data, ["a", "b", "c"], ["a", "c"])            # val/ lacks b
    cfg = train.load_config(DIGITS, {"dataset": "imagefolder", "data_path": str(data), "img_size": 8})
    _, _, test, n_classes, _, _ = train.load_data(cfg)
    assert n_classes == 3
    assert sorted(set(test.labels.tolist())) == [0, 2]            # c keeps its training index 2
    shutil.copytree(data / "train" / "a", data / "val" / "z")
    with pytest.raises(DataError, match="z"):
        train.load_data(cfg)


def test_truncated_gz_idx_names_the_file(tmp_path):
    import gzip

    from snnlab import data as sdata

    raw = (2051).to_bytes(4, "big") + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(2 * 784)
    blob = gzip.compress(raw)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        sdata.read_mnist_idx(tmp_path, "train")


# --------------------------------------------------------------------------- the Mozafari trainer
SMALL = MozafariConfig(features=(6, 12, 20))


def _trainer(checkpoint, seed=0):
    x = torch.rand(6, 1, 28, 28)
    y = torch.arange(6) % 10
    return MozafariTrainer(MozafariNet(SMALL), x, y, x[:2], y[:2], epochs=(1, 0, 0), seed=seed,
                           checkpoint=checkpoint, progress=False)


def test_mozafari_malicious_checkpoint_and_network_run_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = write_evil(tmp_path / "evil.pt", marker, key="weights")
    with pytest.raises(CheckpointError, match=r"checkpoint parameter .*evil\.pt: refused"):
        _trainer(evil).run()
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused"):
        load_network(evil)
    assert not marker.exists()


def test_mozafari_truncated_checkpoint_names_the_parameter_and_file(tmp_path):
    good = tmp_path / "good.pt"
    _trainer(good).run()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=r"checkpoint parameter .*cut\.pt: damaged"):
        _trainer(cut).run()
    with pytest.raises(CheckpointError, match=r"load_network .*cut\.pt: damaged"):
        load_network(cut)
    net_file = save_network(MozafariNet(SMALL), tmp_path / "net.pt")
    assert load_network(net_file).config == SMALL            # a good file still loads (as data)


def test_config_error_is_a_value_error_for_python_callers():
    assert issubclass(ConfigError, ValueError) and issubclass(CheckpointError, ValueError)
    with pytest.raises(ValueError, match="epochs"):
        train.load_config(DIGITS, {"epochs": "x"})


@pytest.mark.notebook
def test_notebook_02_names_its_checkpoint_parameter_and_the_damaged_file(tmp_path, capsys):
    from snnlab import run

    cut = tmp_path / "cut.pt"
    _trainer(tmp_path / "good.pt").run()
    cut.write_bytes((tmp_path / "good.pt").read_bytes()[:700])
    out = tmp_path / "nb"
    code = run.main([str(ROOT / "notebooks" / "02_mozafari_rstdp.ipynb"), "--out", str(out), "--no-progress",
                     "-p", "checkpoint", str(cut)])
    err = capsys.readouterr().err
    assert code == 1
    assert "CheckpointError: checkpoint parameter" in err and str(cut) in err and "damaged" in err
    assert "notebook_params.Notebook02Params" in err        # the validation cell, before any work
