from __future__ import annotations

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label
from scipy import ndimage

from cheeger.config import DataConfig
from cheeger.data.cityscapes import (
    CITYSCAPES_CLASSES,
    TRAIN_ID_LUT,
    cityscapes_pairs,
    cityscapes_root,
    cityscapes_source,
    map_label_ids,
)
from cheeger.data.errors import DataError, DataNotFoundError, LabelValueError
from cheeger.data.io import read_label
from cheeger.data.prepare import prepare
from cheeger.data.prepared import native_label_path, split_array_path, write_prepared

# The 19 evaluation classes in trainId order (Cordts et al. 2016): an independent oracle.
OFFICIAL_19 = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
]  # fmt: skip
SAMPLE = "gtFine/val/frankfurt/frankfurt_000000_000294"


def test_class_names_are_the_19_official_train_ids():
    assert list(CITYSCAPES_CLASSES) == OFFICIAL_19


def _interior(label_ids: np.ndarray, radius: int = 2) -> np.ndarray:
    """Pixels whose (2r+1)^2 neighbourhood holds a single labelId."""
    size = 2 * radius + 1
    high = ndimage.maximum_filter(label_ids, size, mode="nearest")
    return high == ndimage.minimum_filter(label_ids, size, mode="nearest")


def test_mapping_agrees_with_the_shipped_label_train_ids(shared_data):
    # The two shipped files were shrunk to 256x128 separately, so they disagree on 77 pixels
    # (0.23%), all within 2 pixels of a label boundary. Away from boundaries the mapping must be
    # exact, and for every labelId the trainId it is shipped with must be ours.
    root = shared_data / "cityscapes-sample"
    label_ids = read_label(root / f"{SAMPLE}_gtFine_labelIds.png")
    shipped = read_label(root / f"{SAMPLE}_gtFine_labelTrainIds.png")
    mapped = map_label_ids(label_ids)
    interior = _interior(label_ids)
    assert interior.mean() > 0.6
    np.testing.assert_array_equal(mapped[interior], shipped[interior])
    assert (mapped != shipped).mean() < 0.005
    for label_id in np.unique(label_ids):
        values, counts = np.unique(shipped[label_ids == label_id], return_counts=True)
        assert values[counts.argmax()] == TRAIN_ID_LUT[label_id], label_id
    assert len(np.unique(label_ids)) >= 10 and 255 in shipped  # a real mix, ignore included


def test_prepared_real_sample_keeps_exact_train_ids_at_native_size(shared_data, tmp_path):
    root = shared_data / "cityscapes-sample"
    manifest = write_prepared(cityscapes_source(root, ["val"]), tmp_path / "p", (64, 128))
    assert manifest["num_classes"] == 19 and manifest["ignore_index"] == 255
    assert manifest["splits"]["val"]["ids"] == ["frankfurt_000000_000294"]
    assert manifest["splits"]["val"]["native_sizes"] == [[128, 256]]
    assert sorted(manifest["source_sha256"]) == [
        f"{SAMPLE}_gtFine_labelIds.png",
        "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png",
    ]
    label_ids = read_label(root / f"{SAMPLE}_gtFine_labelIds.png")
    shipped = read_label(root / f"{SAMPLE}_gtFine_labelTrainIds.png")
    native = read_label(native_label_path(tmp_path / "p", "val", 0))
    interior = _interior(label_ids)
    np.testing.assert_array_equal(native[interior], shipped[interior])
    np.testing.assert_array_equal(native, TRAIN_ID_LUT[label_ids])
    labels = np.load(split_array_path(tmp_path / "p", "val", "labels"))
    np.testing.assert_array_equal(labels[0], native[1::2, 1::2])  # nearest at pixel centres


def test_generated_tree_with_several_cities_and_splits(cityscapes_tree, tmp_path):
    layout = {"train": {"aachen": 2, "bremen": 3}, "val": {"lindau": 2, "munster": 1}}
    root = cityscapes_tree(layout)
    source = cityscapes_source(root, ["train", "val"])
    assert [len(source.splits[s]) for s in ("train", "val")] == [5, 3]
    pairs = cityscapes_pairs(root, "train")
    assert [p[0].parent.name for p in pairs] == ["aachen"] * 2 + ["bremen"] * 3
    manifest = write_prepared(source, tmp_path / "p", (8, 12))
    assert manifest["splits"]["val"]["ids"] == [
        "lindau_000000_000019", "lindau_000001_000020", "munster_000000_000019",
    ]  # fmt: skip
    train_id = {i: 255 if lab.trainId in (255, -1) else lab.trainId for i, lab in id2label.items()}
    oracle = np.vectorize(train_id.__getitem__)  # a per-pixel dict lookup: independent path
    for i, (_, label_path) in enumerate(pairs):
        expected = oracle(read_label(label_path)).astype(np.uint8)
        np.testing.assert_array_equal(read_label(native_label_path(tmp_path / "p", "train", i)),
                                      expected)  # fmt: skip


def test_lookup_table_covers_exactly_the_labelids():
    assert np.all(TRAIN_ID_LUT[:34] >= 0) and np.all(TRAIN_ID_LUT[34:] == -1)
    with pytest.raises(LabelValueError, match=r"frame.png: values \[34, 250\] are not Cityscapes"):
        map_label_ids(np.array([[7, 34], [250, 0]], dtype=np.uint8), "frame.png")


def test_missing_root_explains_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    with pytest.raises(DataNotFoundError) as info:
        cityscapes_root(None, "profiles.cityscapes.root")
    message = str(info.value)
    for part in ("https://www.cityscapes-dataset.com", "leftImg8bit_trainvaltest.zip",
                 "gtFine_trainvaltest.zip", "profiles.cityscapes.root", "CITYSCAPES_DATASET"):
        assert part in message  # fmt: skip
    with pytest.raises(DataNotFoundError, match=r"nowhere \(from profiles.x.root\) not found"):
        cityscapes_root(tmp_path / "nowhere", "profiles.x.root")
    (tmp_path / "half" / "leftImg8bit").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match=r"has no gtFine/ folder.*gtFine_trainvaltest"):
        cityscapes_root(tmp_path / "half")


def test_environment_variable_is_the_fallback_root(monkeypatch, cityscapes_tree, tmp_path):
    root = cityscapes_tree({"val": {"lindau": 1}})
    monkeypatch.setenv("MY_CITYSCAPES", str(root))
    params = {
        "profile": "cs",
        "profiles": {"cs": {"dataset": "cityscapes", "root": None, "resolution": [8, 12],
                            "splits": ["val"]}},
        "data": {"cityscapes": {"root_env": "MY_CITYSCAPES"}},
    }  # fmt: skip
    manifest = prepare(DataConfig.from_params(params), tmp_path / "p")
    assert manifest["source"]["root"] == str(root) and manifest["profile"] == "cs"


def test_missing_split_and_unpaired_files(cityscapes_tree):
    root = cityscapes_tree({"val": {"lindau": 2}})
    with pytest.raises(DataNotFoundError, match=r"leftImg8bit/train not found \(split 'train'\)"):
        cityscapes_source(root, ["train"])
    label = sorted((root / "gtFine" / "val" / "lindau").iterdir())[0]
    label.unlink()
    with pytest.raises(DataNotFoundError, match=r"_leftImg8bit.png: image without its label"):
        cityscapes_source(root, ["val"])
    label.write_bytes(b"")
    image = sorted((root / "leftImg8bit" / "val" / "lindau").iterdir())[1]
    image.unlink()
    with pytest.raises(DataNotFoundError, match=r"_gtFine_labelIds.png: label without its image"):
        cityscapes_source(root, ["val"])


def test_bad_files_are_named(cityscapes_tree, tmp_path, write_png):
    root = cityscapes_tree({"val": {"lindau": 2}})
    labels = sorted((root / "gtFine" / "val" / "lindau").iterdir())
    write_png(labels[1], np.full((16, 24), 40, dtype=np.uint8))
    with pytest.raises(LabelValueError, match=rf"{labels[1].name}: values \[40\]"):
        write_prepared(cityscapes_source(root, ["val"]), tmp_path / "p", (8, 12))
    write_png(labels[1], np.zeros((16, 20), dtype=np.uint8))
    with pytest.raises(DataError, match=rf"{labels[1].name}: label size 20x16 .* differs"):
        write_prepared(cityscapes_source(root, ["val"]), tmp_path / "p", (8, 12))
    labels[1].write_bytes(labels[0].read_bytes()[:60])
    with pytest.raises(DataError, match=rf"{labels[1].name}: cannot decode image"):
        write_prepared(cityscapes_source(root, ["val"]), tmp_path / "p", (8, 12))
    assert not (tmp_path / "p").exists()
