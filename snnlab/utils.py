"""Seeding, device choice, argument checks, atomic writes and run cards.

One place for the small things every notebook and script needs. Used by every notebook's
parameter-validation cell and by ``snnlab run`` / ``snnlab train``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


# --------------------------------------------------------------------------- seeding and devices
def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Returns a fresh ``torch.Generator`` seeded with ``seed`` for code that prefers an explicit
    generator over global state. The same seed gives the same numbers on the same software stack.
    """
    check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def derive_seed(seed: int, *keys: int | str) -> int:
    """The seed of one named stream of random numbers, derived from the run's one ``seed``.

    Every place that needs its own generator (an epoch's sample order, one rank's augmentation, a
    second task's batches) asks here with its own ``keys`` instead of inventing an arithmetic formula:
    ``numpy.random.SeedSequence`` hashes ``seed`` with the keys, so streams with different keys are
    statistically independent and ``(seed, keys)`` always gives the same 63-bit result. String keys are
    hashed (BLAKE2b of their UTF-8 bytes) (stable across processes, unlike ``hash``).
    """
    check_int("seed", seed, minimum=0)
    words = []
    for key in keys:
        if isinstance(key, str):
            words.append(int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little"))
        else:
            words.append(check_int("key", key, minimum=0))
    state = np.random.SeedSequence(seed, spawn_key=tuple(words)).generate_state(2, dtype=np.uint32)
    return int(state[0]) | (int(state[1]) & 0x7FFFFFFF) << 32


def derived_generator(seed: int, *keys: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` ``(seed, *keys)``."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """Make this worker process exit when the process that started it dies.

    The ``initializer`` of the kit's process pools: a ``ProcessPoolExecutor`` worker whose parent is killed
    (a notebook kernel stopped mid-study, a ``snnlab run -j`` ended by a signal) otherwise waits on its task
    queue forever. A daemon thread notices the worker being handed to another parent and ends it.
    """
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class limit_threads:
    """Run a block with ``n`` torch intra-op threads, then restore the caller's number.

    The one thread limiter of the kit. Per-sample loops and tiny tensors ([1, 1] synapses, [4, 40]
    networks) are made of many small operations: there a thread pool only adds hand-offs, and on a
    busy 2-core machine two threads were measured several times *slower* than one. ``None`` leaves the
    setting alone. Usable as a context manager or, in a notebook, called once as
    ``limit_threads(1).apply()`` for the rest of the kernel.
    """

    def __init__(self, n: int | None):
        self.n = None if n is None else check_int("num_threads", n, minimum=1)
        self.old: int | None = None

    def apply(self) -> "limit_threads":
        if self.n is not None:
            self.old = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __enter__(self) -> "limit_threads":
        return self.apply()

    def __exit__(self, *exc) -> bool:
        if self.old is not None:
            torch.set_num_threads(self.old)
            self.old = None
        return False



def headless() -> bool:
    """True when ``SNNLAB_HEADLESS`` is set (``snnlab run``, the handouts and the tests set it)."""
    return os.environ.get("SNNLAB_HEADLESS", "").strip() not in ("", "0", "false", "False")


def progress(iterable=None, *, disable: bool = False, **kwargs):
    """A tqdm progress bar, off in headless runs.

    A headless kernel still renders ``tqdm.auto``'s widget, and the saved notebook keeps only its
    text fallback frozen at the start (``0%| | 0/10072``): batch runs show papermill's per-cell bar
    in the terminal instead.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=disable or headless(), **kwargs)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``auto`` picks CUDA when present, else CPU. Asking for CUDA on a machine without it raises a
    ``RuntimeError`` at once instead of failing deep inside a training loop.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = check_device("device", device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was asked for, but CUDA is not available on this machine "
            f"(torch {torch.__version__}); use device='cpu' or device='auto'."
        )
    index = int(name[5:]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise RuntimeError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) are present.")
    return torch.device(name)


def check_device(name: str, value: Any) -> str:
    """Return ``value`` in the form :func:`pick_device` reads (``"auto"``, ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"``, stripped, lower case), else raise ``ValueError`` naming ``name``.

    Checks the spelling only, not the machine: whether CUDA is present is :func:`pick_device`'s question,
    asked when the run starts (a parameter object may be checked on one machine and run on another).
    """
    if isinstance(value, torch.device):
        value = str(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in DEVICE_CHOICES or (text.startswith("cuda:") and text[5:].isdigit()):
            return text
    raise ValueError(f"{name} must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {value!r}")


# --------------------------------------------------------------------------- argument checks
def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` if it is an integer within bounds, else raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    _check_bounds(name, value, minimum, maximum)
    return int(value)


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
) -> float:
    """Return ``value`` as float if it is a finite real number within bounds, else raise ``ValueError``.

    ``strict_minimum=True`` makes the lower bound exclusive (``value > minimum``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if strict_minimum and minimum is not None and value <= minimum:
        raise ValueError(f"{name} must be > {minimum}, got {value!r}")
    _check_bounds(name, value, minimum, maximum)
    return value


def check_positive(name: str, value: Any, *, integer: bool = False) -> float | int:
    """Shorthand: ``value > 0`` (an integer >= 1 when ``integer``)."""
    if integer:
        return check_int(name, value, minimum=1)
    return check_float(name, value, minimum=0.0, strict_minimum=True)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    choices = tuple(choices)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def check_path(name: str, value: Any, *, kind: str = "any", hint: str = "") -> Path:
    """Return ``Path(value)`` if it exists (``kind``: ``"file"``, ``"dir"`` or ``"any"``), else raise.

    The error names the parameter and, with ``hint``, what should be there.
    """
    check_choice("kind", kind, ("any", "file", "dir"))
    if not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise ValueError(f"{name} must be a path, got {value!r}")
    path = Path(value).expanduser()
    ok = path.exists() if kind == "any" else (path.is_file() if kind == "file" else path.is_dir())
    if not ok:
        what = {"any": "path", "file": "file", "dir": "directory"}[kind]
        raise FileNotFoundError(
            f"{name}={str(value)!r}: no such {what}" + (f". {hint}" if hint else "")
        )
    return path


def _check_bounds(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")


# --------------------------------------------------------------------------- atomic writes
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    A reader never sees a half-written file, and an interrupted write leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; figures and handouts are meant to be shared, so use the umask.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        pause_point(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file and a rename (checkpoints are never half-written)."""
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete what an interrupted :func:`atomic_write_bytes` left in ``folder`` (``.NAME.*.tmp``).

    Call it when a command starts writing to a folder it owns: a kill between writing a temporary
    file and renaming it leaves the temporary behind (the real file is intact)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# --------------------------------------------------------------------------- fault injection
_PAUSE_HITS: dict[str, int] = {}


def pause_point(name: str) -> None:
    """A named moment where a kill would hurt most; tests stop a real process exactly here.

    Does nothing unless ``SNNLAB_PAUSE_AT`` is ``name`` (every time) or ``name@N`` (the N-th time
    this process reaches it). Then it appends ``"name pid"`` to the file ``SNNLAB_PAUSE_FILE`` and
    sleeps until killed, so a test can send SIGKILL at that very point instead of guessing with
    sleep timings. Points: ``write:<file name>`` (an atomic write, after the temporary file is
    complete and before the rename), ``train:epoch-end`` (all training of an epoch done, nothing of
    it written), ``train:before-commit`` (everything but the checkpoint written),
    ``run:notebook-written`` (``snnlab run``: executed copy complete under its temporary name).
    """
    target = os.environ.get("SNNLAB_PAUSE_AT")
    if not target:
        return
    want, _, nth = target.partition("@")
    if want != name:
        return
    _PAUSE_HITS[name] = _PAUSE_HITS.get(name, 0) + 1
    if nth and _PAUSE_HITS[name] != int(nth):
        return
    marker = os.environ.get("SNNLAB_PAUSE_FILE")
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{name} {os.getpid()}\n")
            fh.flush()
            os.fsync(fh.fileno())
    import time

    while True:  # until the test kills this process
        time.sleep(60)


# --------------------------------------------------------------------------- paths and run cards
def repo_root(start: str | os.PathLike | None = None) -> Path | None:
    """The checkout's root (a folder holding ``pyproject.toml`` and ``notebooks/``), or ``None``."""
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file() and (candidate / "notebooks").is_dir():
            return candidate
    return None


def figures_dir() -> Path:
    """Where figures go: ``$SNNLAB_FIGURES`` if set, else ``<repo>/figures``, else ``./figures``."""
    env = os.environ.get("SNNLAB_FIGURES")
    if env:
        return Path(env)
    root = repo_root()
    return (root / "figures") if root else Path("figures")


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The current git commit of the checkout, or ``None`` outside a repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path or repo_root() or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions(names: Iterable[str] = ("torch", "spikingjelly", "numpy", "snnlab")) -> dict:
    """Installed versions of ``names`` (``None`` for a package that is not installed)."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_card(*, params: Mapping[str, Any], seed: int | None, device: str | torch.device) -> dict:
    """What is needed to repeat a run: versions, parameters, seed, device, git commit, time."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "device": str(device),
        "parameters": dict(params),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "argv": list(sys.argv),
    }


def write_run_card(
    path: str | os.PathLike,
    *,
    params: Mapping[str, Any],
    seed: int | None,
    device: str | torch.device,
) -> Path:
    """Write :func:`run_card` as JSON to ``path`` (a file, or a folder to hold ``run_card.json``)."""
    path = Path(path)
    if path.suffix != ".json":
        path = path / "run_card.json"
    card = run_card(params=params, seed=seed, device=device)
    return atomic_write_text(path, json.dumps(card, indent=2, default=str) + "\n")
