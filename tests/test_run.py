"""`snnlab run` argument handling (fast: no kernel is started, except in the tests marked `notebook`)."""
import json
import os
import subprocess
import sys

import pytest
from pathlib import Path
import torch

from snnlab import cli, run
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

WELCOME = ROOT / "notebooks" / "00_welcome.ipynb"


def test_discover_orders_numerically(tmp_path):
    for name in ("10_b.ipynb", "02_a.ipynb", "1_c.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in run.discover(tmp_path)] == ["1_c.ipynb", "02_a.ipynb", "10_b.ipynb"]


def test_discover_finds_the_kits_notebooks():
    assert run.discover(ROOT / "notebooks") == NOTEBOOKS and NOTEBOOKS[0].name == "00_welcome.ipynb"


@pytest.mark.parametrize("text,value", [("5", 5), ("5.0", 5.0), ("true", True), ("cuda", "cuda"),
                                        ("[1, 2]", [1, 2]), ("", "")])
def test_parse_value_as_yaml(text, value):
    assert run.parse_value(text) == value


def test_unknown_parameter_is_refused_with_the_allowed_list(capsys):
    code = run.main([str(WELCOME), "-p", "no_such_parameter", "1", "--out", "unused"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown parameter 'no_such_parameter'" in err
    for name in ("seed", "device", "tau", "v_threshold", "input_current", "n_steps"):
        assert name in err


def test_unknown_device_is_refused_by_argparse():
    with pytest.raises(SystemExit) as exc:
        run.main([str(WELCOME), "--device", "tpu"])
    assert exc.value.code == 2


def test_device_parameter_is_checked_before_running(capsys):
    assert run.main([str(WELCOME), "-p", "device", "tpu"]) == 2
    assert "device" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_fails_at_once(capsys):
    assert run.main([str(WELCOME), "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_missing_notebook_and_bad_parameter_file(tmp_path, capsys):
    assert run.main(["notebooks/99_nothing.ipynb"]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "00_welcome" in err  # it lists the names it knows
    assert run.resolve_notebooks(["00_welcome"]) == run.resolve_notebooks(["00_welcome.ipynb"])  # .ipynb optional
    assert run.main([str(WELCOME), "-f", str(tmp_path / "none.yaml")]) == 2
    assert "no such parameters file" in capsys.readouterr().err
    (tmp_path / "p.yaml").write_text("- a list\n")
    assert run.main([str(WELCOME), "-f", str(tmp_path / "p.yaml")]) == 2
    assert "mapping" in capsys.readouterr().err


def test_plan_gives_each_notebook_only_what_it_declares(tmp_path):
    import nbformat

    other = tmp_path / "01_other.ipynb"
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("seed = 0\nepochs = 3")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, other)
    plan = run.plan_parameters([WELCOME, other], {"seed": 4, "tau": 5.0, "epochs": 1})
    assert plan[WELCOME] == {"seed": 4, "tau": 5.0}
    assert plan[other] == {"seed": 4, "epochs": 1}


def test_list_shows_parameters_and_time(capsys):
    assert run.main(["--list", str(WELCOME)]) == 0
    out = capsys.readouterr().out
    assert "00_welcome.ipynb" in out and "min on 2 CPU cores" in out and "tau" in out


def test_cli_dispatch_and_help(capsys):
    assert cli.main(["--help"]) == 0
    assert "run" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err
    assert cli.main([]) == 2


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "snnlab.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "snnlab 0.1.0"


def test_jobs_must_be_positive(tmp_path, capsys):
    out = tmp_path / "out"
    assert run.main([str(WELCOME), "-j", "0", "--out", str(out)]) == 2
    assert "-j/--jobs must be >= 1" in capsys.readouterr().err
    assert not out.exists()  # refused before the run card (or the folder) is written


@pytest.mark.parametrize("option", ["--out", "--figures"])
def test_output_folder_that_is_a_file_is_refused_before_writing(option, tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("precious\n")
    argv = [str(WELCOME), option, str(target)]
    if option == "--figures":
        argv += ["--out", str(tmp_path / "out")]
    assert run.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"snnlab run: {option} {target} is a file") and "needs a folder" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert target.read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.txt"]


def test_output_folder_below_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "a").write_text("")
    assert run.main([str(WELCOME), "--out", str(tmp_path / "a" / "b")]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'a' / 'b'}: {tmp_path / 'a'} is a file" in err


def test_check_output_folder_accepts_new_and_existing_folders(tmp_path):
    assert run.check_output_folder("--out", tmp_path) == tmp_path
    assert run.check_output_folder("--out", tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_bad_parameters_file_writes_nothing(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("seed: [1,\n")
    out = tmp_path / "out"
    assert run.main([str(WELCOME), "-f", str(tmp_path / "p.yaml"), "--out", str(out)]) == 2
    assert "-f" in capsys.readouterr().err and not out.exists()


def test_run_error_is_a_kit_error_with_its_code():
    from snnlab.errors import SnnlabError

    assert isinstance(run.RunError("x"), SnnlabError)
    assert (run.RunError("x").exit_code, run.RunError("x").code) == (2, 2)
    assert run.RunError("x", code=1).exit_code == 1


def test_input_error_shows_a_traceback_only_with_debug(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SNNLAB_DEBUG", raising=False)
    argv = [str(WELCOME), "-j", "0", "--out", str(tmp_path / "out")]
    assert run.main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert run.main([*argv, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "RunError" in err and err.rstrip().endswith("got 0")
    monkeypatch.setenv("SNNLAB_DEBUG", "1")
    assert run.main(argv) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_bug_is_not_swallowed(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in snnlab")

    monkeypatch.setattr(run, "plan_parameters", broken)
    with pytest.raises(RuntimeError, match="a bug in snnlab"):
        run.main([str(WELCOME), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_stale_running_copies_of_dead_runs_are_removed(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process now
    dead = tmp_path / f".01_a.running-{gone.pid}.ipynb"
    alive = tmp_path / f".01_a.running-{os.getpid()}.ipynb"  # another run writing right now
    other = tmp_path / ".01_a.ipynb.tmp"
    for path in (dead, alive, other):
        path.write_text("{}")
    assert run.remove_stale_runs(tmp_path) == [dead]
    assert alive.exists() and other.exists()


def test_handout_refuses_an_output_file_in_one_line(tmp_path, capsys):
    from snnlab import handout

    target = tmp_path / "out.html"
    target.write_text("x")
    assert handout.main([str(WELCOME), "--to", "ipynb", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnlab handout: --out") and "needs a folder" in err and "Traceback" not in err
    assert target.read_text() == "x"


@pytest.mark.notebook
def test_parallel_run_executes_each_notebook_and_reports_failures(tmp_path, capsys, monkeypatch):
    import nbformat

    def make(name, source):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell("seed = 0\ndevice = 'cpu'")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(source)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / name)
        return str(tmp_path / name)

    good = make("01_good.ipynb", "x = seed + 1\nprint('ok', x)")
    bad = make("02_bad.ipynb", "raise ValueError('seed is wrong')")
    out = tmp_path / "out"
    code = run.main([good, bad, "-j", "2", "--keep-going", "--out", str(out), "-p", "seed", "5"])
    captured = capsys.readouterr()
    assert code == 1
    assert "02_bad.ipynb failed in cell" in captured.err and "seed is wrong" in captured.err
    assert "01_good.ipynb done" in captured.out
    executed = nbformat.read(out / "01_good.ipynb", as_version=4)
    assert "ok 6" in executed.cells[-1].outputs[0]["text"]
    # The workers use the same safe execute: the failure is kept apart, no temporary is left.
    assert f"the executed copy with the traceback: {out.resolve() / '02_bad.failed.ipynb'}" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["01_good.ipynb", "02_bad.failed.ipynb", "results.csv",
                                                     "results_summary.csv", "run_card.json"]
    assert (out / "results.csv").read_text() == "notebook,run,status\n01_good,.,ok\n02_bad,.,failed\n"


@pytest.mark.notebook
def test_parameters_file_is_used_and_command_line_wins(tmp_path, capsys):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 0\ndevice = 'cpu'\nlabel = 'none'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print(seed, label)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "03_file.ipynb")
    (tmp_path / "p.yaml").write_text("seed: 2\nlabel: from-file\n")
    out = tmp_path / "out"
    assert run.main([str(tmp_path / "03_file.ipynb"), "-f", str(tmp_path / "p.yaml"), "-p", "seed", "9",
                     "--out", str(out), "--no-progress"]) == 0
    executed = nbformat.read(out / "03_file.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"].strip() == "9 from-file"


# --------------------------------------------------------------------------- grids and results tables
def tiny_results_notebook(path):
    """A notebook with `seed` and `scale`, recording acc = seed * scale + 0.5 and writing one figure file."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 0\nscale = 1.0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("from snnlab import utils\n"
                                  "utils.atomic_write_text(utils.figures_dir() / 'tiny_figure.txt', f'{seed} {scale}')"),
        nbformat.v4.new_code_cell("from snnlab.results import record_results\n"
                                  "record_results('tiny', acc=seed * scale + 0.5)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def read_csv(path):
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("text,expected", [
    ("seed=0,1,2", ("seed", [0, 1, 2])),
    ("lr=0.1, 0.01", ("lr", [0.1, 0.01])),
    ("mode=a,b", ("mode", ["a", "b"])),
    ("sizes=[1, 2],[3]", ("sizes", [[1, 2], [3]])),
    ("flag=true", ("flag", [True])),
])
def test_parse_grid_option_reads_values_as_yaml(text, expected):
    assert run.parse_grid_option(text) == expected


def test_run_folder_names_are_ordered_and_safe_for_file_names():
    assert run.run_folder_name((("seed", 0), ("lr", 0.5))) == "seed=0,lr=0.5"
    assert run.run_folder_name((("path", "data/x y"), ("on", True), ("k", [1, 2]))) == "path=data_x_y,on=true,k=_1__2_"
    assert run.run_folder_name(()) == ""


@pytest.mark.notebook
def test_grid_runs_each_setting_in_its_own_folder_and_tables_the_results(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SNNLAB_FIGURES", raising=False)  # the default: each run's figures in its own folder
    notebook = tiny_results_notebook(tmp_path / "tiny.ipynb")
    out = tmp_path / "out"
    assert run.main([str(notebook), "--grid", "seed=0,1,2", "--grid", "scale=1,2", "--out", str(out),
                     "-j", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    settings = [(seed, scale) for seed in (0, 1, 2) for scale in (1, 2)]
    folders = [f"seed={seed},scale={scale}" for seed, scale in settings]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(folders)
    for (seed, scale), folder in zip(settings, folders):
        assert (out / folder / "tiny.ipynb").is_file()
        assert (out / folder / "figures" / "tiny_figure.txt").read_text() == f"{seed} {scale}"
        record = json.loads((out / folder / "tiny.results.json").read_text())
        assert record == {"notebook": "tiny", "parameters": {"seed": seed, "scale": scale},
                          "results": {"acc": seed * scale + 0.5}}
        assert json.loads((out / folder / "run_card.json").read_text())["parameters"] == {"seed": seed, "scale": scale}
    assert not list(out.rglob(".*running*"))

    rows = read_csv(out / "results.csv")
    assert [(r["notebook"], int(r["seed"]), int(r["scale"]), r["run"], r["status"]) for r in rows] == \
        [("tiny", seed, scale, folder, "ok") for (seed, scale), folder in zip(settings, folders)]
    assert [float(r["acc"]) for r in rows] == [seed * scale + 0.5 for seed, scale in settings]

    summary = read_csv(out / "results_summary.csv")
    assert [(r["notebook"], r["scale"], r["result"], r["n"]) for r in summary] == \
        [("tiny", "1", "acc", "3"), ("tiny", "2", "acc", "3")]
    for r in summary:  # seed is averaged over: mean and sd (n - 1) over seeds 0, 1, 2
        values = [seed * int(r["scale"]) + 0.5 for seed in (0, 1, 2)]
        mean = sum(values) / 3
        sd = (sum((v - mean) ** 2 for v in values) / 2) ** 0.5
        assert float(r["mean"]) == pytest.approx(mean) and float(r["sd"]) == pytest.approx(sd)
    assert (float(summary[0]["mean"]), float(summary[1]["mean"])) == (1.5, 2.5)
    assert "tiny      2      acc     3  2.5   2" in printed


def _fake_execute_run(fail=()):
    """Stands in for a kernel: records acc = seed + offset, or fails for the given seeds."""
    calls = []

    def fake(r, *, progress=True):
        calls.append(r)
        if r.parameters.get("seed") in fail:
            raise run.RunError(f"{r.notebook.name} failed in cell 1", code=1)
        record = {"notebook": r.notebook.stem, "results": {"acc": r.parameters.get("seed", 0) + 0.25, "label": "x",
                                                           "seed": 99}}
        return 0.0, record

    return fake, calls


def test_grid_from_the_parameters_file_keeps_plain_keys_plain(tmp_path, monkeypatch, capsys):
    fake, calls = _fake_execute_run()
    monkeypatch.setattr(run, "execute_run", fake)
    notebook = tiny_results_notebook(tmp_path / "tiny.ipynb")
    (tmp_path / "p.yaml").write_text("scale: 3.0\ngrid:\n  seed: [4, 5]\n")
    out = tmp_path / "out"
    assert run.main([str(notebook), "-f", str(tmp_path / "p.yaml"), "--out", str(out), "--figures",
                     str(tmp_path / "figs")]) == 0
    assert [(c.parameters, c.folder, c.figures) for c in calls] == [
        ({"scale": 3.0, "seed": s}, out / f"seed={s}", tmp_path / "figs" / f"seed={s}") for s in (4, 5)]
    rows = read_csv(out / "results.csv")
    # A recorded name that is also a column (here the grid parameter seed) gets a prefix.
    assert list(rows[0]) == ["notebook", "seed", "acc", "label", "result.seed", "run", "status"]
    assert [(r["seed"], r["acc"], r["result.seed"]) for r in rows] == [("4", "4.25", "99"), ("5", "5.25", "99")]
    summary = read_csv(out / "results_summary.csv")
    assert [(r["result"], r["n"], r["mean"]) for r in summary] == [("acc", "2", "4.75"), ("seed", "2", "99.0")]

    # The command line replaces the file's axis.
    calls.clear()
    assert run.main([str(notebook), "-f", str(tmp_path / "p.yaml"), "--grid", "seed=7", "--out", str(out)]) == 0
    assert [c.parameters for c in calls] == [{"scale": 3.0, "seed": 7}]


def test_failed_and_skipped_runs_are_rows_too(tmp_path, monkeypatch, capsys):
    fake, calls = _fake_execute_run(fail={1})
    monkeypatch.setattr(run, "execute_run", fake)
    notebook = tiny_results_notebook(tmp_path / "tiny.ipynb")
    out = tmp_path / "out"
    assert run.main([str(notebook), "--grid", "seed=0,1,2", "--out", str(out)]) == 1
    assert [r["status"] for r in read_csv(out / "results.csv")] == ["ok", "failed", "skipped"]
    assert "failed: tiny.ipynb [seed=1]" in capsys.readouterr().err
    assert run.main([str(notebook), "--grid", "seed=0,1,2", "--out", str(out), "--keep-going"]) == 1
    rows = read_csv(out / "results.csv")
    assert [(r["status"], r["acc"]) for r in rows] == [("ok", "0.25"), ("failed", ""), ("ok", "2.25")]
    summary = read_csv(out / "results_summary.csv")
    assert [(r["result"], r["n"], float(r["mean"])) for r in summary] == [("acc", "2", 1.25), ("seed", "2", 99.0)]


def test_without_a_grid_results_csv_has_one_row_per_notebook(tmp_path, monkeypatch, capsys):
    fake, _ = _fake_execute_run()
    monkeypatch.setattr(run, "execute_run", fake)
    notebook = tiny_results_notebook(tmp_path / "tiny.ipynb")
    out = tmp_path / "out"
    assert run.main([str(notebook), "-p", "seed", "2", "--out", str(out)]) == 0
    rows = read_csv(out / "results.csv")
    assert [(r["notebook"], r["acc"], r["run"], r["status"]) for r in rows] == [("tiny", "2.25", ".", "ok")]
    summary = read_csv(out / "results_summary.csv")
    assert summary[0]["n"] == "1" and summary[0]["sd"] == ""


def test_a_run_that_records_nothing_writes_no_table(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "execute_run", lambda r, progress=True: (0.0, None))
    out = tmp_path / "out"
    assert run.main([str(WELCOME), "--out", str(out)]) == 0
    assert not (out / "results.csv").exists()


@pytest.mark.parametrize("argv,message", [
    (["--grid", "seed="], "--grid seed: no values"),
    (["--grid", "seed"], "expected NAME=V1,V2,..."),
    (["--grid", "=1,2"], "expected NAME=V1,V2,..."),
    (["--grid", "see d=1"], "is not a parameter name"),
    (["--grid", "seed=0,,1"], "cannot read '0,,1' as comma-separated values"),
    (["--grid", "seed=0,1", "-p", "seed", "3"], "seed is both a grid axis"),
    (["--grid", "device=cpu", "--device", "cpu"], "device is both a grid axis (--grid or grid: in -f) and a --device"),
    (["--grid", "seed=0,1", "--grid", "seed=2"], "--grid seed is given twice"),
    (["--grid", "seed=0,0"], "values 0 and 0 are the same setting"),
    (["--grid", "no_such_parameter=1,2"], "unknown grid parameter 'no_such_parameter'"),
    (["--grid", "device=cpu,tpu"], "--grid device"),
])
def test_bad_grid_is_refused_in_one_line_before_writing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert run.main([str(WELCOME), *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("snnlab run: ") and "Traceback" not in err
    if "unknown grid parameter" not in message:
        assert err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("text,message", [
    ("grid:\n  seed: []\n", "grid: seed: no values"),
    ("grid: [1, 2]\n", "grid must be a mapping"),
    ("grid:\n  seed: 3\n", "grid: seed: expected a list of values"),
    ("seed: 1\ngrid:\n  seed: [0, 1]\n", "seed is both a plain parameter and a grid axis"),
])
def test_bad_grid_in_the_parameters_file_is_refused_before_writing(text, message, tmp_path, capsys):
    (tmp_path / "p.yaml").write_text(text)
    out = tmp_path / "out"
    assert run.main([str(WELCOME), "-f", str(tmp_path / "p.yaml"), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_grid_folder_that_is_a_file_is_refused_before_writing(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "seed=1").write_text("precious")
    assert run.main([str(WELCOME), "--grid", "seed=0,1", "--out", str(out)]) == 2
    assert f"--out {out / 'seed=1'} is a file" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["seed=1"]


def test_stale_results_temporaries_of_dead_runs_are_removed(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = [tmp_path / f".01_a.running-{gone.pid}.results.json",
            tmp_path / f"..01_a.running-{gone.pid}.results.json.k2x9a_1q.tmp"]  # a killed atomic write
    alive = tmp_path / f".01_a.running-{os.getpid()}.results.json"
    kept = tmp_path / "01_a.results.json"
    for path in (*dead, alive, kept):
        path.write_text("{}")
    assert sorted(run.remove_stale_runs(tmp_path)) == sorted(dead)
    assert alive.exists() and kept.exists()


@pytest.mark.notebook
def test_parallel_runs_give_each_kernel_its_share_of_the_cores(tmp_path, monkeypatch):
    """-j N: each kernel starts torch with cores // N threads (unless OMP_NUM_THREADS is set), so N
    notebooks that each use 'all the cores' do not oversubscribe the machine."""
    import os

    import nbformat

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import torch\nfrom snnlab.results import record_results\nrecord_results('threads', n=torch.get_num_threads())")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "threads.ipynb")
    out = tmp_path / "out"
    assert run.main([str(tmp_path / "threads.ipynb"), "--grid", "seed=0,1", "-j", "2", "--out", str(out),
                     "--no-progress"]) == 0
    cores = len(os.sched_getaffinity(0))
    assert [float(r["n"]) for r in read_csv(out / "results.csv")] == [max(1, cores // 2)] * 2
    assert "OMP_NUM_THREADS" not in os.environ   # the runner's own environment is restored
