from __future__ import annotations

import time

import numpy as np
import pytest

from cheeger.config import SyntheticConfig
from cheeger.data.prepared import write_prepared
from cheeger.data.synthetic import (
    SYNTHETIC_CLASSES,
    SYNTHETIC_IGNORE_INDEX,
    synthetic_scene,
    synthetic_source,
)

DEFAULT = SyntheticConfig()  # the params.yaml default: 96 / 24 / 24 at 128 x 160


@pytest.fixture(scope="module")
def default_set():
    """The default train and val splits, rendered once, with the time it took."""
    start = time.perf_counter()
    data = {
        split: [synthetic_scene(DEFAULT.seed, split, i, DEFAULT.size) for i in range(n)]
        for split, n in DEFAULT.splits.items()
    }
    elapsed = time.perf_counter() - start
    stacked = {s: tuple(np.stack(a) for a in zip(*pairs, strict=True)) for s, pairs in data.items()}
    return stacked, elapsed


def test_default_set_renders_in_seconds_with_valid_labels(default_set):
    data, elapsed = default_set
    assert elapsed < 30.0, f"default synthetic set took {elapsed:.1f} s"
    images, labels = data["train"]
    assert images.shape == (96, 128, 160, 3) and images.dtype == np.uint8
    assert labels.shape == (96, 128, 160) and labels.dtype == np.uint8
    allowed = set(range(len(SYNTHETIC_CLASSES))) | {SYNTHETIC_IGNORE_INDEX}
    assert set(np.unique(labels).tolist()) <= allowed
    present = np.bincount(labels.ravel(), minlength=256)
    assert np.all(present[: len(SYNTHETIC_CLASSES)] > 0), "every class occurs in train"
    assert 0 < present[SYNTHETIC_IGNORE_INDEX] < 0.05 * labels.size  # some ignored hood pixels


def test_same_seed_is_byte_identical_and_scenes_are_independent():
    a = synthetic_scene(7, "train", 3, (64, 80))
    b = synthetic_scene(7, "train", 3, (64, 80))
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert synthetic_scene(8, "train", 3, (64, 80))[0].tobytes() != a[0].tobytes()
    assert synthetic_scene(7, "val", 3, (64, 80))[0].tobytes() != a[0].tobytes()
    assert synthetic_scene(7, "train", 4, (64, 80))[0].tobytes() != a[0].tobytes()
    few = synthetic_source(7, {"train": 5}, (64, 80), limit=2)
    assert len(few.splits["train"]) == 2  # limit keeps the first scenes, unchanged
    second = synthetic_scene(7, "train", 1, (64, 80))[0]
    assert few.splits["train"][1]().image.tobytes() == second.tobytes()


def test_prepared_output_is_byte_identical_for_the_same_seed(tmp_path):
    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip

    source = synthetic_source(1, {"train": 3, "val": 2}, (48, 64))
    write_prepared(source, tmp_path / "a", (32, 40))
    write_prepared(synthetic_source(1, {"train": 3, "val": 2}, (48, 64)), tmp_path / "b", (32, 40))
    write_prepared(synthetic_source(2, {"train": 3, "val": 2}, (48, 64)), tmp_path / "c", (32, 40))
    first, second = files(tmp_path / "a"), files(tmp_path / "b")
    assert "train/native/00002.png" in first and first == second
    assert files(tmp_path / "c")["train/images.npy"] != first["train/images.npy"]


def _histogram_classifier(codes_train, y_train, codes_test, bins):
    """Bayes-optimal per-bin classifier (majority class of each bin), fitted on train."""
    counts = np.zeros((bins, len(SYNTHETIC_CLASSES)), dtype=np.int64)
    np.add.at(counts, (codes_train, y_train), 1)
    return counts.argmax(1)[codes_test]


def test_task_is_not_solvable_pixel_by_pixel_but_context_helps(default_set):
    data, _ = default_set
    (xi, yi), (ti, tl) = data["train"], data["val"]
    fit, test = yi != SYNTHETIC_IGNORE_INDEX, tl != SYNTHETIC_IGNORE_INDEX
    x_fit, y_fit = xi[fit].astype(np.float64), yi[fit]
    x_test, y_test = ti[test].astype(np.float64), tl[test]
    # 1) nearest per-class mean colour
    centroids = np.stack([x_fit[y_fit == c].mean(0) for c in range(len(SYNTHETIC_CLASSES))])
    nearest = ((x_test[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    centroid_acc = (nearest == y_test).mean()
    # 2) the best any colour-only rule can do at 16 levels per channel (train-fitted lookup table)
    q_fit, q_test = (x_fit // 16).astype(int), (x_test // 16).astype(int)
    colour_fit = q_fit @ np.array([256, 16, 1])
    colour_test = q_test @ np.array([256, 16, 1])
    lut_acc = (_histogram_classifier(colour_fit, y_fit, colour_test, 4096) == y_test).mean()
    # 3) the same table given also the image row (8 bands): position is informative
    rows = np.broadcast_to(np.arange(128)[None, :, None], yi.shape)
    band_fit, band_test = rows[fit] // 16, rows[: len(tl)][test] // 16
    ctx_pred = _histogram_classifier(colour_fit * 8 + band_fit, y_fit, colour_test * 8 + band_test,
                                     4096 * 8)  # fmt: skip
    ctx_acc = (ctx_pred == y_test).mean()
    assert centroid_acc < 0.45, centroid_acc
    assert lut_acc < 0.6, lut_acc
    assert ctx_acc > lut_acc + 0.1, (lut_acc, ctx_acc)


def test_tiny_size_is_rejected():
    with pytest.raises(ValueError, match=r"\(H, W\) with both >= 16"):
        synthetic_scene(0, "train", 0, (8, 80))
