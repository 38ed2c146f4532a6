"""Checks for the notebooks' coding exercises: a failed check says what is wrong and what to try.

A check cell calls these instead of a bare ``assert``, so a student reads
``Exercise 2: dv at step 0 is 0.05, expected 0.025 (|difference| 0.025 > 1e-09). Hint: divide by tau.``
rather than ``AssertionError``. The error is an ``AssertionError`` subclass, so nbval and pytest treat
a failed check as a failed assertion.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ExerciseCheckError", "check_close", "check_equal", "check_shape", "check_true", "passed"]


class ExerciseCheckError(AssertionError):
    """A check cell found a wrong answer; the message says what and gives the hint."""


def _fail(exercise: str, message: str, hint: str) -> None:
    text = f"{exercise}: {message}" if exercise else message
    if hint:
        text += f" Hint: {hint}"
    raise ExerciseCheckError(text)


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def _unfinished(exercise: str, name: str, got: Any) -> None:
    if got is Ellipsis:
        _fail(exercise, f"`{name}` is still `...`: replace the `...` in the exercise cell with your code.", "")
    if got is None:
        _fail(exercise, f"`{name}` is None: does your function end with `return`?", "")


def check_close(exercise: str, name: str, got: Any, expected: Any, *, rtol: float = 1e-6,
                atol: float = 1e-9, hint: str = "") -> None:
    """Pass when ``got`` equals ``expected`` within ``atol + rtol * |expected|``, element-wise.

    Scalars, lists, numpy arrays and tensors are accepted. On failure the message names the first
    element that differs, both values and the tolerance.
    """
    _unfinished(exercise, name, got)
    try:
        g, e = _array(got), _array(expected)
    except (TypeError, ValueError):
        _fail(exercise, f"`{name}` should be a number or an array of numbers, got {type(got).__name__}.", hint)
    if g.shape != e.shape:
        if g.size == 1 and e.size == 1:
            g, e = g.reshape(()), e.reshape(())
        else:
            _fail(exercise, f"`{name}` has shape {tuple(g.shape)}, expected {tuple(e.shape)}.", hint)
    bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return
    if g.ndim == 0:
        where, gv, ev = "", float(g), float(e)
    else:
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where, gv, ev = f" at index {index}", float(g[index]), float(e[index])
        where += f" ({int(bad.sum())} of {bad.size} elements differ)"
    if math.isnan(gv):
        _fail(exercise, f"`{name}`{where} is NaN, expected {ev:.6g}.", hint)
    _fail(exercise, f"`{name}`{where} is {gv:.6g}, expected {ev:.6g} "
                    f"(|difference| {abs(gv - ev):.3g} > {atol + rtol * abs(ev):.3g}).", hint)


def check_equal(exercise: str, name: str, got: Any, expected: Any, *, hint: str = "") -> None:
    """Pass when ``got == expected`` (ints, strings, tuples, booleans)."""
    _unfinished(exercise, name, got)
    if got != expected:
        _fail(exercise, f"`{name}` is {got!r}, expected {expected!r}.", hint)


def check_shape(exercise: str, name: str, got: Any, shape: tuple[int, ...], *, hint: str = "") -> None:
    """Pass when ``got`` (an array or tensor) has exactly ``shape``."""
    _unfinished(exercise, name, got)
    actual = tuple(getattr(got, "shape", np.shape(got)))
    if actual != tuple(shape):
        _fail(exercise, f"`{name}` has shape {actual}, expected {tuple(shape)}.", hint)


def check_true(exercise: str, condition: bool, message: str, *, hint: str = "") -> None:
    """Pass when ``condition`` holds; ``message`` says what was expected (and, best, what was found)."""
    if not condition:
        _fail(exercise, message, hint)


def passed(exercise: str, what: str = "") -> None:
    """Print the line a student sees when every check of an exercise passed."""
    print(f"{exercise} passed" + (f": {what}" if what else "."))
