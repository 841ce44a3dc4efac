from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cheeger.config import DataConfig
from cheeger.data.errors import DataError
from cheeger.data.prepare import build_source, default_cache_dir, prepare
from cheeger.data.prepared import load_manifest
from cheeger.data.synthetic import synthetic_scene


def _config(**profile):
    block = {"dataset": "synthetic", "root": None, "resolution": [32, 40], **profile}
    params = {"profile": "toy", "profiles": {"toy": block},
              "data": {"synthetic": {"seed": 9, "size": [48, 64],
                                     "splits": {"train": 4, "val": 3, "test": 2}}}}  # fmt: skip
    return DataConfig.from_params(params)


def test_synthetic_source_follows_profile_splits_limit_and_seed():
    source = build_source(_config(splits=["val", "train"], limit=2))
    assert list(source.splits) == ["val", "train"]
    assert [len(v) for v in source.splits.values()] == [2, 2]
    sample = source.splits["val"][1]()
    expected_image, expected_label = synthetic_scene(9, "val", 1, (48, 64))
    np.testing.assert_array_equal(sample.image, expected_image)
    np.testing.assert_array_equal(sample.label, expected_label)
    assert source.info["seed"] == 9 and source.info["size"] == [48, 64]


def test_prepare_records_profile_and_limit(tmp_path):
    manifest = prepare(_config(limit=1), tmp_path / "out")
    assert manifest == load_manifest(tmp_path / "out")
    assert manifest["profile"] == "toy" and manifest["limit"] == 1
    sizes = {s: e["size"] for s, e in manifest["splits"].items()}
    assert sizes == {"train": 1, "val": 1, "test": 1}


def test_unknown_dataset_name_is_rejected_even_past_config_checks():
    config = dataclasses.replace(_config(), dataset="kitti")
    with pytest.raises(DataError, match=r"profiles.toy.dataset: unknown dataset 'kitti'; expected"):
        build_source(config)


def test_default_cache_dir_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "cheeger"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir().parts[-2:] == (".cache", "cheeger")
