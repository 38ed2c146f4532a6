"""The kit's error types and the one error boundary every command uses.

A user's mistake (a bad value, a config with an unknown key, a damaged checkpoint, a data folder in
the wrong layout) raises one of the :class:`SnnlabError` types below. Each command
(``snnlab run|train|handout``) runs its body through :func:`command_boundary`, which prints such an
error as one line naming the argument or file and exits with the error's code:

* **2** (:class:`UsageError`, :class:`ConfigError`): the command line or a config is wrong: an unknown
  key, a bad value, malformed or unsafe YAML, an output path that is a file.
* **1** (:class:`InputFileError`, :class:`DataError`, :class:`CheckpointError`): a file the command
  reads is missing, damaged or unsafe.

Anything else is a bug and keeps its traceback. ``--debug`` or ``SNNLAB_DEBUG=1`` shows the traceback
of input errors too.
"""
from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable


class SnnlabError(Exception):
    """An error caused by the input, not by a bug: commands print the message in one line."""

    exit_code = 1


class UsageError(SnnlabError, ValueError):
    """A bad command-line argument or parameter value (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file or key that cannot be used: unknown key, bad value, malformed or unsafe YAML."""


class InputFileError(SnnlabError):
    """A file the command reads is missing, damaged or unsafe (exit code 1)."""

    exit_code = 1


class DataError(InputFileError, FileNotFoundError):
    """A dataset file is missing or malformed; the message says what was expected where."""


class CheckpointError(InputFileError, ValueError):
    """A checkpoint is missing, damaged, unsafe (holds code) or does not fit the model or run."""


def debug_requested(flag: bool = False) -> bool:
    """``--debug`` given, or ``SNNLAB_DEBUG`` set to anything but ``""``/``0``/``false``."""
    env = os.environ.get("SNNLAB_DEBUG", "").strip().lower()
    return bool(flag) or env not in ("", "0", "false", "no")


def one_line(message: object) -> str:
    """An error message as one line (its lines joined by spaces)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def command_boundary(prog: str, body: Callable[[], int], *, debug: bool = False) -> int:
    """Run a command's ``body``; print a :class:`SnnlabError` as ``prog: message`` and return its code.

    Only the kit's own error types are caught: a bug still ends in its traceback. Ctrl-C ends with
    code 130 and one line.
    """
    try:
        return int(body() or 0)
    except SnnlabError as exc:
        if debug_requested(debug):
            traceback.print_exc()
        print(f"{prog}: {one_line(exc)}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        if debug_requested(debug):
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return 130
