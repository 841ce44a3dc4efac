from __future__ import annotations

import shutil

import numpy as np
import pytest

from cheeger.config import DataConfig
from cheeger.data.camvid import (
    CAMVID_CLASSES,
    CHECKSUM_FILE,
    camvid_pairs,
    camvid_source,
    download_camvid,
    read_checksums,
)
from cheeger.data.errors import ChecksumError, DataError, DataNotFoundError, LabelValueError
from cheeger.data.io import file_sha256, read_label, read_rgb, resize_image
from cheeger.data.prepare import prepare
from cheeger.data.prepared import native_label_path, split_array_path, write_prepared


def test_checksum_table_matches_every_file_of_the_reference_copy(shared_data):
    table = read_checksums()
    root = shared_data / "camvid"
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert set(table) == on_disk - {"README.md"}
    assert len(table) == 2 * (367 + 101 + 233) + 3
    mismatched = [rel for rel, digest in table.items() if file_sha256(root / rel) != digest]
    assert mismatched == []


def test_real_val_frames_prepare_with_void_mapped_to_255(shared_data, tmp_path):
    root = shared_data / "camvid"
    manifest = write_prepared(camvid_source(root, ["val"], limit=2), tmp_path / "p", (90, 120))
    assert manifest["class_names"] == list(CAMVID_CLASSES) and manifest["num_classes"] == 11
    assert manifest["ignore_index"] == 255
    first, _ = camvid_pairs(root, "val")[0]
    assert manifest["splits"]["val"]["ids"][0] == first.stem
    assert manifest["splits"]["val"]["native_sizes"] == [[360, 480], [360, 480]]
    table = read_checksums()
    assert manifest["source_sha256"] == {rel: table[rel] for rel in manifest["source_sha256"]}
    assert len(manifest["source_sha256"]) == 4
    raw = read_label(root / "valannot" / first.name)
    assert 11 in raw  # the frame has void pixels, so the mapping is exercised
    native = read_label(native_label_path(tmp_path / "p", "val", 0))
    np.testing.assert_array_equal(native, np.where(raw == 11, 255, raw))
    images = np.load(split_array_path(tmp_path / "p", "val", "images"))
    np.testing.assert_array_equal(images[0], resize_image(read_rgb(first), (90, 120)))
    labels = np.load(split_array_path(tmp_path / "p", "val", "labels"))
    assert set(np.unique(labels).tolist()) <= set(range(11)) | {255}
    assert 11 not in labels


def test_missing_root_and_missing_split_folders(tmp_path, camvid_copy):
    with pytest.raises(DataNotFoundError, match=r"CamVid root .*nowhere not found: point profiles"):
        camvid_source(tmp_path / "nowhere")
    root = camvid_copy(["val"])
    with pytest.raises(DataNotFoundError, match=r"folder .*train not found \(split 'train'\)"):
        camvid_source(root, ["val", "train"])
    shutil.rmtree(root / "valannot")
    with pytest.raises(DataNotFoundError, match=r"valannot not found"):
        camvid_source(root, ["val"])


def test_image_without_label_and_label_without_image(camvid_copy):
    root = camvid_copy(["val"])
    lonely = sorted((root / "valannot").iterdir())[0]
    lonely.unlink()
    with pytest.raises(DataNotFoundError, match=rf"val/{lonely.name}: image without its label"):
        camvid_source(root, ["val"])
    root = camvid_copy(["val"], name="other")
    sorted((root / "val").iterdir())[1].unlink()
    with pytest.raises(DataNotFoundError, match="label without its image"):
        camvid_source(root, ["val"])


def _prepare_val(root, tmp_path):
    return write_prepared(camvid_source(root, ["val"]), tmp_path / "out", (45, 60))


def test_mismatched_sizes_name_both_files(camvid_copy, tmp_path, write_png):
    root = camvid_copy(["val"])
    label = sorted((root / "valannot").iterdir())[1]
    write_png(label, read_label(label)[:300])
    with pytest.raises(DataError, match=rf"{label.name}: label size 480x300 .* differs from"):
        _prepare_val(root, tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("which", ["val", "valannot"])
def test_truncated_png_is_reported_with_its_name(camvid_copy, tmp_path, which):
    root = camvid_copy(["val"])
    path = sorted((root / which).iterdir())[1]
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match=rf"{which}/{path.name}: cannot decode image"):
        _prepare_val(root, tmp_path)


def test_label_values_above_void_are_named(camvid_copy, tmp_path, write_png):
    root = camvid_copy(["val"])
    path = sorted((root / "valannot").iterdir())[0]
    label = read_label(path)
    label[0, 0], label[5, 5] = 12, 200
    write_png(path, label)
    with pytest.raises(LabelValueError, match=rf"{path.name}: label values \[12, 200\] outside"):
        _prepare_val(root, tmp_path)


def _serve_copy(www, shared_data, n=2):
    for folder in ("val", "valannot"):
        (www / "CamVid" / folder).mkdir(parents=True)
        for file in sorted((shared_data / "camvid" / "val").iterdir())[:n]:
            shutil.copyfile(shared_data / "camvid" / folder / file.name,
                            www / "CamVid" / folder / file.name)  # fmt: skip


def test_download_from_loopback_server_verifies_and_caches(http_root, shared_data, tmp_path):
    url, www, requests = http_root
    _serve_copy(www, shared_data)
    cache = tmp_path / "cache"
    assert download_camvid(f"{url}/CamVid/", cache, ["val"], limit=2) == cache
    table = read_checksums()
    fetched = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    assert len(fetched) == 4 and all(file_sha256(cache / rel) == table[rel] for rel in fetched)
    assert len(requests) == 4
    download_camvid(f"{url}/CamVid", cache, ["val"], limit=2)
    assert len(requests) == 4  # verified cache: nothing fetched again
    assert len(camvid_source(cache, ["val"]).splits["val"]) == 2


def test_prepare_without_root_downloads_into_the_configured_cache(http_root, shared_data, tmp_path):
    url, www, _ = http_root
    _serve_copy(www, shared_data)
    params = {
        "profile": "camvid",
        "profiles": {"camvid": {"dataset": "camvid", "root": None, "resolution": [36, 48],
                                "splits": ["val"], "limit": 2}},
        "data": {"camvid": {"url": f"{url}/CamVid", "cache_dir": str(tmp_path / "cache")}},
    }  # fmt: skip
    manifest = prepare(DataConfig.from_params(params), tmp_path / "prepared")
    assert manifest["source"]["url"] == f"{url}/CamVid"
    assert manifest["splits"]["val"]["size"] == 2 and manifest["limit"] == 2


def test_checksum_mismatch_is_a_clear_error_and_keeps_nothing(http_root, shared_data, tmp_path):
    url, www, _ = http_root
    _serve_copy(www, shared_data)
    victim = sorted((www / "CamVid" / "valannot").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match=rf"valannot/{victim.name}: sha256 [0-9a-f]{{64}} does "
                       "not match the expected"):  # fmt: skip
        download_camvid(f"{url}/CamVid", cache, ["val"], limit=2, workers=1)
    assert not (cache / "valannot" / victim.name).exists()
    assert not [p for p in cache.rglob("*.part")]


def test_unreachable_file_names_the_url(http_root, tmp_path):
    url, _, _ = http_root  # serves an empty folder: every request is a 404
    with pytest.raises(DataError, match=rf"{url}/CamVid/val/.*\.png: download failed .*404"):
        download_camvid(f"{url}/CamVid", tmp_path / "cache", ["val"], limit=1)


def test_checksum_table_format_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.sha256"
    bad.write_text(CHECKSUM_FILE.read_text().splitlines()[0] + "\nnot-a-hash file.png\n")
    with pytest.raises(DataError, match=r"bad.sha256:2: expected '<sha256>  <path>'"):
        read_checksums(bad)
