import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from snnlab import plots


def test_raster_places_spikes_at_their_times():
    spikes = torch.zeros(10, 3)
    spikes[2, 0] = spikes[7, 2] = 1
    ax = plots.raster(spikes, dt=0.5, t0=1.0)
    xs, ys = ax.lines[0].get_data()
    assert sorted(zip(xs.tolist(), ys.tolist())) == [(2.0, 0), (4.5, 2)]
    with pytest.raises(ValueError, match="spikes"):
        plots.raster(torch.zeros(2, 2, 2))


def test_weight_images_grid_and_channels():
    fig = plots.weight_images(np.random.rand(7, 2, 5, 5), ncols=4)
    shown = [ax for ax in fig.axes if ax.images]
    grid = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert len(grid) == 8 and len(shown) == 7
    assert shown[0].images[0].get_array().shape == (5, 5)  # channel mean
    colorbars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    assert len(colorbars) == 1 and colorbars[0].get_ylabel() == "weight"
    assert plots.figure_problems(fig) == []
    plt.close(fig)


def test_learning_curves_and_bands():
    ax = plots.learning_curves({"a": [0.1, 0.5, 0.9]}, bands={"a": [0.1, 0.1, 0.1]})
    assert ax.lines[0].get_ydata().tolist() == [0.1, 0.5, 0.9]
    assert len(ax.collections) == 1


def test_figure_problems_name_what_a_reader_would_miss(monkeypatch, tmp_path):
    fig, (a, b) = plt.subplots(1, 2)
    a.plot([0, 1], label="first")
    a.legend(fontsize=6)
    a.plot([1, 0], label="added late")
    b.imshow(np.eye(3))
    b.set_title("image")
    problems = plots.figure_problems(fig)
    assert "axes 0: the x axis has no label" in problems and "axes 0: the y axis has no label" in problems
    assert any("['added late'] were added after the legend" in p for p in problems)
    assert any("smaller than 8 pt" in p for p in problems)
    assert "'image': an image without a colour bar" in problems
    monkeypatch.setenv("SNNLAB_STRICT_FIGURES", "1")
    with pytest.raises(ValueError, match="hard to read"):
        plots.save_figure(fig, "00_bad", folder=tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("SNNLAB_STRICT_FIGURES", "0")
    assert len(plots.save_figure(fig, "00_bad", folder=tmp_path)) == 1
    a.set(xlabel="t (ms)", ylabel="w"); a.legend(fontsize=8); fig.colorbar(b.images[0], ax=b)
    b.set(xlabel="pre", ylabel="post")
    assert plots.figure_problems(fig) == []
    plt.close(fig)


def test_raster_uses_integer_neuron_ticks():
    ax = plots.raster(torch.eye(3))
    assert all(float(t).is_integer() for t in ax.get_yticks())
    plt.close(ax.figure)


def test_save_figure_writes_each_format(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ax.set(xlabel="x (a.u.)", ylabel="y (a.u.)")
    paths = plots.save_figure(fig, "00_test", formats=("png", "svg"), folder=tmp_path)
    assert [p.name for p in paths] == ["00_test.png", "00_test.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00_test.png", "00_test.svg"]
    with pytest.raises(ValueError, match="formats"):
        plots.save_figure(fig, "x", formats=("gif",), folder=tmp_path)
    with pytest.raises(ValueError, match="name"):
        plots.save_figure(fig, "../x", folder=tmp_path)


def test_plotly_html_is_self_contained(tmp_path):
    fig = plots.plotly_curves({"train": [1, 2, 3], "val": [1, 1.5, 2]})
    assert len(fig.data) == 2
    html = plots.save_plotly(fig, "00_curves", folder=tmp_path).read_text()
    assert "<script src=\"http" not in html and "plotly" in html.lower()


def test_traces_take_colours_and_an_outside_legend():
    ax = plots.traces([0, 1, 2], {"a": [0, 1, 0], "b": [1, 0, 1]}, colors={"b": "red"}, legend_loc="outside",
                      ylabel="v (mV)")
    assert ax.lines[1].get_color() == "red"
    box = ax.get_legend().get_bbox_to_anchor()
    assert box.x0 > ax.bbox.x1 - 1e-6  # right of the axes, off the data
    assert plots.figure_problems(ax.figure) == []
    plt.close(ax.figure)


def test_markdown_table_renders_one_row_per_line_and_escapes_bars():
    from markdown_it import MarkdownIt

    text = plots.markdown_table(["setting", "|w|"], [["a", 0.5], ["b|c", "1\n2"]])
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.count("<tr>") == 3 and html.count("<td>") == 4       # header + 2 rows, 2 cells each
    assert "<th>|w|</th>" in html and "<td>b|c</td>" in html and "<td>1 2</td>" in html
    with pytest.raises(ValueError, match=r"rows\[0\] has 1 cells"):
        plots.markdown_table(["a", "b"], [["only one"]])
