"""The seven handcrafted features: shape, standardisation, each dimension's meaning, bad input."""

from __future__ import annotations

import pytest
import torch

from cheeger.demos.features import FEATURE_NAMES, FEATURE_WEIGHTS, PixelFeatures, pixel_features


def test_shape_standardised_and_weighted():
    torch.manual_seed(0)
    f = pixel_features(torch.rand(3, 40, 60), (10, 15))  # (7, 10, 15)
    assert f.shape == (len(FEATURE_NAMES), 10, 15)
    flat = f.reshape(7, -1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(7), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.std(1), torch.tensor(FEATURE_WEIGHTS), atol=1e-5, rtol=0)


def test_colour_texture_gradient_position_mean_what_they_say():
    image = torch.zeros(3, 64, 64)
    image[0, :, :32] = 1.0  # red left half
    torch.manual_seed(0)
    image[:, 32:, 32:] = torch.rand(3, 32, 32)  # noisy bottom-right quarter
    f = pixel_features(image, (16, 16))
    red, texture, gradient, y, x = f[0], f[3], f[4], f[5], f[6]
    assert red[:, :6].min() > red[:, 10:].max()  # red where it is red
    assert texture[12:, 12:].mean() > texture[:4, :4].mean() + 1  # texture where noisy
    assert gradient[:8, 7:9].mean() > gradient[:8, :4].mean() + 1  # an edge at the red border
    assert (y[1:] > y[:-1]).all() and (x[:, 1:] > x[:, :-1]).all()  # position increases


def test_flat_image_gives_zeros_not_nan():
    f = pixel_features(torch.full((3, 8, 8), 0.5), (4, 4))
    assert torch.isfinite(f).all()
    torch.testing.assert_close(f[:5], torch.zeros(5, 4, 4))  # no appearance information


def test_module_is_the_function():
    image = torch.rand(3, 20, 30)
    torch.testing.assert_close(PixelFeatures((5, 6))(image), pixel_features(image, (5, 6)))


@pytest.mark.parametrize(("image", "size", "match"), [
    (torch.rand(4, 8, 8), (4, 4), r"\(3, H, W\)"),
    (torch.randint(0, 255, (3, 8, 8)), (4, 4), "float"),
    (torch.rand(3, 8, 8), (9, 4), "fit"),
    (torch.rand(3, 8, 8), (1, 1), ">= 2 pixels"),
])  # fmt: skip
def test_bad_input_is_named(image, size, match):
    with pytest.raises(ValueError, match=match):
        pixel_features(image, size)
