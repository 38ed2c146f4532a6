"""Checkpoints that hold data, never code: the one way the kit writes and reads ``.pth`` files.

Every checkpoint the kit reads (``snnlab train --resume/--transfer/--test-only``, the Mozafari
trainer's ``checkpoint``, :func:`snnlab.models.mozafari.load_network`) goes through
:func:`load_checkpoint`, which calls ``torch.load(..., weights_only=True)``: torch's restricted
unpickler accepts tensors and plain containers (dict, list, tuple, str, int, float, bool, None)
and refuses any other Python object, so a crafted file cannot run code while it is read.

Why ``weights_only`` and not safetensors: a training checkpoint also carries the epoch, the RNG
states, the gate statistics and the history. safetensors stores flat tensors only, so those would
need a second file that must be committed together with the first; one ``torch.save`` file read with
``weights_only=True`` keeps one file per commit and needs no extra package. To keep that promise
in both directions, :func:`save_checkpoint` refuses to *write* anything but tensors and plain data
(a ``TypeError``: that is a bug in the kit, not a user's mistake), so every file the kit writes
loads back.

Errors a user can cause (missing, truncated, garbage, unsafe or mismatched files) raise
:class:`snnlab.errors.CheckpointError` naming the argument and the file.
"""
from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError
from .utils import atomic_torch_save

PLAIN_TYPES = (str, int, float, bool, type(None))


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` naming the first value in ``obj`` that is not a tensor or plain data."""
    if isinstance(obj, torch.Tensor) or type(obj) in PLAIN_TYPES:
        return
    if type(obj) in (dict,) or (isinstance(obj, Mapping) and type(obj).__name__ == "OrderedDict"):
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}; use str or int keys")
            check_plain(value, f"{where}[{key!r}]")
        return
    if type(obj) in (list, tuple):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {type(obj).__module__}.{type(obj).__name__}: a checkpoint holds only "
                    "tensors, dicts, lists, tuples, str, int, float, bool and None")


def save_checkpoint(obj: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``obj`` (tensors and plain data only, see :func:`check_plain`) atomically to ``path``."""
    check_plain(obj)
    return atomic_torch_save(obj, path)


def load_checkpoint(path: str | os.PathLike, *, what: str, required: Iterable[str] = (),
                    kind: str = "snnlab checkpoint", map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint as data (``weights_only=True``) and check it is a dict with ``required`` keys.

    Args:
        path: the file.
        what: how the user named it, for the message (``"--resume"``, ``"checkpoint parameter"``).
        required: keys the caller needs.
        kind: what the file should be, for the message.
        map_location: where tensors go.
    Raises:
        CheckpointError: missing, unreadable, truncated, not a checkpoint, unsafe, or without a key.
    """
    path = Path(path)
    head = f"{what} {path}"
    if not path.exists():
        raise CheckpointError(f"{head}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{head}: not a file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"unsupported GLOBAL ([\w.]+)|global '?([\w.]+)", str(exc), re.IGNORECASE)
        if unsafe:
            name = unsafe.group(1) or unsafe.group(2)
            raise CheckpointError(
                f"{head}: refused: the file asks for the Python object {name}, and loading it could run code "
                "(snnlab reads checkpoints as tensors and plain data only; re-save just the tensors, e.g. "
                "torch.save(model.state_dict(), path))") from exc
        raise CheckpointError(f"{head}: damaged or not a torch checkpoint ({_unpickler_reason(exc)})") from exc
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, IndexError, KeyError,
            TypeError, UnicodeDecodeError, MemoryError) as exc:
        # what torch.load raises for a truncated zip, an empty file, or random bytes
        raise CheckpointError(f"{head}: damaged, truncated or not a torch checkpoint ({_short(exc)})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{head}: expected a {kind} (a dict), found a {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise CheckpointError(f"{head}: not a {kind} (missing {', '.join(repr(k) for k in missing)})")
    return obj


def load_module_state(module: torch.nn.Module, state: Mapping[str, Any], *, what: str,
                      path: str | os.PathLike) -> None:
    """``module.load_state_dict(state)`` with a mismatch reported as a :class:`CheckpointError`."""
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{what} {path}: its weights are not a mapping of names to tensors")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{what} {path}: does not fit this model ({_short(exc, 300)}); was it written "
                              "with another model or config?") from exc


def _unpickler_reason(exc: BaseException) -> str:
    """The specific line of torch's long weights-only message (it wraps it in advice and a link)."""
    boiler = ("Weights only load failed", "Please file an issue", "Check the documentation", "In PyTorch",
              "(1)", "(2)")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    specific = [ln for ln in lines if not ln.startswith(boiler) and "weights_only" not in ln]
    return _short(specific[0] if specific else "not a pickle stream")


def _short(exc: BaseException | str, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, BaseException):  # a bare KeyError(22) says nothing without its type
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
