"""The ``snnlab`` console script: ``snnlab run|train|handout|book ...``.

Each sub-command lives in its own module with its own ``main(argv) -> int``; this file only
dispatches, so ``snnlab --help`` stays fast (no torch import until a command needs it).
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "run": ("snnlab.run", "execute notebooks headless with papermill (the main job)"),
    "train": ("snnlab.train", "train SpikingResformer with/without DA-SSDP from a YAML config"),
    "handout": ("snnlab.handout", "export notebooks as student/instructor handouts (HTML, PDF)"),
    "book": ("snnlab.book", "build the course website (static, offline) from the executed notebooks"),
}


def usage() -> str:
    lines = ["usage: snnlab COMMAND [ARGS ...]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "snnlab COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"snnlab {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"snnlab: unknown command {name!r}; choose one of {', '.join(COMMANDS)}\n\n{usage()}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
