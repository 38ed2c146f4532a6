"""snnlab.exercises: a failed check names the exercise, the value, the expectation and the hint."""
import numpy as np
import pytest
import torch

from snnlab import exercises, utils, widgets
from snnlab.exercises import ExerciseCheckError


def test_check_close_passes_within_tolerance_and_explains_a_miss():
    exercises.check_close("Exercise 1", "rate", 50.0 + 1e-9, 50.0)
    exercises.check_close("Exercise 1", "w", torch.tensor([0.1, 0.2]), np.array([0.1, 0.2]))
    with pytest.raises(ExerciseCheckError) as err:
        exercises.check_close("Exercise 2", "w", [0.1, 0.25, 0.3, 0.9], [0.1, 0.2, 0.3, 0.4], hint="decay first")
    text = str(err.value)
    assert text.startswith("Exercise 2: `w` at index (1,) (2 of 4 elements differ) is 0.25, expected 0.2")
    assert text.endswith("Hint: decay first")
    assert isinstance(err.value, AssertionError)  # nbval and pytest see a failed assertion


@pytest.mark.parametrize("got, says", [(..., "still `...`"), (None, "end with `return`"),
                                       ([1.0, 2.0], "shape (2,), expected (3,)"), (float("nan"), "is NaN"),
                                       ("text", "should be a number")])
def test_check_close_says_what_kind_of_wrong(got, says):
    with pytest.raises(ExerciseCheckError, match=None) as err:
        exercises.check_close("Exercise 3", "dv", got, [1.0, 2.0, 3.0] if isinstance(got, list) else 1.0)
    assert says in str(err.value)


def test_check_equal_shape_true_and_passed(capsys):
    exercises.check_equal("Exercise 1", "n", 3, 3)
    with pytest.raises(ExerciseCheckError, match=r"`n` is 4, expected 3"):
        exercises.check_equal("Exercise 1", "n", 4, 3)
    with pytest.raises(ExerciseCheckError, match=r"shape \(2, 3\), expected \(3, 2\)"):
        exercises.check_shape("Exercise 1", "x", torch.zeros(2, 3), (3, 2))
    with pytest.raises(ExerciseCheckError, match="Exercise 4: rates must fall. Hint: sign"):
        exercises.check_true("Exercise 4", False, "rates must fall.", hint="sign")
    exercises.passed("Exercise 4", "the rate falls")
    assert capsys.readouterr().out == "Exercise 4 passed: the rate falls\n"


def test_progress_bar_is_off_headless_and_on_otherwise(monkeypatch):
    monkeypatch.setenv("SNNLAB_HEADLESS", "1")
    assert utils.progress(range(3)).disable
    monkeypatch.setenv("SNNLAB_HEADLESS", "0")
    bar = utils.progress(range(3), file=open("/dev/null", "w"))
    assert not bar.disable and list(bar) == [0, 1, 2]


@pytest.mark.parametrize("name, label", [("tau_ms", "tau (ms)"), ("rate_hz", "rate (Hz)"), ("gamma", "gamma"),
                                         ("_ms", "_ms"), ("window_s", "window (s)")])
def test_controls_are_labelled_with_the_unit_of_their_name(name, label):
    assert widgets.control_label(name) == label
    assert widgets.make_control(name, (1.0, 5.0, 1.0, 2.0)).description == label
