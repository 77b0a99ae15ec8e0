"""Reading images and masks in the forms users have them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sansa_cli.errors import UserInputError
from sansa_cli.core.images import load_image, load_mask, reference_pair


def _exif_rotated(path, array, orientation=6):
    img = Image.fromarray(array)
    exif = img.getexif()
    exif[0x0112] = orientation  # 6: the camera was turned, display rotated 90 degrees
    img.save(path, exif=exif)
    return path


def test_exif_orientation_applies_to_image_and_mask_alike(tmp_path):
    array = np.zeros((20, 40, 3), np.uint8)
    array[:5, :10] = 255
    mask = (array[..., 0] > 0).astype(np.uint8) * 255
    img = load_image(_exif_rotated(tmp_path / "i.jpg", array))
    m = load_mask(_exif_rotated(tmp_path / "m.png", mask))
    assert img.size == (20, 40) and m.shape == (40, 20)
    assert np.array_equal(np.asarray(img)[..., 0] > 127, m)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_image_modes_become_rgb(tmp_path, mode):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 16, 3), np.uint8))
    if mode == "I;16":
        img = Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 257))
    else:
        img = base.convert(mode)
    path = tmp_path / f"x_{mode.replace(';', '')}.png"
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (16, 12)
    if mode == "I;16":  # 16-bit values are scaled, not clipped
        assert np.asarray(out).max() > 200


def test_mask_forms(tmp_path):
    ones = np.zeros((10, 10), np.uint8)
    ones[2:5, 2:5] = 1
    assert load_mask(ones).sum() == 9  # 0/1 label image
    palette = Image.fromarray(ones * 3, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0] * 128)
    palette.save(tmp_path / "p.png")
    assert load_mask(tmp_path / "p.png").sum() == 9
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 3] = ones * 255
    assert load_mask(Image.fromarray(rgba, "RGBA")).sum() == 9  # alpha marks the object
    soft = np.linspace(0, 1, 100).reshape(10, 10)
    assert load_mask(soft).sum() == 50  # a soft mask is cut at half its range
    wide = (ones.astype(np.uint16) * 60000)
    assert load_mask(wide).sum() == 9


def test_reference_pair_checks(tmp_path):
    img = Image.new("RGB", (10, 8))
    with pytest.raises(UserInputError, match="empty"):
        reference_pair(img, np.zeros((8, 10), bool))
    with pytest.raises(UserInputError, match="is 8x10 but image"):
        reference_pair(img, np.ones((10, 8), bool))
