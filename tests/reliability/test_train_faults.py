"""``snnlab train`` killed at its most dangerous moments, then resumed: the result must equal an
uninterrupted run bit for bit (timing fields aside), for one process and for two under torchrun.

Each test stops a real process exactly at a named point (``SNNLAB_PAUSE_AT``, see
:func:`snnlab.utils.pause_point`), sends SIGKILL, and resumes. The runs are tiny (nano at 8x8, 64
samples) with DA-SSDP in its warm-up at the kill and ``drop_path > 0``, so that every piece of state
a resume needs (RNG of every rank, the gate's warm-up statistics of every rank) is exercised.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "configs" / "direct_training" / "digits.yaml"
ARGS = ["-c", str(DIGITS), "--img_size", "8", "--max_train_samples", "64", "--max_eval_samples", "32",
        "--batch_size", "16", "--eval_batch_size", "32", "--threads", "1", "--progress", "false",
        "--warmup_epochs", "0", "--lr", "5e-3", "--drop_path", "0.1", "--epochs", "3",
        "--dassdp.enabled", "true", "--dassdp.warmup_epochs", "2", "--device", "cpu"]
TIMING = ("epoch_seconds", "step_seconds", "wall_seconds")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc-per-node=2",
            "-m", "snnlab.train"]
SINGLE = [sys.executable, "-m", "snnlab.train"]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNNLAB_PAUSE")}
    env.update(extra)
    return env


def run_to_end(cmd, out: Path, *extra):
    proc = subprocess.run([*cmd, *ARGS, "--output-dir", str(out), *extra], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def run_and_kill(cmd, out: Path, point: str, tmp_path: Path, *, processes: int = 1, extra=()):
    """Start a run, wait until ``processes`` processes have paused at ``point``, SIGKILL them all."""
    marker = tmp_path / f"paused-{point.replace(':', '_').replace('@', '_')}"
    env = _env(SNNLAB_PAUSE_AT=point, SNNLAB_PAUSE_FILE=str(marker))
    proc = subprocess.Popen([*cmd, *ARGS, "--output-dir", str(out), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    pids = []
    try:
        while time.monotonic() < deadline:
            if marker.exists():
                pids = [int(line.split()[1]) for line in marker.read_text().splitlines() if line.strip()]
                if len(pids) >= processes:
                    break
            if proc.poll() is not None:
                pytest.fail(f"the run ended (rc {proc.returncode}) before pausing at {point}: {proc.stderr.read()[-2000:]}")
            time.sleep(0.05)
        else:
            pytest.fail(f"no pause at {point} within the deadline")
    finally:
        for pid in pids:  # torchrun workers live in their own sessions: kill each by PID
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait(timeout=60)
    return pids


def _strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in TIMING}


def assert_same_run(a: Path, b: Path) -> None:
    """Two finished output folders hold the same training, bit for bit (timing fields aside)."""
    ca = torch.load(a / "checkpoint.pth", weights_only=True)
    cb = torch.load(b / "checkpoint.pth", weights_only=True)
    for name, tensor in ca["model"].items():
        assert torch.equal(tensor, cb["model"][name]), name
    for (ka, sa), (kb, sb) in zip(ca["optimizer"]["state"].items(), cb["optimizer"]["state"].items()):
        assert ka == kb and all(torch.equal(sa[k], sb[k]) for k in sa), ka
    assert [_strip(r) for r in ca["history"]] == [_strip(r) for r in cb["history"]]
    assert ca["best"] == cb["best"]
    for name, site in ca["dassdp"]["sites"].items():
        other = cb["dassdp"]["sites"][name]
        assert site["gate"] == other["gate"] and site["gate"] is not None, name
        assert torch.equal(site["moments"], other["moments"]) and site["drift"] == other["drift"], name
    for ra, rb in zip(ca["rng"]["torch"], cb["rng"]["torch"]):
        assert torch.equal(ra, rb)
    ba = torch.load(a / "best.pth", weights_only=True)["model"]
    bb = torch.load(b / "best.pth", weights_only=True)["model"]
    assert all(torch.equal(ba[k], bb[k]) for k in ba)
    la = [json.loads(x) for x in (a / "dassdp_steps.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (b / "dassdp_steps.jsonl").read_text().splitlines()]
    assert la == lb and len(la) > 0
    ma = [_strip(json.loads(x)) for x in (a / "metrics.jsonl").read_text().splitlines()]
    mb = [_strip(json.loads(x)) for x in (b / "metrics.jsonl").read_text().splitlines()]
    assert ma == mb and len(ma) == 3
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    assert (ra["reported_test_acc"], ra["selected_epoch"]) == (rb["reported_test_acc"], rb["selected_epoch"])
    assert not list(b.glob(".*.tmp")), "a stale temporary file was left behind"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    run_to_end(SINGLE, out)
    return out


@pytest.mark.parametrize("point,resume", [
    ("train:epoch-end@2", True),       # epoch 1 trained (DA-SSDP warm-up), nothing of it written
    ("train:before-commit@2", True),   # best.pth, metrics, step log of epoch 1 written; checkpoint not
    ("write:checkpoint.pth@2", True),  # the checkpoint's temporary file complete, not renamed
    ("write:best.pth@1", False),       # killed inside the first epoch's commit: nothing to resume, run again
])
def test_single_process_kill_and_resume_equals_uninterrupted(uninterrupted, tmp_path, point, resume):
    out = tmp_path / "run"
    run_and_kill(SINGLE, out, point, tmp_path)
    if point.startswith("write:"):
        assert list(out.glob(f".{point[6:].split('@')[0]}.*.tmp")), "the kill should leave a temporary file"
    if point == "train:before-commit@2":
        # the kill tore the last line of the append-only step log as well
        with open(out / "dassdp_steps.jsonl", "a") as fh:
            fh.write('{"epoch": 1, "step": 7, "lo')
    run_to_end(SINGLE, out, *(["--resume", str(out)] if resume else []))
    assert_same_run(uninterrupted, out)


def test_two_ranks_kill_in_the_warmup_and_resume_equals_uninterrupted(tmp_path):
    ref = tmp_path / "ref"
    run_to_end(TORCHRUN, ref, "--batch_size", "8")
    out = tmp_path / "run"
    pids = run_and_kill(TORCHRUN, out, "train:epoch-end@2", tmp_path, processes=2, extra=("--batch_size", "8"))
    assert len(set(pids)) == 2
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert ckpt["epoch"] == 0 and len(ckpt["rng"]["torch"]) == 2
    moments = ckpt["dassdp"]["sites"]["classifier"]["moments"]
    assert moments.shape == (2, 6) and not torch.equal(moments[0], moments[1])   # each rank's own shard
    run_to_end(TORCHRUN, out, "--batch_size", "8", "--resume", str(out))
    assert_same_run(ref, out)
    assert json.loads((out / "results.json").read_text())["replica_max_diff"] == 0.0
