import json
import os
import random

import numpy as np
import pytest
import torch

from snnlab import utils
from snnlab.utils import derive_seed, derived_generator, limit_threads


def test_seed_everything_repeats_every_generator():
    def draw(seed):
        gen = utils.seed_everything(seed)
        return random.random(), np.random.rand(), torch.rand(3).tolist(), torch.rand(2, generator=gen).tolist()

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_everything_rejects_non_integer_or_negative(bad):
    with pytest.raises(ValueError, match="seed"):
        utils.seed_everything(bad)


def test_pick_device_cpu_and_auto():
    assert utils.pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert utils.pick_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_pick_device_cuda_without_cuda_fails_clearly():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        utils.pick_device("cuda")


@pytest.mark.parametrize("bad", ["tpu", "gpu", "", 3])
def test_pick_device_unknown_names_the_choices(bad):
    with pytest.raises(ValueError, match="auto.*cpu.*cuda"):
        utils.pick_device(bad)


def test_checks_name_the_parameter():
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        utils.check_int("n_steps", 0, minimum=1)
    with pytest.raises(ValueError, match="tau must be > 0"):
        utils.check_positive("tau", 0.0)
    with pytest.raises(ValueError, match="lr must be finite"):
        utils.check_float("lr", float("nan"))
    with pytest.raises(ValueError, match="mode must be one of 'a', 'b'"):
        utils.check_choice("mode", "c", ["a", "b"])
    with pytest.raises(FileNotFoundError, match="data_path='/no/such'.*put MNIST here"):
        utils.check_path("data_path", "/no/such", hint="put MNIST here")
    assert utils.check_positive("k", 3, integer=True) == 3
    assert utils.check_float("x", 2) == 2.0


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    utils.atomic_write_text(target, "first")
    utils.atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["out.txt"]


def test_atomic_write_failure_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.bin"
    utils.atomic_write_bytes(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(utils.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        utils.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["ckpt.bin"]


def test_atomic_torch_save_round_trips(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    utils.atomic_torch_save(state, tmp_path / "s.pth")
    assert torch.equal(torch.load(tmp_path / "s.pth", weights_only=True)["w"], state["w"])


def test_write_run_card_records_what_repeats_a_run(tmp_path):
    path = utils.write_run_card(tmp_path, params={"tau": 5.0}, seed=3, device="cpu")
    card = json.loads(path.read_text())
    assert path.name == "run_card.json"
    assert card["seed"] == 3 and card["device"] == "cpu" and card["parameters"] == {"tau": 5.0}
    assert card["versions"]["torch"].startswith("2.13.0")
    assert card["versions"]["snnlab"] == "0.1.0"
    assert "git_commit" in card


def test_figures_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNLAB_FIGURES", str(tmp_path))
    assert utils.figures_dir() == tmp_path


def test_atomic_write_honours_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = utils.atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- derived seeds
def test_derive_seed_is_seedsequence_of_the_seed_and_keys():
    import hashlib

    word = int.from_bytes(hashlib.blake2b(b"order", digest_size=8).digest(), "little")
    lo, hi = np.random.SeedSequence(7, spawn_key=(word, 3)).generate_state(2, dtype=np.uint32)
    assert derive_seed(7, "order", 3) == int(lo) | (int(hi) & 0x7FFFFFFF) << 32


def test_derived_seeds_repeat_differ_by_key_and_fit_torch():
    seeds = {derive_seed(s, name, k) for s in range(3) for name in ("order", "augment") for k in range(4)}
    assert len(seeds) == 3 * 2 * 4  # no two streams share a seed
    assert all(0 <= v < 2**63 for v in seeds)  # torch.Generator.manual_seed accepts them
    assert derive_seed(3, "order", 1) == derive_seed(3, "order", 1)
    a = torch.rand(5, generator=derived_generator(3, "order", 1))
    b = torch.rand(5, generator=derived_generator(3, "order", 1))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.rand(5, generator=derived_generator(3, "order", 2)))


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_derive_seed_rejects_bad_seeds_naming_them(bad):
    with pytest.raises(ValueError, match="seed"):
        derive_seed(bad, "order")


# --------------------------------------------------------------------------- the thread limiter
def test_limit_threads_sets_then_restores_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(KeyError):
        with limit_threads(1):
            assert torch.get_num_threads() == 1
            raise KeyError("inside")
    assert torch.get_num_threads() == before
    with limit_threads(None):  # None leaves the setting alone
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        limit_threads(0)


@pytest.mark.parametrize("value, expected", [("cpu", "cpu"), (" Auto ", "auto"), ("CUDA", "cuda"), ("cuda:3", "cuda:3"),
                                             (torch.device("cpu"), "cpu")])
def test_check_device_normalises_the_spelling_without_asking_the_machine(value, expected):
    assert utils.check_device("device", value) == expected


@pytest.mark.parametrize("bad", ["tpu", "cuda:x", "", None, 0])
def test_check_device_names_the_parameter_and_the_choices(bad):
    with pytest.raises(ValueError, match=r"^where must be one of \('auto', 'cpu', 'cuda'\) \(or 'cuda:N'\)"):
        utils.check_device("where", bad)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); its state says it has exited
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    import subprocess
    import sys
    import textwrap
    import time

    # a parent that starts a pool the way the kit does, reports its worker and dies without cleaning up
    script = textwrap.dedent("""
        import concurrent.futures as cf, multiprocessing, os, signal, sys
        from snnlab.utils import exit_with_parent
        if __name__ == "__main__":
            pool = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                          initializer=exit_with_parent, initargs=(0.1,))
            print(pool.submit(os.getpid).result(), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    worker = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _pid_alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _pid_alive(worker), "the pool worker outlived its killed parent"
