"""Thumbnails show the design formats (PDF, AI, SVG, HEIC, AVIF, PSD, PSB, ...) as the index reads them."""

from __future__ import annotations

from test_formats import make_design_files
from ui.thumbnails import decode


def test_every_design_format_has_a_thumbnail(tmp_path):
    for name, (path, reference) in make_design_files(tmp_path).items():
        thumbnail = decode(str(path), 128)
        assert thumbnail.error is None, f"{name}: {thumbnail.error}"
        # 400 x 533 fitted to 128: 96 wide (97 where a renderer rounds the page up).
        assert thumbnail.image.height() == 128 and thumbnail.image.width() in (96, 97), name
        assert (thumbnail.width, thumbnail.height) == (400, 533), name
        want = decode(str(reference), 128).image
        # The centre of the thumbnail has the colour of the same picture saved as PNG.
        got, expected = thumbnail.image.pixelColor(48, 64), want.pixelColor(48, 64)
        assert abs(got.red() - expected.red()) + abs(got.green() - expected.green()) + abs(got.blue() - expected.blue()) < 60, name


def test_a_refused_drawing_has_a_plain_reason_instead_of_a_thumbnail(tmp_path):
    path = tmp_path / "thin.svg"
    path.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="100000"/>')
    thumbnail = decode(str(path), 128)
    assert thumbnail.image is None and "times taller than it is wide" in thumbnail.error
