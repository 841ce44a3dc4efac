"""Principal angles against scipy's float64 oracle; route evaluation on a hand-made split."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles

from cheeger.unsupervised.evaluate import evaluate_route, principal_angles

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("seed", range(3))
def test_principal_angles_match_scipy(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    b[:, :2] = a[:, :2] @ rng.normal(size=(2, 2))  # two shared directions
    ours = principal_angles(torch.tensor(a), torch.tensor(b)).numpy()
    expected = np.sort(np.rad2deg(subspace_angles(a, b)))
    np.testing.assert_allclose(ours, expected, atol=1e-4)  # arccos near 1: ill-conditioned
    assert ours[:2].max() < 1e-5


class _Fixed:
    """A route whose scores put the left half of the grid in cluster 1, the right in 0."""

    needs_colours = False

    def scores(self, features, colours=None):
        h, w, _ = features.shape
        s = torch.zeros(2, h, w)
        s[1, :, : w // 2] = 1
        s[0, :, w // 2 :] = 1
        return s


def test_evaluate_route_matches_and_scores():
    taps = [torch.zeros(3, 64 // s, 128 // s) + 1 for s in (4, 8, 16, 32)]
    label = torch.zeros(64, 128, dtype=torch.long)
    label[:, 64:] = 1  # class 0 left, class 1 right: the clusters are swapped
    items = [{"taps": taps, "native_label": label, "image": torch.zeros(64, 128, 3)}] * 2
    out = evaluate_route(_Fixed(), items, clusters=2, num_classes=2, ignore_index=255,
                         matching="hungarian")  # fmt: skip
    assert out["mapping"] == [1, 0]
    assert out["miou"] == pytest.approx(1.0) and out["pixel_accuracy"] == pytest.approx(1.0)
    assert out["images"] == 2 and out["seconds_per_image"] > 0


class _Thirds:
    """Three vertical thirds in clusters 1, 2, 0: a 3-cycle (not its own inverse)."""

    needs_colours = False

    def scores(self, features, colours=None):
        h, w, _ = features.shape
        s = torch.zeros(3, h, w)
        for third, cluster in enumerate((1, 2, 0)):
            s[cluster, :, third * w // 3 : (third + 1) * w // 3] = 1
        return s


def test_a_three_cycle_mapping_and_void_pixels():
    taps = [torch.zeros(3, 96 // s, 96 // s) + 1 for s in (4, 8, 16, 32)]
    label = torch.zeros(96, 96, dtype=torch.long)
    label[:, 32:64], label[:, 64:] = 1, 2  # classes 0, 1, 2 left to right
    label[:8, :4] = 255  # void inside the first third ...
    label[:8, 30:40] = 255  # ... and across a cluster border: never scored
    items = [{"taps": taps, "native_label": label, "image": torch.zeros(96, 96, 3)}]
    out = evaluate_route(_Thirds(), items, clusters=3, num_classes=3, ignore_index=255,
                         matching="hungarian")  # fmt: skip
    assert out["mapping"] == [2, 0, 1]  # cluster c -> class: the inverse of (1, 2, 0)
    assert out["miou"] == pytest.approx(1.0) and out["iou"] == pytest.approx([1.0, 1.0, 1.0])
    label[:8, :4] = 1  # the same pixels labelled with a wrong class: now they count
    out = evaluate_route(_Thirds(), items, clusters=3, num_classes=3, ignore_index=255,
                         matching="hungarian")  # fmt: skip
    assert out["iou"][0] < 1.0 and out["iou"][1] < 1.0


@pytest.mark.parametrize("name", ["cheeger.unsupervised.evaluate", "cheeger.unsupervised.kernel",
                                  "cheeger.unsupervised.kmeans", "cheeger.unsupervised.matching",
                                  "cheeger.unsupervised.neuralef", "cheeger.unsupervised.nodes"])
def test_docstring_examples(name):
    torch.manual_seed(0)
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
