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
    assert len(fig.axes) == 8 and len(shown) == 7
    assert shown[0].images[0].get_array().shape == (5, 5)  # channel mean
    plt.close(fig)


def test_learning_curves_and_bands():
    ax = plots.learning_curves({"a": [0.1, 0.5, 0.9]}, bands={"a": [0.1, 0.1, 0.1]})
    assert ax.lines[0].get_ydata().tolist() == [0.1, 0.5, 0.9]
    assert len(ax.collections) == 1


def test_save_figure_writes_each_format(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
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
