from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cheeger.data.io import resize_label
from cheeger.data.transforms import RandomScaleCropFlip, nearest_resize, random_scale_crop_flip


def _pair(h=12, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 5, (h, w), generator=g)
    image = torch.stack([label.double(), -label.double(), torch.rand(h, w, generator=g).double()])
    return image, label  # channel 0 equals the label: alignment is checkable


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@settings(max_examples=50, deadline=None)
@given(h=st.integers(1, 10), w=st.integers(1, 10), oh=st.integers(1, 25), ow=st.integers(1, 25))
def test_nearest_resize_matches_the_numpy_preparation_resize(h, w, oh, ow):
    label = np.arange(h * w, dtype=np.uint8).reshape(h, w)
    expected = resize_label(label, (oh, ow))
    out = nearest_resize(torch.from_numpy(label.astype(np.int64)), (oh, ow))
    np.testing.assert_array_equal(out.numpy(), expected)


def test_unit_scale_keeps_image_and_label_aligned_through_crop_and_flip():
    image, label = _pair()
    for seed in range(20):
        out_image, out_label = random_scale_crop_flip(
            image, label, scale=(1.0, 1.0), crop=(7, 9), hflip=0.5, generator=_gen(seed)
        )
        assert out_image.shape == (3, 7, 9) and out_label.shape == (7, 9)
        torch.testing.assert_close(out_image[0], out_label.double(), rtol=0, atol=0)


def test_flip_probability_one_flips_and_zero_does_not():
    image, label = _pair()
    kept = random_scale_crop_flip(image, label, scale=(1, 1), hflip=0.0, generator=_gen(3))
    flipped = random_scale_crop_flip(image, label, scale=(1, 1), hflip=1.0, generator=_gen(3))
    torch.testing.assert_close(kept[0], image)
    torch.testing.assert_close(flipped[0], image.flip(-1))
    assert torch.equal(flipped[1], label.flip(-1))


def test_small_scale_pads_label_with_ignore_and_image_with_zero():
    image, label = _pair(h=10, w=10)
    out_image, out_label = random_scale_crop_flip(
        image + 5, label, scale=(0.5, 0.5), crop=(10, 10), hflip=0.0, ignore_index=255,
        generator=_gen(0),
    )  # fmt: skip
    assert torch.all(out_label[5:, :] == 255) and torch.all(out_label[:, 5:] == 255)
    assert torch.all(out_label[:5, :5] != 255)
    assert torch.all(out_image[:, 5:, :] == 0) and torch.all(out_image[:, :5, :5] > 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), low=st.floats(0.3, 1.0), span=st.floats(0.0, 1.5))
def test_label_values_are_copied_or_padding(seed, low, span):
    image, label = _pair(seed=seed % 7)
    out_image, out_label = random_scale_crop_flip(
        image, label, scale=(low, low + span), crop=(8, 8), generator=_gen(seed)
    )
    assert out_image.shape == (3, 8, 8)
    assert set(out_label.unique().tolist()) <= set(label.unique().tolist()) | {255}


def test_same_generator_seed_reproduces_and_module_matches_function():
    image, label = _pair()
    aug = RandomScaleCropFlip(scale=(0.6, 1.7), crop=(9, 9), hflip=0.5)
    first = aug(image, label, generator=_gen(11))
    again = random_scale_crop_flip(
        image, label, scale=(0.6, 1.7), crop=(9, 9), hflip=0.5, generator=_gen(11)
    )
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    draws = {tuple(aug(image, label, generator=_gen(s))[1].flatten().tolist()) for s in range(8)}
    assert len(draws) > 4  # different seeds give different crops


def test_bad_inputs_raise():
    image, label = _pair()
    with pytest.raises(ValueError, match="same size"):
        random_scale_crop_flip(image, label[:-1])
    with pytest.raises(ValueError, match="0 < low <= high"):
        random_scale_crop_flip(image, label, scale=(1.5, 1.0))
