"""Parameter panels for notebooks: sliders in JupyterLab, one static figure everywhere else.

How it works, and why: the panel draws its figure once with the default values and *displays it as
an ordinary image output* (with a display id). With a front end attached it also shows the controls;
moving one re-plots and replaces that same output in place (``update_display_data``). So:

* papermill, nbval and nbconvert capture the default figure (they never see a widget ``Output``
  area, whose contents live in widget state and are lost headless);
* nothing waits for a front end, so nothing can hang a batch run;
* handouts show the default figure.

The plot function must be cheap: compute results once in the notebook, and let the panel only
re-plot them (for example by indexing precomputed runs).

Used by every notebook's *Interactive Demo* section.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib

from .utils import headless

PlotFn = Callable[..., "matplotlib.figure.Figure"]


def has_frontend() -> bool:
    """True inside a Jupyter kernel that may have a front end; False headless.

    ``SNNLAB_HEADLESS=1`` (set by ``snnlab run`` and the test suite) forces headless. Outside an
    IPython kernel (plain Python, scripts) there is never a front end.
    """
    if headless():
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the kit
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


#: name suffix -> unit shown in the control's label (``tau_ms`` is labelled ``tau (ms)``)
UNIT_SUFFIXES = {"_ms": "ms", "_steps": "steps", "_s": "s", "_hz": "Hz", "_mv": "mV", "_pct": "%", "_deg": "deg"}


def control_label(name: str) -> str:
    """The label a control shows: the parameter name, with its unit suffix spelled as a unit."""
    for suffix, unit in UNIT_SUFFIXES.items():
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return f"{name[:-len(suffix)]} ({unit})"
    return name


def make_control(name: str, spec: Any):
    """Build an ipywidgets control from a compact spec, labelled by :func:`control_label`.

    * ``(min, max, step, value)`` numbers -> ``IntSlider`` when all are ints, else ``FloatSlider``;
    * a ``list`` of options -> ``Dropdown`` whose value is the first option;
    * ``(list_of_options, default)`` -> ``SelectionSlider`` for numbers (precomputed grids),
      ``Dropdown`` otherwise, starting at ``default``;
    * a ``bool`` -> ``Checkbox``;
    * an ipywidgets widget -> used as is.
    """
    import ipywidgets as w

    if isinstance(spec, w.Widget):
        return spec
    label = control_label(name)
    if isinstance(spec, bool):
        return w.Checkbox(value=spec, description=label)
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"control {name!r}: an options list must not be empty")
        return w.Dropdown(options=spec, value=spec[0], description=label)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], (list, tuple)):
        options, value = list(spec[0]), spec[1]
        if value not in options:
            raise ValueError(f"control {name!r}: default {value!r} is not one of {options}")
        if all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options):
            return w.SelectionSlider(options=options, value=value, description=label, continuous_update=False,
                                     style={"description_width": "initial"})
        return w.Dropdown(options=options, value=value, description=label)
    if isinstance(spec, tuple) and len(spec) == 4 and all(isinstance(v, (int, float)) for v in spec):
        lo, hi, step, value = spec
        if not lo <= value <= hi:
            raise ValueError(f"control {name!r}: default {value} outside [{lo}, {hi}]")
        style = {"description_width": "initial"}
        if all(isinstance(v, int) and not isinstance(v, bool) for v in spec):
            return w.IntSlider(min=lo, max=hi, step=step, value=value, description=label,
                               continuous_update=False, style=style)
        return w.FloatSlider(min=lo, max=hi, step=step, value=value, description=label,
                             continuous_update=False, style=style, readout_format=".3g")
    raise ValueError(
        f"control {name!r}: expected (min, max, step, value), a list of options, (options, default), "
        f"a bool or an "
        f"ipywidgets widget; got {spec!r}"
    )


def figure_png(fig, *, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (so the inline backend does not show it twice)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


class Panel:
    """A figure driven by controls. ``plot(**values) -> Figure`` must only re-plot, never re-train.

    >>> panel = Panel(lambda tau: make_fig(tau), {"tau": (1.0, 50.0, 1.0, 20.0)})
    >>> panel.show()          # default figure (always) + sliders (with a front end)
    >>> panel.update(tau=5)   # what a slider does: re-plot in place
    """

    def __init__(self, plot: PlotFn, controls: Mapping[str, Any], *, dpi: int = 100):
        if not callable(plot):
            raise ValueError("plot must be a callable returning a matplotlib Figure")
        if not controls:
            raise ValueError("controls must name at least one parameter")
        self.plot = plot
        self.dpi = dpi
        self.controls = {name: make_control(name, spec) for name, spec in controls.items()}
        self.handle = None
        self.renders = 0
        self._updating = False

    @property
    def values(self) -> dict:
        """The controls' current values."""
        return {name: control.value for name, control in self.controls.items()}

    def render(self, **overrides) -> bytes:
        """PNG bytes of ``plot`` at the current values (with ``overrides``)."""
        values = {**self.values, **overrides}
        fig = self.plot(**values)
        if fig is None or not hasattr(fig, "savefig"):
            raise TypeError("the panel's plot function must return a matplotlib Figure")
        from .plots import check_figure

        check_figure(fig, f"panel {getattr(self.plot, '__name__', 'plot')}")
        self.renders += 1
        return figure_png(fig, dpi=self.dpi)

    def show(self) -> "Panel":
        """Display the default figure, and the controls when a front end is attached."""
        from IPython.display import Image, display

        self.handle = display(Image(data=self.render()), display_id=True)
        if has_frontend():
            import ipywidgets as w

            for control in self.controls.values():
                control.observe(self._on_change, names="value")
            display(w.HBox(list(self.controls.values()), layout=w.Layout(flex_flow="row wrap")))
        return self

    def update(self, **values) -> bytes:
        """Set control values and re-plot in place; returns the new PNG bytes."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; this panel has {sorted(self.controls)}")
        for name, value in values.items():
            control = self.controls[name]
            self._updating = True
            try:
                control.value = value
            finally:
                self._updating = False
        return self._redraw()

    def _on_change(self, _change) -> None:
        if not self._updating:
            self._redraw()

    def _redraw(self) -> bytes:
        from IPython.display import Image

        png = self.render()
        if self.handle is not None:
            self.handle.update(Image(data=png))
        return png


def interactive(plot: PlotFn, **controls) -> Panel:
    """Show ``plot`` with one control per keyword (see :func:`make_control`) and return the panel."""
    return Panel(plot, controls).show()
