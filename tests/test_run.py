"""`snnlab run` argument handling (fast: no kernel is started in these tests)."""
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
    assert "not found" in capsys.readouterr().err
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


def test_jobs_must_be_positive(capsys):
    assert run.main([str(WELCOME), "-j", "0"]) == 2
    assert "-j/--jobs must be >= 1" in capsys.readouterr().err


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
