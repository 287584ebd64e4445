"""Image loading never surprises: every odd file loads as RGB or fails with ImageError."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import DATA, PERMISSIONS, REPO, needs_permissions
from swimsearch.images import ImageError, load_image, load_picture, scan_folder

SIZE = 64


def _png_with_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries almost no data (a decompression bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


@pytest.fixture
def odd_images(tmp_path) -> dict[str, Path]:
    """Readable images in every awkward mode and format."""
    rgb = Image.new("RGB", (40, 30), (200, 30, 30))
    out = {
        "palette": _save(rgb.convert("P"), tmp_path / "palette.png"),
        "grey": _save(Image.new("L", (30, 30), 90), tmp_path / "grey.png"),
        "grey_alpha": _save(Image.new("LA", (30, 30), (90, 128)), tmp_path / "grey_alpha.png"),
        "cmyk": _save(Image.new("CMYK", (30, 30), (0, 255, 255, 0)), tmp_path / "cmyk.jpg"),
        "rgba": _save(Image.new("RGBA", (30, 30), (0, 0, 255, 0)), tmp_path / "rgba.png"),
        "webp": _save(rgb, tmp_path / "photo.webp"),
        "bmp": _save(rgb, tmp_path / "photo.bmp"),
        "one_pixel": _save(Image.new("RGB", (1, 1), (0, 0, 0)), tmp_path / "one.png"),
        "panorama": _save(Image.new("RGB", (12000, 200), (10, 120, 10)), tmp_path / "panorama.jpg"),
        "float_tiff": _save(Image.fromarray(np.full((20, 20), 0.5, np.float32), "F"), tmp_path / "float.tif"),
        "int32_tiff": _save(Image.fromarray(np.full((20, 20), 40000, np.int32), "I"), tmp_path / "int32.tif"),
    }
    # Palette PNG whose palette entry 0 is transparent.
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    pal.info["transparency"] = 0
    out["palette_transparent"] = _save(pal, tmp_path / "palette_transparent.png", transparency=0)
    # 16-bit greyscale at half intensity.
    out["grey16"] = _save(Image.fromarray(np.full((20, 20), 32768, np.uint16)), tmp_path / "grey16.png")
    # Animated GIF: first frame red, second frame blue.
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    out["animated"] = _save(frames[0], tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    # Multi-page TIFF: first page green.
    pages = [Image.new("RGB", (20, 20), c) for c in ((0, 255, 0), (0, 0, 255))]
    out["multipage"] = _save(pages[0], tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
    return out


@pytest.fixture
def broken_files(tmp_path) -> dict[str, Path]:
    """Files that must fail with ImageError, and nothing else."""
    good = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(good, "JPEG")
    good_png = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8)).save(good_png, "PNG")
    files = {
        "empty": b"",
        "truncated_jpeg": good.getvalue()[: len(good.getvalue()) // 2],
        "truncated_png": good_png.getvalue()[: len(good_png.getvalue()) // 2],
        "random_bytes": np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes(),
        "text": b"this is not a picture\n",
        "bomb": _png_with_header(50000, 50000),
    }
    names = {"text": "notes.png", "random_bytes": "noise.jpg", "truncated_png": "cut.png", "bomb": "bomb.png"}
    out = {}
    for key, data in files.items():
        path = tmp_path / names.get(key, f"{key}.jpg")
        path.write_bytes(data)
        out[key] = path
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    out["folder"] = folder
    out["missing"] = tmp_path / "missing.jpg"
    return out


def test_every_odd_image_loads_as_square_rgb(odd_images):
    for name, path in odd_images.items():
        loaded = load_image(path, SIZE)
        assert loaded.pixels.shape == (SIZE, SIZE, 3), name
        assert loaded.pixels.dtype == np.uint8, name


def test_every_broken_file_fails_with_image_error_and_a_reason(broken_files):
    for name, path in broken_files.items():
        with pytest.raises(ImageError) as caught:
            load_image(path, SIZE)
        assert caught.value.path == str(path), name
        assert caught.value.reason and "Traceback" not in caught.value.reason, name


def test_reasons_are_plain_words(broken_files):
    def reason(key):
        with pytest.raises(ImageError) as caught:
            load_image(broken_files[key], SIZE)
        return caught.value.reason

    assert "too large" in reason("bomb")
    assert "does not exist" in reason("missing")
    assert "not an image" in reason("text")
    assert "truncated" in reason("truncated_jpeg")
    assert reason("empty") == "the file is empty (0 bytes)"  # a failed copy, not "a format that cannot be read"


def test_permission_denied_reads_as_plain_words(tmp_path, monkeypatch):
    # Root reads any file, so the refusal is simulated where Pillow opens it.
    import swimsearch.images as images

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(images.Image, "open", refuse)
    with pytest.raises(ImageError, match="permission denied"):
        load_image(DATA / "garment_a.jpg", SIZE)


@needs_permissions
def test_unreadable_file_is_an_image_error(tmp_path):
    path = _save(Image.new("RGB", (10, 10)), tmp_path / "locked.png")
    path.chmod(0)
    script = (
        "import sys\n"
        "from swimsearch.images import ImageError, load_image\n"
        "try:\n"
        "    load_image(sys.argv[1], 16)\n"
        "except ImageError as exc:\n"
        "    print(exc.reason)\n"
    )
    done = subprocess.run([*PERMISSIONS, sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "permission denied: the file cannot be read"


def test_transparency_lands_on_white(odd_images):
    assert (load_image(odd_images["rgba"], SIZE).pixels == 255).all()
    pixels = load_image(odd_images["palette_transparent"], SIZE).pixels
    assert (pixels == 255).all()


def test_sixteen_bit_grey_keeps_its_brightness(odd_images):
    # Pillow's own convert() would clip 32768 to white.
    value = load_image(odd_images["grey16"], SIZE).pixels.mean()
    assert 120 < value < 135


def test_cmyk_comes_out_as_rgb_colour(odd_images):
    r, g, b = load_image(odd_images["cmyk"], SIZE).pixels[SIZE // 2, SIZE // 2].astype(int)
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta+yellow full = red


def test_animated_and_multipage_use_the_first_frame(odd_images):
    r, g, b = load_image(odd_images["animated"], SIZE).pixels[SIZE // 2, SIZE // 2].astype(int)
    assert r > 200 and b < 60
    r, g, b = load_image(odd_images["multipage"], SIZE).pixels[SIZE // 2, SIZE // 2].astype(int)
    assert g > 200 and r < 60


def test_padding_is_white_and_centred(odd_images):
    # 12000 x 200 green strip: a thin centred band, white above and below.
    pixels = load_image(odd_images["panorama"], 600).pixels  # band is 10 rows high
    assert (pixels[0] > 240).all() and (pixels[-1] > 240).all()
    assert pixels[300, 300, 1] > 90 and pixels[300, 300, 0] < 60


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(tmp_path, orientation):
    upright = Image.new("RGB", (60, 40), (255, 255, 255))
    upright.paste((255, 0, 0), (0, 0, 30, 20))  # red top-left quarter
    # Store the pixels so that a viewer applying `orientation` shows `upright`.
    inverse = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    stored = upright.transpose(inverse[orientation]) if orientation in inverse else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(stored, tmp_path / f"o{orientation}.jpg", exif=exif, quality=95)
    loaded = load_image(path, 60)
    assert (loaded.width, loaded.height) == (60, 40)
    # 60x40 padded to 60x60: picture occupies rows 10..49.
    top_left = loaded.pixels[15, 5].astype(int)
    bottom_right = loaded.pixels[45, 55].astype(int)
    assert top_left[0] > 200 and top_left[1] < 80, f"orientation {orientation}: top-left is {top_left}"
    assert (bottom_right > 200).all()


def test_jpeg_draft_decoding_matches_full_decoding(tmp_path):
    # A 4x larger JPEG is decoded at reduced scale (draft) yet gives the same picture.
    photo = Image.open(DATA / "garment_a.jpg")
    big = photo.resize((photo.width * 4, photo.height * 4), Image.Resampling.BICUBIC)
    path = _save(big, tmp_path / "big.jpg", quality=92)
    fast = load_image(path, 224).pixels.astype(float)
    reference = load_image(DATA / "garment_a.jpg", 224).pixels.astype(float)
    assert np.abs(fast - reference).mean() < 6


def test_original_size_and_phash_are_recorded(tmp_path):
    loaded = load_image(DATA / "garment_a.jpg", 224)
    assert (loaded.width, loaded.height) == Image.open(DATA / "garment_a.jpg").size
    assert 0 <= loaded.phash < 2**64
    photo = Image.open(DATA / "garment_a.jpg")
    copy = _save(photo.resize((photo.width // 2, photo.height // 2)), tmp_path / "half.jpg", quality=60)
    near = bin(load_image(copy, 224).phash ^ loaded.phash).count("1")
    far = bin(load_image(DATA / "garment_b.jpg", 224).phash ^ loaded.phash).count("1")
    assert near <= 6 < 16 <= far


def test_pasted_pil_image_loads():
    image = Image.open(DATA / "garment_b.jpg").convert("RGBA")
    assert load_image(image, SIZE).pixels.shape == (SIZE, SIZE, 3)


def test_pictures_for_thumbnails_keep_their_shape_and_fit(tmp_path):
    photo = Image.open(DATA / "garment_a.jpg")
    path = _save(photo.resize((photo.width * 3, photo.height * 3)), tmp_path / "big.jpg", quality=90)
    picture, original = load_picture(path, 128)
    assert original == (photo.width * 3, photo.height * 3)
    assert max(picture.size) == 128 and picture.mode == "RGB"
    assert abs(picture.width / picture.height - photo.width / photo.height) < 0.02
    small, _ = load_picture(DATA / "garment_a.jpg", 4096)
    assert small.size == photo.size  # never enlarged
    with pytest.raises(ImageError):
        load_picture(tmp_path / "missing.jpg", 128)


def test_mirror_flips_left_right():
    image = Image.new("RGB", (40, 40), (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, 20, 40))
    assert load_image(image, 40, mirror=True).pixels[20, 35].max() < 50
    assert load_image(image, 40).pixels[20, 35].min() > 200


def test_scan_finds_images_recursively_and_skips_hidden(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ("x.JPG", "a/y.png", "a/b/z.webp", ".hidden/h.jpg", "a/.dot.jpg", "a/readme.txt"):
        (tmp_path / rel).write_bytes(b"data")
    found = scan_folder(tmp_path)
    assert [f.relpath for f in found] == ["a/b/z.webp", "a/y.png", "x.JPG"]
    assert all(f.size == 4 and f.mtime > 0 for f in found)


def test_scan_survives_a_symlink_loop(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.jpg").write_bytes(b"data")
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.jpg")
    found = scan_folder(tmp_path)
    # the dangling link is listed, to be recorded as unreadable with its reason (never opened)
    assert [(f.relpath, f.name_error) for f in found] == [
        ("dangling.jpg", "a link to a file that is not there"), ("sub/p.jpg", None)]


def test_a_pipe_a_device_or_a_folder_given_as_a_picture_is_refused_at_once(tmp_path):
    """The loader opens without blocking: a FIFO used to wait for a writer for ever (query, drop, build)."""
    import os

    from swimsearch.images import ImageError, load_image

    pipe = tmp_path / "design.png"
    os.mkfifo(pipe)
    for path, words in ((pipe, "a pipe"), ("/dev/zero", "a device"), (tmp_path, "a folder")):
        with pytest.raises(ImageError, match=f"it is {words}"):
            load_image(path, 224)
