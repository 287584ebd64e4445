"""Colour signatures and the "colour matters" blend (swimsearch/colour.py), without the network."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from swimsearch.colour import (
    HUE_TURNS,
    SIGNATURE_BINS,
    ColourMix,
    colour_distance,
    colour_signature,
    colour_similarity,
    content_box,
    hue_turned,
    picture_signature,
    query_rows,
    rgb_to_lab,
)
from swimsearch.images import load_image


def solid(rgb, size=(60, 90)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def signature_of(picture: Image.Image) -> np.ndarray:
    loaded = load_image(picture, 224)
    return colour_signature(loaded.pixels, loaded.width, loaded.height)


def test_lab_of_known_colours():
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=np.uint8))
    assert lab[0, 0] == pytest.approx(100, abs=0.5) and abs(lab[0, 1]) < 0.5 and abs(lab[0, 2]) < 0.5
    assert lab[1, 0] == pytest.approx(0, abs=0.5)
    assert lab[2, 1] > 60 and lab[2, 2] > 40  # red: a+ b+
    assert lab[3, 2] < -80  # blue: b-


def test_same_colours_are_similar_and_other_colours_are_not():
    red, also_red, blue = signature_of(solid((200, 30, 30))), signature_of(solid((190, 40, 35), (120, 80))), signature_of(solid((30, 40, 200)))
    assert red.shape == (SIGNATURE_BINS,) and red.dtype == np.uint8
    sims = colour_similarity(red, np.stack([red, also_red, blue]))
    assert sims[0] == pytest.approx(1.0, abs=1e-6)
    assert sims[1] > 0.9 > 0.1 > sims[2]
    assert colour_distance(red, blue[None])[0] > 0.9


def test_the_white_padding_does_not_count():
    """A tall red picture is padded on white to a square; its signature is still all red."""
    tall = signature_of(solid((200, 30, 30), (40, 200)))
    square = signature_of(solid((200, 30, 30), (200, 200)))
    white = signature_of(solid((255, 255, 255), (200, 200)))
    assert colour_similarity(tall, square[None])[0] > 0.95
    assert colour_similarity(tall, white[None])[0] < 0.05
    assert content_box(224, 40, 200) == (89, 0, 134, 224)


def test_hue_turns_keep_greys_and_move_colours():
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[:16] = (200, 30, 30)
    pixels[16:] = (128, 128, 128)
    turned = hue_turned(pixels, 120)
    assert np.abs(turned[20, 5].astype(int) - 128).max() <= 1  # grey stays grey
    assert turned[5, 5, 1] > 150 and turned[5, 5, 0] < 80  # red turned 120 degrees is green
    back = hue_turned(turned, 240)
    assert np.abs(back.astype(int) - pixels.astype(int)).max() <= 8


def test_the_colour_weight_blends_as_the_slider_says():
    plain, turned, colour = np.array([0.6, 0.5]), np.array([0.6, 0.9]), np.array([1.0, 0.2])
    assert np.allclose(ColourMix(0.5).scores(plain, turned, colour), plain)  # the middle: as the network sees it
    assert np.allclose(ColourMix(0.0).scores(plain, turned, colour), [0.6, 0.9])  # ignore colour: the best hue turn
    assert np.allclose(ColourMix(0.25).scores(plain, turned, colour), [0.6, 0.7])
    matched = ColourMix(1.0).scores(plain, turned, colour)
    assert matched[0] == pytest.approx(0.6) and matched[1] < 0.5  # match colour: other colours lose
    assert ColourMix(1.0).scores(plain, None, None) is plain  # no colours known: nothing changes
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="from 0"):
            ColourMix(bad)


def test_query_rows_add_hue_turns_only_towards_ignore_colour():
    pixels = np.full((16, 16, 3), 100, dtype=np.uint8)
    rows, plain = query_rows(pixels, mirror=False, mix=ColourMix(0.5))
    assert rows.shape[0] == 1 and plain == 1
    rows, plain = query_rows(pixels, mirror=True, mix=ColourMix(0.2))
    assert rows.shape[0] == 2 + len(HUE_TURNS) and plain == 2


def test_picture_signature_of_a_crop():
    picture = Image.new("RGB", (100, 100), (255, 255, 255))
    picture.paste((20, 160, 40), (50, 50, 100, 100))
    crop = picture.crop((50, 50, 100, 100))
    green = picture_signature(crop)
    assert colour_similarity(green, picture_signature(solid((20, 160, 40)))[None])[0] > 0.95
