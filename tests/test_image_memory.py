"""Decoding any picture stays within bounded memory, and normal pictures come out unchanged.

The hostile files come from tests/hostile_files.py (seeded); each is loaded in
a forked child under an address-space cap (tests/memory_probe.py), whose peak
memory is measured. The pixels and pHash of ordinary pictures are held to the
loader as it was before (tests/reference_loader.py): existing catalogues'
embeddings must not move.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import hostile_files
import reference_loader
import swimsearch.images as images
import swimsearch.shrink as shrink
from helpers import CLOTHING, DATA, REPO, TESTS
from swimsearch.images import MAX_MEGAPIXELS, ImageError, load_image, load_picture

#: Peak memory any single picture may cost to load (measured worst today: a
#: 64-megapixel RGBA PNG, about 320 MB).
PEAK_LIMIT_MB = 450


@pytest.mark.slow
def test_generator_is_seeded_and_covers_every_class():
    first, second = hostile_files.variants(), hostile_files.variants()
    assert [(v.name, v.data) for v in first] == [(v.name, v.data) for v in second]
    assert len(first) >= 120
    assert len({v.name for v in first}) == len(first)
    prefixes = {v.name.split("_")[0] for v in first}
    assert {"bomb", "real", "photo", "svg", "pdf", "cut", "flip", "noise"} <= prefixes
    extensions = {v.name.rsplit(".", 1)[1] for v in first}
    assert {"png", "jpg", "gif", "bmp", "tif", "webp", "psd", "psb", "svg", "svgz", "pdf", "ai", "avif", "heic"} <= extensions


@pytest.mark.slow
def test_every_hostile_file_loads_or_is_refused_within_bounded_memory(tmp_path):
    written = hostile_files.write(tmp_path / "hostile")
    done = subprocess.run(
        [sys.executable, str(TESTS / "memory_probe.py"), "--cap-mb", "1500", *written],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(written)
    problems = []
    for result in results:
        variant = written[result["file"]]
        outcome, reason = result["outcome"], result.get("reason") or ""
        if outcome in ("crash", "killed"):
            problems.append(f"{variant.name}: {outcome} {reason}")
        elif variant.expect == "loads" and outcome != "loads":
            problems.append(f"{variant.name}: should load, got {reason}")
        elif variant.expect in ("refused", "fails") and outcome != "error":
            problems.append(f"{variant.name}: should fail with a plain reason, but loaded")
        elif variant.expect == "refused" and not all(word in reason for word in variant.words):
            problems.append(f"{variant.name}: reason {reason!r} lacks {variant.words}")
        if "bomb" in reason.lower() or "Traceback" in reason:
            problems.append(f"{variant.name}: reason {reason!r} is not plain words")
        if result["peak_mb"] > PEAK_LIMIT_MB:
            problems.append(f"{variant.name}: {result['peak_mb']} MB")
    assert not problems, "\n".join(problems)


def test_limits_are_said_in_plain_words(tmp_path):
    path = tmp_path / "poster.png"
    path.write_bytes(hostile_files.png_header_bomb(16_000, 12_000))
    with pytest.raises(ImageError) as caught:
        load_image(path, 224)
    assert caught.value.reason.endswith(
        f"16,000 x 12,000 pixels (192 megapixels); SwimSearch reads pictures up to {MAX_MEGAPIXELS} megapixels"
    )
    path.write_bytes(hostile_files.png_header_bomb(1, 100_000))
    with pytest.raises(ImageError, match=r"100,000 times taller than it is wide; SwimSearch reads pictures up to 100 times"):
        load_picture(path, 256)


def test_a_big_jpeg_is_read_at_reduced_size_not_refused(tmp_path):
    # 9000 x 8000 = 72 megapixels, over the limit, but decoded at 1/8 scale.
    path = tmp_path / "scan.jpg"
    Image.new("RGB", (9000, 8000), (200, 30, 30)).save(path, quality=50)
    loaded = load_image(path, 224)
    assert (loaded.width, loaded.height) == (9000, 8000)
    assert loaded.pixels[112, 112, 0] > 180


@pytest.mark.parametrize("failure", [MemoryError, RecursionError, type("PanicException", (BaseException,), {})])
def test_any_failure_while_shrinking_is_an_image_error(monkeypatch, failure):
    def fail(*args, **kwargs):
        raise failure("boom")

    monkeypatch.setattr("swimsearch.images.square", fail)
    with pytest.raises(ImageError) as caught:
        load_image(DATA / "garment_a.jpg", 224)
    assert caught.value.path.endswith("garment_a.jpg") and "Traceback" not in caught.value.reason
    if failure is MemoryError:
        assert caught.value.reason == "not enough memory to decode this image"


def _pictures():
    """Ordinary pictures: every mode, orientation and shape class, some large enough to be reduced."""
    rng = np.random.default_rng(7)
    photo = hostile_files._photo(rng, 1500, 1000)
    out = {"rgb": photo, "tall": photo.rotate(90, expand=True), "square": photo.resize((1200, 1200))}
    out["banner"] = photo.resize((4000, 300))
    out["rgba"] = Image.merge("RGBA", (*photo.split(), photo.convert("L")))
    out["la"] = photo.convert("LA")
    out["palette_alpha"] = photo.convert("P")
    out["palette_alpha"].info["transparency"] = 5
    out["one_bit"] = photo.convert("1")
    out["cmyk"] = photo.convert("CMYK")
    out["grey16"] = Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 200)
    out["float"] = Image.fromarray(np.asarray(photo.convert("L")).astype(np.float32) / 3)
    for orientation in (3, 6, 8):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buffer = io.BytesIO()
        photo.save(buffer, "PNG", exif=exif)
        out[f"orientation{orientation}"] = buffer.getvalue()
    return out


def _open(item):
    return Image.open(io.BytesIO(item)) if isinstance(item, bytes) else item


@pytest.mark.parametrize("strip_pixels", [shrink.STRIP_PIXELS, 4_000])
def test_pixels_and_phash_are_those_of_the_old_loader(monkeypatch, strip_pixels):
    # Small strips force every picture through many strips and bands.
    monkeypatch.setattr(shrink, "STRIP_PIXELS", strip_pixels)
    for name, item in _pictures().items():
        for size, mirror in ((224, False), (97, True)):
            new = load_image(_open(item), size, mirror=mirror)
            pixels, _, _, phash = reference_loader.load_image(_as_pasted(_open(item), size), size, mirror=mirror)
            _, width, height, _ = reference_loader.load_image(_open(item), size, mirror=mirror)
            assert np.array_equal(new.pixels, pixels), f"{name} at {size}"
            assert (new.width, new.height, new.phash) == (width, height, phash), f"{name} at {size}"


def _as_pasted(picture, size):
    """Pasted pixels (no file format) are first reduced as their JPEG would have been decoded (images._raster)."""
    if picture.format is None and picture.mode in images._REDUCIBLE:
        factor = images._draft_factor(picture.size, size)
        return picture.reduce(factor) if factor > 1 else picture
    return picture


def test_photos_of_existing_catalogues_are_unchanged():
    paths = [DATA / f"garment_{c}.jpg" for c in "abc"]
    if (CLOTHING / "images").is_dir():
        paths += sorted((CLOTHING / "images").glob("*.jpg"))[:: 1000][:6]
    for path in paths:
        new = load_image(path, 224)
        pixels, width, height, phash = reference_loader.load_image(path, 224)
        assert np.array_equal(new.pixels, pixels) and new.phash == phash, path.name


def test_thumbnails_of_long_pictures_fit_and_keep_their_shape(tmp_path):
    path = tmp_path / "banner.png"
    path.write_bytes(hostile_files.png_solid(30_000, 1_000))
    picture, original = load_picture(path, 256)
    assert original == (30_000, 1_000)
    assert picture.size == (256, 9)
