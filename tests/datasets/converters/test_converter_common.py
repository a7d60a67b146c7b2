"""Shared converter helpers: mask binarisation, pairing, resizing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medseglatdiff.datasets.converters.common import (
    PairSource,
    binarize_mask,
    files_by_stem,
    load_pair,
    mask_from_pil,
    pair_files,
    read_mask,
    resized_size,
)
from medseglatdiff.errors import ImageReadError, MedsegError

HERE = Path("mask.png")


def test_binarize_rules() -> None:
    np.testing.assert_array_equal(binarize_mask(np.array([[0, 255], [255, 0]], np.uint8), HERE), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(binarize_mask(np.array([[0, 1], [1, 0]], np.uint8), HERE), [[0, 1], [1, 0]])
    noisy = np.zeros((10, 10), np.uint8)  # JPEG-like: mostly 0/255, a few stray values
    noisy[0, :8] = [0, 3, 126, 128, 250, 255, 1, 2]
    np.testing.assert_array_equal(binarize_mask(noisy, HERE)[0, :8], [0, 0, 0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(binarize_mask(np.array([[0, 1]], np.uint8), Path("m.jpg"), lossy=True), [[0, 0]])
    deep = np.zeros((10, 10), np.uint16)
    deep[0, :4] = [0, 65535, 40000, 30000]
    np.testing.assert_array_equal(binarize_mask(deep, HERE)[0, :4], [0, 1, 1, 0])
    assert binarize_mask(np.zeros((4, 4), np.uint8), HERE).sum() == 0, "an empty mask stays empty"


def test_photo_is_not_a_mask() -> None:
    photo = np.random.default_rng(0).integers(0, 256, size=(32, 32)).astype(np.uint8)
    with pytest.raises(MedsegError, match="mask.png: does not look like a mask"):
        binarize_mask(photo, HERE)


def test_colour_and_palette_masks() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[1:3, 1:4] = 255
    np.testing.assert_array_equal(mask_from_pil(Image.fromarray(rgb), HERE), (rgb[..., 0] > 0).astype(np.uint8))
    palette = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="L").convert("P")
    palette.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)  # index 1 is dark red: grey 38 after conversion
    np.testing.assert_array_equal(mask_from_pil(palette, HERE), [[0, 1], [1, 0]])


def test_read_mask_is_channel_first_and_resizes(tmp_path: Path) -> None:
    pixels = np.zeros((6, 8), np.uint8)  # (y, x): 6 high, 8 wide
    pixels[0, 7] = 255
    Image.fromarray(pixels).save(tmp_path / "m.png")
    mask = read_mask(tmp_path / "m.png")
    assert mask.shape == (1, 8, 6) and mask[0, 7, 0] == 1
    assert read_mask(tmp_path / "m.png", size=(4, 3)).shape == (1, 4, 3)


def test_resized_size() -> None:
    assert resized_size((6000, 4000), 1024) == (1024, 683)
    assert resized_size((300, 200), 1024) == (300, 200)
    assert resized_size((300, 200), None) == (300, 200)


def test_pairing_errors_name_the_file(tmp_path: Path) -> None:
    images = {"a": tmp_path / "images" / "a.jpg", "b": tmp_path / "images" / "b.jpg"}
    masks = {"a": tmp_path / "masks" / "a.png"}
    with pytest.raises(MedsegError, match=r"b\.jpg: image has no mask"):
        pair_files(images, masks)
    with pytest.raises(MedsegError, match=r"c\.png: mask has no image"):
        pair_files({"a": images["a"]}, dict(masks, c=tmp_path / "masks" / "c.png"))
    assert pair_files({"a": images["a"]}, masks) == [("a", images["a"], masks["a"])]
    (tmp_path / "dup").mkdir()
    (tmp_path / "dup" / "1.tif").write_bytes(b"")
    (tmp_path / "dup" / "1.png").write_bytes(b"")
    (tmp_path / "dup" / ".DS_Store").write_bytes(b"")
    with pytest.raises(MedsegError, match="same name"):
        files_by_stem(tmp_path / "dup")


def test_load_pair_checks_sizes_and_reads_errors(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "img.png")
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "mask.png")
    with pytest.raises(MedsegError, match="mask is 5x4 but its image"):
        load_pair(PairSource("c", tmp_path / "img.png", tmp_path / "mask.png"))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ImageReadError, match="broken.png"):
        load_pair(PairSource("c", tmp_path / "img.png", tmp_path / "broken.png"))
