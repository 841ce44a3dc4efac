"""The similarity demo on a real CamVid frame (sky query lights sky, not road, per the labels),
its figure, query parsing and bad queries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cheeger.demos.errors import QueryError
from cheeger.demos.similarity import (
    ClickQuery,
    grid_query,
    parse_query,
    save_figure,
    similarity_figure,
    similarity_map,
    working_size,
)
from cheeger.demos.sources import read_image

from .conftest import ROAD, SKY


def _labels_on_grid(labels: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    grid = F.interpolate(torch.from_numpy(labels.astype(np.float32))[None, None], size,
                         mode="nearest")  # fmt: skip
    return grid[0, 0].long()


def _pixel_of(labels: np.ndarray, value: int) -> tuple[int, int]:
    rows, cols = np.nonzero(labels == value)
    middle = len(rows) // 2
    return int(rows[middle]), int(cols[middle])


@pytest.fixture(scope="module")
def camvid(camvid_frame):
    path, labels = camvid_frame
    return read_image(path), labels


@pytest.mark.parametrize(("query_class", "other"), [(SKY, ROAD), (ROAD, SKY)])
def test_query_class_is_more_similar_than_the_other_class(camvid, query_class, other):
    image, labels = camvid
    query = _pixel_of(labels, query_class)
    result = similarity_map(image, query)
    assert result.similarity.shape == working_size(360, 480, 120) == (90, 120)
    grid = _labels_on_grid(labels, (90, 120))
    same, different = result.similarity[grid == query_class], result.similarity[grid == other]
    assert same.numel() > 100 and different.numel() > 100
    assert same.mean() > different.mean() + 0.3  # this frame: 0.86 (sky query), 0.54 (road)
    # rank separation: a random pixel of the query's class beats one of the other (AUC)
    auc = (same[:, None] > different[None, :]).float().mean()
    assert auc > 0.8, f"AUC {auc:.3f}"


def test_figure_is_written_atomically_as_png(camvid, tmp_path):
    image, labels = camvid
    query = _pixel_of(labels, SKY)
    result = similarity_map(image, query, long_side=40, k=6)
    path = save_figure(similarity_figure(image, result, query, "title"), tmp_path / "a" / "f.png")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 400
        pixels = np.asarray(png.convert("RGB"))
    assert pixels.std() > 20  # not blank
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.png"]  # no temp file left


def test_a_click_moves_the_query_and_redraws_the_map(camvid):
    from types import SimpleNamespace

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image, labels = camvid
    sky, road = _pixel_of(labels, SKY), _pixel_of(labels, ROAD)
    result = similarity_map(image, sky, long_side=40, k=6)
    fig = Figure()
    FigureCanvasAgg(fig)
    window = ClickQuery(fig, image, result, sky)
    before = window.shown.get_array().copy()  # (360, 480) upsampled map
    assert before[sky] > before[road]
    window.click(SimpleNamespace(inaxes=window.right, xdata=road[1] + 0.4, ydata=road[0] + 0.4))
    after = window.shown.get_array()
    assert window.query == road and after[road] > after[sky]
    assert list(window.marks[0].get_xdata()) == [road[1]]
    window.click(SimpleNamespace(inaxes=None, xdata=None, ydata=None))  # outside: nothing moves
    assert window.query == road


def test_grid_query_and_parse():
    assert grid_query((359, 479), (360, 480), (90, 120)) == (89, 119)
    assert grid_query((0, 0), (360, 480), (45, 60)) == (0, 0)
    assert grid_query((100, 50), (200, 100), (20, 50)) == (10, 25)  # rows and columns apart
    assert parse_query("12,34") == (12, 34)
    assert working_size(20, 30, 120) == (20, 30)  # never upscaled


@pytest.mark.parametrize("query", [(360, 0), (0, 480), (-1, 5)])
def test_query_outside_the_image_is_refused(camvid, query):
    with pytest.raises(QueryError, match=r"outside the 360x480 image"):
        similarity_map(camvid[0], query)


@pytest.mark.parametrize("text", ["12", "a,b", "1,2,3", ""])
def test_bad_query_text_is_refused(text):
    with pytest.raises(QueryError, match="ROW,COL"):
        parse_query(text)
