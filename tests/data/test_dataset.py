from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cheeger.data.dataset import PreparedDataset, collate_items
from cheeger.data.errors import DataError, PreparedFormatError
from cheeger.data.io import read_label
from cheeger.data.prepared import native_label_path, split_array_path, write_prepared
from cheeger.data.synthetic import synthetic_source
from cheeger.data.transforms import RandomScaleCropFlip


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "embedded"
    source = synthetic_source(3, {"train": 6, "val": 3}, (48, 64))
    write_prepared(source, out, (32, 40))
    return out


def test_items_have_documented_shapes_and_types(prepared):
    ds = PreparedDataset(prepared, "val", native=True)
    item = ds[1]
    assert len(ds) == 3 and item["id"] == "val_00001" and item["index"] == 1
    assert item["image"].shape == (3, 32, 40) and item["image"].dtype == torch.float32
    assert item["label"].shape == (32, 40) and item["label"].dtype == torch.int64
    assert item["native_label"].shape == (48, 64) and item["native_label"].dtype == torch.int64
    native = read_label(native_label_path(prepared, "val", 1))
    np.testing.assert_array_equal(item["native_label"].numpy(), native)
    labels = np.load(split_array_path(prepared, "val", "labels"))
    np.testing.assert_array_equal(item["label"].numpy(), labels[1])


def test_train_images_are_normalised_to_zero_mean_unit_std(prepared):
    ds = PreparedDataset(prepared, "train")
    stacked = torch.stack([ds[i]["image"] for i in range(len(ds))]).double()  # (N, 3, H, W)
    torch.testing.assert_close(stacked.mean((0, 2, 3)), torch.zeros(3, dtype=torch.float64),
                               atol=1e-5, rtol=0)  # fmt: skip
    torch.testing.assert_close(stacked.std((0, 2, 3), correction=0),
                               torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)  # fmt: skip
    raw = np.load(split_array_path(prepared, "train", "images"))[2].astype(np.float64) / 255
    mean, std = ds.mean.double().view(3), ds.std.double().view(3)
    expected = (torch.from_numpy(raw).permute(2, 0, 1) - mean[:, None, None]) / std[:, None, None]
    torch.testing.assert_close(stacked[2], expected, atol=1e-6, rtol=0)


def test_augmentation_is_seeded_per_item_and_epoch(prepared):
    aug = RandomScaleCropFlip(scale=(0.5, 1.5), crop=(24, 24), hflip=0.5)
    ds = PreparedDataset(prepared, "train", augment=aug, seed=5)
    first = [ds[i]["label"] for i in (4, 0, 2)]
    again = PreparedDataset(prepared, "train", augment=aug, seed=5)
    assert all(torch.equal(a, again[i]["label"]) for a, i in zip(first, (4, 0, 2), strict=True))
    assert first[0].shape == (24, 24)
    ds.set_epoch(1)
    assert not all(torch.equal(a, ds[i]["label"]) for a, i in zip(first, (4, 0, 2), strict=True))
    other = PreparedDataset(prepared, "train", augment=aug, seed=6)
    assert not torch.equal(first[0], other[4]["label"])


def test_pickled_dataset_reopens_memory_maps_and_gives_same_items(prepared):
    ds = PreparedDataset(prepared, "train")
    _ = ds[0]  # opens the memory maps
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._arrays is None
    assert torch.equal(clone[3]["image"], ds[3]["image"])
    assert len(pickle.dumps(ds)) < 20_000  # no array copy travels to workers


def test_loader_with_collate_keeps_native_labels_as_list(prepared):
    ds = PreparedDataset(prepared, "val", native=True)
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate_items)))
    assert batch["image"].shape == (2, 3, 32, 40) and batch["label"].shape == (2, 32, 40)
    assert batch["id"] == ["val_00000", "val_00001"] and batch["index"].tolist() == [0, 1]
    assert [t.shape for t in batch["native_label"]] == [(48, 64), (48, 64)]


def test_errors_for_unknown_split_unprepared_root_and_bad_index(prepared, tmp_path):
    with pytest.raises(DataError, match=r"no split 'test'; prepared splits: \['train', 'val'\]"):
        PreparedDataset(prepared, "test")
    with pytest.raises(PreparedFormatError, match="not a finished preparation"):
        PreparedDataset(tmp_path, "train")
    with pytest.raises(IndexError, match="index 3 out of range"):
        PreparedDataset(prepared, "val")[3]
