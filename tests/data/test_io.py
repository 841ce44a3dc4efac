from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cheeger.data.errors import DataError, DataNotFoundError
from cheeger.data.io import (
    atomic_write_bytes,
    file_sha256,
    read_label,
    read_rgb,
    resize_image,
    resize_label,
    write_label_png,
)


def test_read_rgb_and_label_round_trip(tmp_path, write_png):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    label = rng.integers(0, 12, (5, 7), dtype=np.uint8)
    np.testing.assert_array_equal(read_rgb(write_png(tmp_path / "i.png", image)), image)
    np.testing.assert_array_equal(read_label(write_png(tmp_path / "l.png", label)), label)


def test_palette_label_keeps_indices_not_colours(tmp_path):
    label = np.array([[0, 3], [7, 3]], dtype=np.uint8)
    img = Image.fromarray(label).convert("P")
    img.putpalette([255, 0, 0] * 256)  # every index has the same colour
    img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_label(tmp_path / "p.png"), label)


def test_grey_image_is_read_as_rgb(tmp_path, write_png):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = read_rgb(write_png(tmp_path / "g.png", grey))
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out[..., 1], grey)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"nothere\.png: file not found"):
        read_rgb(tmp_path / "nothere.png")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "bad_crc"])
def test_damaged_png_error_names_the_file(tmp_path, write_png, damage):
    path = write_png(tmp_path / "x.png", np.full((40, 50, 3), 7, dtype=np.uint8))
    data = path.read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = b"this is not a png" * 5
    else:  # flip a byte inside the IDAT chunk's compressed data
        at = data.index(b"IDAT") + 8
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    path.write_bytes(data)
    with pytest.raises(DataError, match=r"x\.png: cannot decode image"):
        read_rgb(path)


def test_sixteen_bit_label_is_rejected(tmp_path):
    Image.fromarray(np.full((3, 3), 300, dtype=np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(DataError, match=r"deep\.png: expected a single-channel 8-bit label"):
        read_label(tmp_path / "deep.png")


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 12), w=st.integers(1, 12), oh=st.integers(1, 30), ow=st.integers(1, 30),
    seed=st.integers(0, 2**31),
)  # fmt: skip
def test_resize_label_only_copies_values(h, w, oh, ow, seed):
    label = np.random.default_rng(seed).choice(np.array([0, 4, 9, 255], np.uint8), size=(h, w))
    out = resize_label(label, (oh, ow))
    assert out.shape == (oh, ow) and out.dtype == np.uint8
    assert set(np.unique(out)) <= set(np.unique(label))
    # nearest at pixel centres: output pixel (i, j) reads source row floor((i + .5) h / oh)
    i, j = oh - 1, ow - 1
    src_i, src_j = min(int((i + 0.5) * h / oh), h - 1), min(int((j + 0.5) * w / ow), w - 1)
    assert out[i, j] == label[src_i, src_j]


def test_resize_label_integer_upsampling_replicates_blocks():
    label = np.array([[1, 2], [3, 255]], dtype=np.uint8)
    expected = np.kron(label, np.ones((2, 3), np.uint8))
    np.testing.assert_array_equal(resize_label(label, (4, 6)), expected)


def test_resize_image_is_bilinear_not_nearest():
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    image[:, 1] = 200
    out = resize_image(image, (2, 8))
    assert out.shape == (2, 8, 3)
    middle = out[0, 2:6, 0]
    assert np.all(np.diff(middle.astype(int)) > 0)  # a ramp: values between 0 and 200 exist
    assert set(np.unique(out)) - {0, 200}


def test_atomic_write_leaves_no_temp_and_normal_permissions(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["m.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_write_label_png_is_lossless_and_hash_is_sha256(tmp_path):
    import hashlib

    label = np.random.default_rng(1).integers(0, 256, (9, 11), dtype=np.uint8)
    write_label_png(tmp_path / "l.png", label)
    np.testing.assert_array_equal(read_label(tmp_path / "l.png"), label)
    expected = hashlib.sha256((tmp_path / "l.png").read_bytes()).hexdigest()
    assert file_sha256(tmp_path / "l.png") == expected
