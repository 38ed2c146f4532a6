"""Time the kit's GPU paths against the CPU: notebooks 02, 03 and 04 and one ``snnlab train`` run with AMP.

Each job runs once on ``--device`` (default ``cuda``) and then once on the CPU of the same machine, so
the ratio compares the same job on the same host. Notebooks go through
``snnlab run`` (papermill), training through ``snnlab train``, each as a child process whose wall time
(process start, imports and kernel start included) is what the table shows. Executed notebooks, figures,
training output and each command's log go to ``--out/<job>-<device>/``; the table is printed and written
to ``--out/gpu_check.csv`` and ``--out/gpu_check.txt``.

    python scripts/gpu_check.py                      # on a CUDA machine: small sizes, CPU side by side
    python scripts/gpu_check.py --device cpu --quick # anywhere: tiny sizes, a smoke test of the jobs

It uses whatever Python and torch run it (a GPU machine brings its own CUDA torch) and names, in one
line, any package the jobs need that is missing.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROG = "gpu_check"
TRAIN_CONFIG = ROOT / "configs" / "direct_training" / "digits.yaml"
#: modules the jobs import (kernels and trainer included) and the pip names that provide them
REQUIRED = {"torch": "torch", "numpy": "numpy", "yaml": "pyyaml", "matplotlib": "matplotlib", "tqdm": "tqdm",
            "PIL": "pillow", "sklearn": "scikit-learn", "pandas": "pandas", "mlxtend": "mlxtend",
            "spikingjelly": "spikingjelly", "nbformat": "nbformat", "papermill": "papermill",
            "ipykernel": "ipykernel"}
PIP_NAMES = {**REQUIRED, "zmq": "pyzmq", "dateutil": "python-dateutil"}


@dataclass(frozen=True)
class Job:
    """One timed job: a notebook (``notebook`` = its number prefix) or the trainer (``notebook`` None)."""

    name: str
    small: dict          # sizes for a GPU host: each job well under a minute on the GPU
    quick: dict          # tiny sizes: only checks that the job runs (the test uses them)
    notebook: str | None = None
    note: str = ""       # shown next to a non-CPU figure


JOBS = (
    Job("02_mozafari", notebook="02",
        small={"seed": 0, "n_train": 200, "stdp_epochs_1": 1, "stdp_epochs_2": 1, "rstdp_epochs": 2},
        quick={"seed": 0, "dataset": "digits", "n_train": 20, "stdp_epochs_1": 0, "stdp_epochs_2": 0,
               "rstdp_epochs": 1}),
    Job("03_dassdp", notebook="03",
        small={"seed": 0, "epochs": 2, "n_seeds": 1, "max_train_samples": 256, "max_eval_samples": 128},
        quick={"seed": 0, "dataset": "digits", "epochs": 1, "dassdp_warmup": 0, "n_seeds": 1,
               "max_train_samples": 32, "max_eval_samples": 32}),
    Job("04_bptt_eprop", notebook="04",
        small={"seed": 0, "n_hidden": 64, "epochs": 5, "n_train": 512, "recall_epochs": 6, "delay_steps": 20},
        quick={"seed": 0, "n_hidden": 8, "epochs": 1, "n_train": 32, "recall_epochs": 1, "delay_steps": 4}),
    Job("train_amp", note="float16 autocast; amp only acts on CUDA, so the CPU run is float32",
        small={"epochs": 2, "max_train_samples": 512, "max_eval_samples": 256, "batch_size": 64},
        # one thread: on a shared machine a second one mostly spins on tensors this small
        quick={"epochs": 1, "warmup_epochs": 0, "max_train_samples": 32, "max_eval_samples": 16,
               "batch_size": 16, "threads": 1}),
)


class CheckError(Exception):
    """A setup problem (missing package, no CUDA, bad option): printed in one line, exit code 2."""


@dataclass
class Timing:
    seconds: float | None = None
    status: str = "skipped"   # ok | failed | timeout | skipped | no time

    def cell(self) -> str:
        return f"{self.seconds:.1f}" if self.status == "ok" else self.status


@dataclass
class Row:
    job: Job
    parameters: dict
    device: Timing = field(default_factory=Timing)
    cpu: Timing = field(default_factory=Timing)

    def ratio(self) -> str:
        if self.device.status == "ok" and self.cpu.status == "ok" and self.device.seconds > 0:
            return f"{self.cpu.seconds / self.device.seconds:.2f}x"
        return "-"


# --------------------------------------------------------------------------- setup checks
def pip_name(module: str) -> str:
    return PIP_NAMES.get(module, module.replace("_", "-"))


def missing_packages(modules=None) -> list[str]:
    """Pip names of the packages whose import fails (default: :data:`REQUIRED`); where a package is there
    but one it needs is not, the one it needs. A package that is there but breaks on import is a
    :class:`CheckError` naming it."""
    missing = []
    for module in modules if modules is not None else REQUIRED:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            missing.append(pip_name((exc.name or module).split(".")[0]))
        except ImportError as exc:  # a binary built for another torch or Python, say
            raise CheckError(f"{module} is installed but does not import: {str(exc).splitlines()[0]}") from exc
    return list(dict.fromkeys(missing))


def check_torch_device(device: str) -> str:
    """Import torch (first: a machine without CUDA is refused in seconds) and describe the device."""
    missing = missing_packages(("torch",))
    if missing:
        raise CheckError(f"torch is not installed for {sys.executable}; install it (pip install torch) or run "
                         "with the Python that has it (make gpu-check PYTHON=...)")
    import torch

    if device == "cpu":
        return f"torch {torch.__version__}, CPU only"
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise CheckError(f"--device cuda, but torch {torch.__version__} ({build}) sees no CUDA device here; "
                         "run on a machine with a GPU, or pass --device cpu")
    return f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}"


def child_environment() -> dict[str, str]:
    """This environment with the checkout first on PYTHONPATH, every entry absolute.

    The kernels start in notebooks/, so a relative entry (``PYTHONPATH=.``) would point elsewhere there.
    """
    env = dict(os.environ)
    entries = [str(ROOT)] + [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(entries))
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --------------------------------------------------------------------------- jobs
def job_command(job: Job, parameters: dict, device: str, folder: Path) -> list[str]:
    if job.notebook is None:
        overrides = [arg for key, value in parameters.items() for arg in (f"--{key}", str(value))]
        return [sys.executable, "-m", "snnlab.cli", "train", "-c", str(TRAIN_CONFIG), "--output-dir", str(folder),
                "--device", device, "--amp", "true", "--progress", "false", *overrides]
    from snnlab.run import discover

    found = [p for p in discover(ROOT / "notebooks") if p.name.startswith(f"{job.notebook}_")]
    if len(found) != 1:
        raise CheckError(f"{job.name}: expected one notebooks/{job.notebook}_*.ipynb, found {len(found)}")
    values = [arg for key, value in parameters.items() for arg in ("-p", key, str(value))]
    return [sys.executable, "-m", "snnlab.cli", "run", str(found[0]), "--device", device, *values,
            "--out", str(folder), "--figures", str(folder / "figures"), "--no-progress"]


def run_job(label: str, command: list[str], folder: Path, *, timeout: float, env: dict[str, str]) -> Timing:
    """Run ``command`` in its own session, its output in ``folder/command.log``; time it.

    Its own session, so that a timeout ends the command and whatever it started (by its process group).
    """
    if folder.exists():
        shutil.rmtree(folder)  # an older run's files would mix with this one's
    folder.mkdir(parents=True)
    if timeout <= 0:
        return Timing(status="no time")
    log = folder / "command.log"
    with log.open("w") as out:
        out.write(" ".join(command) + "\n\n")
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        seconds = time.perf_counter() - start
    if code is None:
        return Timing(seconds, "timeout")
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        print(f"{PROG}: {label} failed (exit {code}); the end of {log}:\n  " + "\n  ".join(tail),
              file=sys.stderr, flush=True)
        return Timing(seconds, "failed")
    return Timing(seconds, "ok")


# --------------------------------------------------------------------------- report
def table(rows: list[Row], device: str, with_cpu: bool) -> tuple[list[str], list[list[str]]]:
    notes = device != "cpu"  # the notes say how a job uses a device other than the CPU
    header = ["job", f"{device} s"] + (["cpu s", f"cpu/{device}"] if with_cpu else []) + (["note"] if notes else [])
    body = []
    for row in rows:
        cells = [row.job.name, row.device.cell()]
        if with_cpu:
            cells += [row.cpu.cell(), row.ratio()]
        body.append(cells + ([row.job.note] if notes else []))
    return header, body


def write_reports(out: Path, rows: list[Row], device: str, text: str) -> None:
    import csv
    import io

    from snnlab.utils import atomic_write_text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["job", "device", "device_seconds", "device_status", "cpu_seconds", "cpu_status", "parameters"])
    for r in rows:
        writer.writerow([r.job.name, device, r.device.seconds, r.device.status, r.cpu.seconds, r.cpu.status,
                         " ".join(f"{k}={v}" for k, v in r.parameters.items())])
    atomic_write_text(out / "gpu_check.csv", buffer.getvalue())
    atomic_write_text(out / "gpu_check.txt", text + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/gpu_check.py", description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="where the jobs run (default: %(default)s; fails at once without CUDA)")
    parser.add_argument("--skip-cpu", action="store_true", help="no CPU runs side by side (no ratio column)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that each job runs, times nothing useful")
    parser.add_argument("--only", nargs="+", choices=[j.name for j in JOBS], metavar="JOB",
                        help=f"run only these jobs (of {', '.join(j.name for j in JOBS)})")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="with --quick only: run up to N jobs at once (they share the machine, so their "
                             "times are no figures)")
    parser.add_argument("--out", default="build/gpu_check", help="folder for every job's output (default: %(default)s)")
    parser.add_argument("--budget", type=float, default=540.0, metavar="SECONDS",
                        help="stop starting jobs after this many seconds and time out the one running "
                             "(default: %(default)s, inside a 10-minute slot)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        return _main(args, start)
    except CheckError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _main(args, start: float) -> int:
    if args.jobs < 1 or (args.jobs > 1 and not args.quick):
        raise CheckError(f"-j/--jobs {args.jobs}: give 1, or more only with --quick (jobs side by side share "
                         "the machine, so their times would be no figures)")
    machine = check_torch_device(args.device)
    missing = missing_packages()
    if missing:
        raise CheckError(f"missing Python packages: {', '.join(missing)}; install them (pip install "
                         f"{' '.join(missing)}) or, without internet, carry them as wheels")
    from snnlab.run import RunError, check_output_folder, format_table

    try:
        out = check_output_folder("--out", Path(args.out)).resolve()
    except RunError as exc:
        raise CheckError(str(exc)) from exc
    # Timing the same job twice on the CPU says nothing: --device cpu is the CPU figure itself.
    with_cpu = not args.skip_cpu and args.device != "cpu"
    size = "quick" if args.quick else "small"
    jobs = [j for j in JOBS if not args.only or j.name in args.only]
    rows = [Row(j, j.quick if args.quick else j.small) for j in jobs]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{PROG}: {machine}; {cores} CPU cores; {size} sizes; output in {out}", flush=True)
    env = child_environment()
    # Every command is built (and every notebook found) before the first job starts.
    plan = [(row, dev, out / f"{row.job.name}-{dev}") for row in rows
            for dev in ([args.device, "cpu"] if with_cpu else [args.device])]
    commands = [job_command(row.job, row.parameters, dev, folder) for row, dev, folder in plan]

    def timed(i: int) -> None:
        row, dev, folder = plan[i]
        label = f"[{i + 1}/{len(plan)}] {row.job.name} on {dev}"
        print(label, flush=True)
        timing = run_job(label, commands[i], folder, env=env, timeout=args.budget - (time.perf_counter() - start))
        setattr(row, "device" if dev == args.device else "cpu", timing)
        print(f"{label}: {timing.cell()}" + (" s" if timing.status == "ok" else ""), flush=True)

    if args.jobs == 1:
        for i in range(len(plan)):
            timed(i)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(timed, i) for i in range(len(plan))]:
                future.result()
    total = time.perf_counter() - start
    text = "\n".join([
        f"{PROG}: {machine}; {cores} CPU cores; {size} sizes; wall seconds per job (process and kernel start "
        "included)",
        format_table(*table(rows, args.device, with_cpu)),
        f"total {total:.1f} s",
    ])
    print(text, flush=True)
    write_reports(out, rows, args.device, text)
    return 0 if all(r.device.status == "ok" and r.cpu.status in ("ok", "skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # this checkout's snnlab, also where another copy is installed
    sys.exit(main())
