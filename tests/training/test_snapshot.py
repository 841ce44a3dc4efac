from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from cheeger.training import save_snapshot, snapshot_figure
from cheeger.training.snapshot import label_colours


def _maps():
    target = torch.zeros(12, 16, dtype=torch.long)
    target[:, 8:] = 1
    target[0, 0] = 255
    prediction = torch.zeros(12, 16, dtype=torch.long)
    prediction[:, 6:] = 2
    return target, prediction


def test_label_colours_are_distinct_and_void_is_black():
    colours = label_colours(torch.tensor([[0, 1, 2, 255, 7]]), 3, 255)[0]
    assert len({tuple(c) for c in colours[:3]}) == 3
    assert np.array_equal(colours[3], [0, 0, 0]) and np.array_equal(colours[4], [0, 0, 0])


def test_conv_snapshot_has_three_panels_and_a_legend(tmp_path):
    target, prediction = _maps()
    fig = snapshot_figure(torch.rand(3, 12, 16), target, prediction, ("a", "b", "c"), 255)
    assert [ax.get_title() for ax in fig.axes] == ["input", "ground truth", "prediction"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b", "c"]
    path = tmp_path / "s.png"
    save_snapshot(path, torch.rand(3, 12, 16), target, prediction, ("a", "b", "c"), 255)
    assert Image.open(path).format == "PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]  # no temp file left


def test_spectral_internals_add_eigenvectors_and_the_filter(tmp_path):
    target, prediction = _maps()
    k, (h, w) = 6, (3, 4)
    internals = {
        "eigenvalues": torch.linspace(0, 1, k)[None], "eigenvectors": torch.randn(1, h * w, k),
        "graph_size": torch.tensor([h, w]), "filter": torch.rand(1, k),
        "noise_edge": torch.tensor(0.6),
    }  # fmt: skip
    fig = snapshot_figure(torch.rand(3, 12, 16), target, prediction, ("a", "b", "c"), 255,
                          internals, title="epoch 1")  # fmt: skip
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["input", "ground truth", "prediction"]
    assert titles[3:7] == ["u1 (λ=0)", "u2 (λ=0.2)", "u3 (λ=0.4)", "u4 (λ=0.6)"]
    assert fig.axes[3].images[0].get_array().shape == (h, w)
    curve = fig.axes[7]
    assert np.allclose(curve.lines[0].get_ydata(), internals["filter"][0].numpy())
    assert curve.lines[1].get_xdata()[0] == np.float32(0.6)  # the noise edge
    save_snapshot(tmp_path / "s.png", torch.rand(3, 12, 16), target, prediction, ("a", "b", "c"),
                  255, internals)  # fmt: skip
    assert Image.open(tmp_path / "s.png").size[0] > Image.open(tmp_path / "s.png").size[1]
