"""Figures: spike rasters, traces, weight images, learning curves (matplotlib), and plotly helpers.

Every function returns what it drew on (an ``Axes`` or a ``Figure``) and never calls ``plt.show()``,
so notebooks, widgets (:mod:`snnlab.widgets`) and scripts can compose them. ``save_figure`` writes
figures atomically to :func:`snnlab.utils.figures_dir` (``figures/`` in the checkout).
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .utils import atomic_write_bytes, figures_dir

FIGURE_FORMATS = ("png", "svg", "pdf")


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 2.5))
    return ax


def raster(spikes, *, dt: float = 1.0, t0: float = 0.0, ax=None, color="k", marker="|", markersize=6,
           label=None):
    """Spike raster of a ``[T, N]`` 0/1 array (time down the first axis), one row per neuron.

    Step index ``i`` is drawn at time ``t0 + i * dt`` (ms). Returns the ``Axes``.
    """
    s = _to_numpy(spikes)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2:
        raise ValueError(f"spikes must be [T] or [T, N], got shape {s.shape}")
    ax = _axes(ax)
    t_idx, n_idx = np.nonzero(s)
    ax.plot(t0 + t_idx * dt, n_idx, linestyle="none", marker=marker, color=color,
            markersize=markersize, label=label)
    ax.set_xlim(t0 - dt, t0 + s.shape[0] * dt)
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # neuron indices, never 2.5
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron")
    return ax


def traces(t, series: Mapping[str, Sequence[float]], *, ax=None, ylabel="", threshold=None, step=False,
           colors: Mapping[str, str] | None = None, legend_loc="best"):
    """Plot named time series against ``t`` (ms) on one ``Axes``; optional dashed ``threshold`` line.

    ``colors`` maps a series name to its colour (one colour per quantity across a notebook);
    ``legend_loc`` is matplotlib's ``loc``, or ``"outside"`` for a legend right of the axes, off the data.
    """
    ax = _axes(ax)
    t = _to_numpy(t)
    colors = colors or {}
    for name, values in series.items():
        values = _to_numpy(values)
        style = {"color": colors[name]} if name in colors else {}
        if step:
            ax.step(t, values, where="post", label=name, **style)
        else:
            ax.plot(t, values, label=name, **style)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="threshold")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(ylabel)
    if len(series) > 1 or threshold is not None:
        if legend_loc == "outside":
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", borderaxespad=0)
        else:
            ax.legend(loc=legend_loc, fontsize="small")
    return ax


def weight_images(weights, *, ncols: int = 10, cmap="viridis", title=None, vmin=None, vmax=None,
                  panel_size: float = 1.0, colorbar: str | None = "weight"):
    """Show ``[n, H, W]`` or ``[n, C, H, W]`` weights as a grid of images (channel mean for C > 1
    unless C == 3, which is shown as RGB after min-max scaling). Returns the ``Figure``.

    Grey-level grids share one colour scale (``vmin``/``vmax``, else the weights' range) and get one
    colour bar labelled ``colorbar``; ``colorbar=None`` leaves it out (only for RGB images).
    """
    w = _to_numpy(weights).astype(float)
    if w.ndim == 2:
        w = w[None]
    if w.ndim == 4:
        w = np.transpose(w, (0, 2, 3, 1)) if w.shape[1] == 3 else w.mean(axis=1)
    if w.ndim not in (3, 4):
        raise ValueError(f"weights must be [n, H, W] or [n, C, H, W], got shape {_to_numpy(weights).shape}")
    n = w.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    if w.ndim == 3:  # one scale for the grid, so one colour bar reads every panel
        vmin = float(w.min()) if vmin is None else vmin
        vmax = float(w.max()) if vmax is None else vmax
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    shown = None
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = w[i]
            if img.ndim == 3:
                img = (img - img.min()) / (np.ptp(img) or 1.0)
            shown = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if colorbar and w.ndim == 3 and shown is not None:
        fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, label=colorbar)
    if title:
        fig.suptitle(title)
    return fig


def learning_curves(curves: Mapping[str, Sequence[float]], *, x=None, ax=None, xlabel="epoch",
                    ylabel="accuracy", bands: Mapping[str, Sequence[float]] | None = None):
    """Plot one line per named curve; ``bands`` (same names) adds a +-band (e.g. a std over seeds)."""
    ax = _axes(ax)
    for name, values in curves.items():
        values = _to_numpy(values).astype(float)
        xs = np.arange(1, len(values) + 1) if x is None else _to_numpy(x)
        (line,) = ax.plot(xs, values, marker="o" if len(values) < 30 else None, markersize=3, label=name)
        if bands and name in bands:
            b = _to_numpy(bands[name]).astype(float)
            ax.fill_between(xs, values - b, values + b, color=line.get_color(), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return ax


STRICT_ENV = "SNNLAB_STRICT_FIGURES"


def _visible_ticklabels(labels) -> bool:
    return any(t.get_visible() and t.get_text() for t in labels)


def figure_problems(fig) -> list[str]:
    """What makes ``fig`` hard to read, as short sentences (an empty list when nothing is found).

    Checked: every axes that shows data and tick labels names that axis; legends are at least 8 pt
    and hold every labelled artist (a label added after ``legend()`` is silently missing);
    grey-level images come with a colour bar. Units cannot be checked by a machine: write them in
    the label, ``"time (ms)"``.
    """
    problems = []
    has_colorbar = any(hasattr(ax, "_colorbar") for ax in fig.axes)
    legends = list(getattr(fig, "legends", []))
    for k, ax in enumerate(fig.axes):
        if hasattr(ax, "_colorbar") or not ax.get_visible():
            continue
        name = repr(ax.get_title()) if ax.get_title() else f"axes {k}"
        images = [im for im in ax.get_images() if np.ndim(im.get_array()) == 2]
        if images and not has_colorbar:
            problems.append(f"{name}: an image without a colour bar")
        if not ax.axison:
            continue
        shows_data = bool(ax.lines or ax.collections or ax.patches or ax.images)
        if shows_data and not ax.get_xlabel() and _visible_ticklabels(ax.get_xticklabels()):
            problems.append(f"{name}: the x axis has no label")
        if shows_data and not ax.get_ylabel() and _visible_ticklabels(ax.get_yticklabels()):
            problems.append(f"{name}: the y axis has no label")
        legend = ax.get_legend()
        if legend is not None:
            legends.append(legend)
            labelled = ax.get_legend_handles_labels()[1]
            if len(labelled) > len(legend.get_texts()):
                missing = sorted(set(labelled) - {t.get_text() for t in legend.get_texts()})
                problems.append(f"{name}: labels {missing} were added after the legend was drawn")
    for legend in legends:
        small = [t.get_text() for t in legend.get_texts() if t.get_fontsize() < 8]
        if small:
            problems.append(f"legend entries {small[:3]} are smaller than 8 pt")
    return problems


def check_figure(fig, name: str) -> None:
    """Raise when ``SNNLAB_STRICT_FIGURES`` is set (the test suite sets it) and ``fig`` has problems."""
    if os.environ.get(STRICT_ENV, "").strip() in ("", "0"):
        return
    problems = figure_problems(fig)
    if problems:
        raise ValueError(f"figure {name!r} is hard to read: " + "; ".join(problems))


def save_figure(fig, name: str, *, formats: Sequence[str] = ("png",), dpi: int = 120,
                folder: str | os.PathLike | None = None) -> list[Path]:
    """Write ``fig`` as ``<folder>/<name>.<fmt>`` for each format, atomically; return the paths.

    ``name`` should start with the notebook's number (``"01_florian_seed_figure"``). ``folder``
    defaults to :func:`snnlab.utils.figures_dir`.
    """
    if not name or any(c in name for c in "/\\"):
        raise ValueError(f"name must be a plain file stem without folders, got {name!r}")
    folder = Path(folder) if folder is not None else figures_dir()
    check_figure(fig, name)
    paths = []
    for fmt in formats:
        if fmt not in FIGURE_FORMATS:
            raise ValueError(f"formats: {fmt!r} is not one of {FIGURE_FORMATS}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
        paths.append(atomic_write_bytes(folder / f"{name}.{fmt}", buffer.getvalue()))
    return paths


# --------------------------------------------------------------------------- plotly
def plotly_curves(curves: Mapping[str, Sequence[float]], *, x=None, title="", xlabel="epoch",
                  ylabel="accuracy"):
    """An interactive plotly line chart of named curves (hover shows values). Returns a ``go.Figure``."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, values in curves.items():
        values = _to_numpy(values).astype(float)
        xs = np.arange(1, len(values) + 1) if x is None else _to_numpy(x)
        fig.add_trace(go.Scatter(x=xs, y=values, mode="lines+markers", name=name))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white",
                      height=350, margin=dict(l=40, r=20, t=40, b=40))
    return fig


def save_plotly(fig, name: str, *, folder: str | os.PathLike | None = None) -> Path:
    """Write a plotly figure as a self-contained HTML file (plotly.js embedded: opens offline)."""
    folder = Path(folder) if folder is not None else figures_dir()
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    return atomic_write_bytes(folder / f"{name}.html", html.encode("utf-8"))


def show_plotly(fig) -> None:
    """Display a plotly figure so it is interactive in JupyterLab *and* visible in exported HTML.

    The default renderer emits only plotly's JSON mime type, which nbconvert's HTML drops; adding the
    ``notebook`` renderer embeds plotly.js once per notebook (no network needed to view it).
    """
    import plotly.io as pio

    renderer = "plotly_mimetype+notebook"
    if pio.renderers.default != renderer:
        pio.renderers.default = renderer  # activating it injects plotly.js into the notebook once
    fig.show()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table (``display(Markdown(...))`` renders it): on screen and on paper its cells wrap,
    where a printed fixed-width text table wider than the page breaks its lines. Numbers are written
    with ``str``: format them first. A ``|`` in a cell is escaped."""
    if not header:
        raise ValueError("header must name at least one column")
    cell = lambda value: str(value).replace("|", r"\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    for k, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{k}] has {len(row)} cells, the header {len(header)}")
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)
