from __future__ import annotations

import json

import numpy as np
import pytest

from cheeger.data.errors import DataError, LabelValueError, PreparedFormatError
from cheeger.data.io import read_label, resize_image, resize_label
from cheeger.data.prepared import (
    MANIFEST_NAME,
    Sample,
    Source,
    load_manifest,
    native_label_path,
    split_array_path,
    write_prepared,
)


def _samples(n, size=(6, 10), seed=0, prefix="s"):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        label = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=size)
        out.append(Sample(f"{prefix}{i}", image, label, {f"src/{prefix}{i}.png": f"{i:064x}"}))
    return out


def _source(splits, classes=("a", "b", "c")):
    loaders = {name: [lambda s=s: s for s in samples] for name, samples in splits.items()}
    return Source("toy", classes, 255, loaders, {"note": "test"})


def test_round_trip_arrays_native_labels_and_manifest(tmp_path):
    train, val = _samples(3), _samples(2, size=(9, 4), seed=1, prefix="v")
    out = tmp_path / "prep"
    manifest = write_prepared(_source({"train": train, "val": val}), out, (4, 5), {"profile": "p"})
    assert manifest == load_manifest(out) == json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["num_classes"] == 3 and manifest["ignore_index"] == 255
    assert manifest["profile"] == "p" and manifest["source"] == {"note": "test"}
    assert manifest["splits"]["val"]["native_sizes"] == [[9, 4], [9, 4]]
    assert manifest["source_sha256"]["src/v1.png"] == f"{1:064x}"
    for name, samples in (("train", train), ("val", val)):
        images = np.load(split_array_path(out, name, "images"))
        labels = np.load(split_array_path(out, name, "labels"))
        assert images.shape == (len(samples), 4, 5, 3) and labels.shape == (len(samples), 4, 5)
        for i, s in enumerate(samples):
            np.testing.assert_array_equal(images[i], resize_image(s.image, (4, 5)))
            np.testing.assert_array_equal(labels[i], resize_label(s.label, (4, 5)))
            np.testing.assert_array_equal(read_label(native_label_path(out, name, i)), s.label)
        counts = np.bincount(labels.ravel(), minlength=256)
        assert manifest["splits"][name]["class_pixels"] == counts[:3].tolist()
        assert manifest["splits"][name]["ignore_pixels"] == counts[255]


def test_normalisation_is_train_mean_and_std_in_float64(tmp_path):
    train = _samples(4)
    manifest = write_prepared(_source({"val": _samples(1), "train": train}), tmp_path / "p", (4, 5))
    pixels = np.stack([resize_image(s.image, (4, 5)) for s in train]).reshape(-1, 3) / 255.0
    norm = manifest["normalization"]
    assert norm["split"] == "train"
    np.testing.assert_allclose(norm["mean"], pixels.mean(0), rtol=1e-12)
    np.testing.assert_allclose(norm["std"], pixels.std(0), rtol=1e-9)


def _failing_source(n_ok):
    samples = _samples(n_ok + 2)

    def boom():
        raise RuntimeError("interrupted midway")

    loaders = [lambda s=s: s for s in samples[:n_ok]] + [boom]
    return Source("toy", ("a", "b", "c"), 255, {"train": loaders}, {})


def test_interrupted_run_leaves_nothing_that_looks_finished(tmp_path):
    out = tmp_path / "prep"
    with pytest.raises(RuntimeError, match="interrupted midway"):
        write_prepared(_failing_source(2), out, (4, 5))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary build folder was removed as well
    with pytest.raises(PreparedFormatError, match="not a finished preparation"):
        load_manifest(out)


def test_interrupted_rerun_keeps_the_previous_finished_preparation(tmp_path):
    out = tmp_path / "prep"
    first = write_prepared(_source({"train": _samples(2)}), out, (4, 5))
    before = np.load(split_array_path(out, "train", "images"))
    with pytest.raises(RuntimeError):
        write_prepared(_failing_source(1), out, (4, 5))
    assert load_manifest(out) == first
    np.testing.assert_array_equal(np.load(split_array_path(out, "train", "images")), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prep"]


def test_killed_run_leftovers_are_not_read_and_get_replaced(tmp_path):
    out = tmp_path / "prep"
    (out / "train").mkdir(parents=True)  # what a hard kill mid-copy could leave: no manifest
    np.save(out / "train" / "images.npy", np.zeros((1, 4, 5, 3), np.uint8))
    with pytest.raises(PreparedFormatError, match=r"manifest\.json: not found"):
        load_manifest(out)
    write_prepared(_source({"train": _samples(2)}), out, (4, 5))
    assert load_manifest(out)["splits"]["train"]["size"] == 2


def test_label_outside_class_set_names_sample_and_values(tmp_path):
    bad = _samples(1)[0]
    label = bad.label.copy()
    label[0, :2] = [7, 9]
    source = _source({"train": [Sample("frame7", bad.image, label)]})
    with pytest.raises(LabelValueError, match=r"frame7: label values \[7, 9\] outside"):
        write_prepared(source, tmp_path / "p", (4, 5))
    assert not (tmp_path / "p").exists()


def test_malformed_samples_are_rejected(tmp_path):
    good = _samples(1)[0]
    short = Sample("short", good.image, good.label[:-1])
    with pytest.raises(DataError, match="short: label must be uint8 of the image size"):
        write_prepared(_source({"train": [short]}), tmp_path / "p", (4, 5))
    with pytest.raises(DataError, match="duplicate image id 's0'"):
        write_prepared(_source({"train": [good, good]}), tmp_path / "p", (4, 5))
    grey = Sample("grey", good.image[..., 0], good.label)
    with pytest.raises(DataError, match=r"grey: image must be \(H, W, 3\) uint8"):
        write_prepared(_source({"train": [grey]}), tmp_path / "p", (4, 5))


def test_target_that_is_a_file_is_not_replaced(tmp_path):
    (tmp_path / "p").write_text("precious")
    with pytest.raises(DataError, match="not a folder"):
        write_prepared(_source({"train": _samples(1)}), tmp_path / "p", (4, 5))
    assert (tmp_path / "p").read_text() == "precious"


def test_load_manifest_rejects_other_versions_and_inconsistent_arrays(tmp_path):
    out = tmp_path / "p"
    write_prepared(_source({"train": _samples(2)}), out, (4, 5))
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    (out / MANIFEST_NAME).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(PreparedFormatError, match=r"version 1, got .*99"):
        load_manifest(out)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    np.save(split_array_path(out, "train", "labels"), np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(PreparedFormatError, match=r"labels.npy: expected shape \(2, 4, 5\)"):
        load_manifest(out)
