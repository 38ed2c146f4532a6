import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image
import io

from snnlab import widgets


def line_plot(slope, style="-"):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, slope], style)
    ax.set_ylim(-3, 3)
    ax.set(xlabel="x (a.u.)", ylabel="y (a.u.)")
    return fig


def pixels(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)


def test_has_frontend_false_when_headless(monkeypatch):
    monkeypatch.setenv("SNNLAB_HEADLESS", "1")
    assert widgets.has_frontend() is False
    monkeypatch.delenv("SNNLAB_HEADLESS")
    assert widgets.has_frontend() is False  # plain Python, no kernel


def test_make_control_specs():
    assert isinstance(widgets.make_control("n", (1, 10, 1, 5)), w.IntSlider)
    slider = widgets.make_control("tau", (1.0, 50.0, 0.5, 20.0))
    assert isinstance(slider, w.FloatSlider) and slider.value == 20.0
    assert widgets.make_control("mode", ["a", "b"]).value == "a"
    grid = widgets.make_control("k", ([1, 2, 4], 2))
    assert isinstance(grid, w.SelectionSlider) and grid.value == 2
    assert isinstance(widgets.make_control("on", True), w.Checkbox)
    with pytest.raises(ValueError, match="control 'x'"):
        widgets.make_control("x", (0, 1, 0.1, 5))
    with pytest.raises(ValueError, match="control 'y'"):
        widgets.make_control("y", "nonsense")


def test_panel_shows_default_and_updates_in_place(monkeypatch):
    monkeypatch.setenv("SNNLAB_HEADLESS", "1")
    panel = widgets.interactive(line_plot, slope=(-2.0, 2.0, 0.5, 1.0), style=["-", "--"])
    assert panel.renders == 1 and panel.values == {"slope": 1.0, "style": "-"}
    before = panel.render()
    after = panel.update(slope=-2.0)
    assert panel.controls["slope"].value == -2.0
    assert np.abs(pixels(before) - pixels(after)).sum() > 0  # the figure really changed
    assert np.array_equal(pixels(after), pixels(panel.render()))  # and re-plotting is deterministic
    with pytest.raises(ValueError, match="unknown control"):
        panel.update(nope=1)


def test_slider_change_triggers_redraw_with_frontend(monkeypatch):
    monkeypatch.setattr(widgets, "has_frontend", lambda: True)
    panel = widgets.Panel(line_plot, {"slope": (-2.0, 2.0, 0.5, 1.0)}).show()
    n = panel.renders
    panel.controls["slope"].value = 0.5  # what a user's drag does
    assert panel.renders == n + 1


def test_panel_rejects_non_figure():
    panel = widgets.Panel(lambda a: None, {"a": (0, 1, 1, 0)})
    with pytest.raises(TypeError, match="matplotlib Figure"):
        panel.render()
