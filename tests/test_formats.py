"""The files designers keep: PDF, Illustrator, SVG, HEIC, AVIF, PSD, PSB, TIFF pages, transparent PNG.

Each format is generated here with a writer other than the reader under test
(Pillow's PDF writer, pillow-heif, psd-tools, SVG as text), loads, embeds with
the real model close to the same picture saved as PNG, and is found by the
folder scan; what the scan leaves out is counted by kind.
"""

from __future__ import annotations

import base64
import gzip
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

import hostile_files
from helpers import DATA, PERMISSIONS, REPO, needs_permissions
from swimsearch.images import IMAGE_EXTENSIONS, ImageError, is_image_path, load_image, load_picture, scan_folder, scan_folder_report, skipped_summary

SIZE = 224


def _design() -> Image.Image:
    """A flat design drawing (what an SVG or a PDF of a swimsuit looks like), 400 x 533."""
    image = Image.new("RGB", (400, 533), "white")
    draw = ImageDraw.Draw(image)
    draw.polygon([(80, 60), (320, 60), (360, 480), (40, 480)], fill=(200, 20, 60))
    draw.ellipse((150, 200, 250, 300), fill=(20, 40, 160))
    draw.rectangle((60, 380, 340, 420), fill=(250, 200, 0))
    return image


DESIGN_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="400" height="533" viewBox="0 0 400 533">
<rect width="400" height="533" fill="white"/>
<polygon points="80,60 320,60 360,480 40,480" fill="rgb(200,20,60)"/>
<circle cx="200" cy="250" r="50" fill="rgb(20,40,160)"/>
<rect x="60" y="380" width="280" height="40" fill="rgb(250,200,0)"/>
</svg>"""


def _psd(image: Image.Image, version: int) -> bytes:
    from psd_tools import PSDImage

    psd = PSDImage.frompil(image)
    record = psd._record
    record.header.version = version  # 2 = PSB, Photoshop's large document format
    record.image_data.set_data([np.asarray(band).tobytes() for band in image.split()], record.header)
    buffer = io.BytesIO()
    psd.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def design_files(tmp_path_factory) -> dict[str, tuple]:
    return make_design_files(tmp_path_factory.mktemp("designs"))


def make_design_files(folder) -> dict[str, tuple]:
    """name -> (path, the same picture as a PNG path) for every design format, written into `folder`."""
    import pillow_heif

    photo = Image.open(DATA / "garment_a.jpg").convert("RGB")
    design = _design()
    photo_png = folder / "photo_reference.png"
    photo.save(photo_png)
    design_png = folder / "design_reference.png"
    design.save(design_png)
    files = {}
    photo.save(folder / "photo.pdf")
    files["pdf"] = (folder / "photo.pdf", photo_png)
    (folder / "photo.ai").write_bytes((folder / "photo.pdf").read_bytes())  # PDF-compatible Illustrator
    files["ai"] = (folder / "photo.ai", photo_png)
    (folder / "design.svg").write_text(DESIGN_SVG)
    files["svg"] = (folder / "design.svg", design_png)
    (folder / "design.svgz").write_bytes(gzip.compress(DESIGN_SVG.encode(), mtime=0))
    files["svgz"] = (folder / "design.svgz", design_png)
    embedded = base64.b64encode((folder / "photo_reference.png").read_bytes()).decode()
    (folder / "photo_in.svg").write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="533"><image width="400" height="533" href="data:image/png;base64,{embedded}"/></svg>'
    )
    files["svg_photo"] = (folder / "photo_in.svg", photo_png)
    pillow_heif.from_pillow(photo).save(folder / "photo.heic", quality=90)
    files["heic"] = (folder / "photo.heic", photo_png)
    photo.save(folder / "photo.avif", quality=90)
    files["avif"] = (folder / "photo.avif", photo_png)
    (folder / "photo.psd").write_bytes(_psd(photo, 1))
    files["psd"] = (folder / "photo.psd", photo_png)
    (folder / "photo.psb").write_bytes(_psd(photo, 2))
    files["psb"] = (folder / "photo.psb", photo_png)
    pages = [photo, Image.new("RGB", photo.size, (0, 0, 255))]
    pages[0].save(folder / "pages.tif", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    files["tiff_pages"] = (folder / "pages.tif", photo_png)
    cutout = design.convert("RGBA")
    alpha = Image.fromarray(np.where(np.asarray(design.convert("L")) > 250, 0, 255).astype(np.uint8))
    cutout.putalpha(alpha)
    cutout.save(folder / "cutout.png")
    files["png_transparent"] = (folder / "cutout.png", design_png)
    return files


def test_every_design_format_loads_upright_and_sized(design_files):
    for name, (path, reference) in design_files.items():
        loaded = load_image(path, SIZE)
        assert loaded.pixels.shape == (SIZE, SIZE, 3), name
        assert (loaded.width, loaded.height) == (400, 533), name
        want = load_image(reference, SIZE).pixels.astype(float)
        assert np.abs(loaded.pixels.astype(float) - want).mean() < 12, name
        picture, original = load_picture(path, 128)
        assert max(picture.size) == 128 and picture.mode == "RGB" and original == (400, 533), name


def _cosine(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_design_formats_embed_like_the_same_picture_as_png(design_files, embedder):
    def embed(path):
        return embedder.embed(load_image(path, embedder.size).pixels)[0]

    other = embed(DATA / "garment_b.jpg")
    for name, (path, reference) in design_files.items():
        got, want = embed(path), embed(reference)
        close = _cosine(got, want)
        assert close > 0.9, f"{name}: cosine {close:.3f}"
        assert close > _cosine(got, other) + 0.05, f"{name}: no closer to its PNG than to another garment"


def test_svg_never_reads_other_files(tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (50, 50), (255, 0, 0)).save(secret)
    (tmp_path / "nested.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="50" height="50"><rect width="50" height="50" fill="red"/></svg>'
    )
    body = (
        '<rect width="200" height="100" fill="rgb(0,0,255)"/>'
        f'<image x="0" width="50" height="50" href="{secret}"/>'
        '<image x="50" width="50" height="50" xlink:href="secret.png"/>'
        f'<image x="100" width="50" height="50" href="file://{secret}"/>'
        '<image x="150" width="50" height="50" href="nested.svg"/>'
        f'<filter id="f"><feImage href="{secret}"/></filter><rect y="60" width="200" height="40" filter="url(#f)"/>'
    )
    path = tmp_path / "links.svg"
    path.write_bytes(hostile_files.svg(body))
    picture, _ = load_picture(path, 200)
    red = np.asarray(picture).astype(int)
    assert not ((red[..., 0] > 200) & (red[..., 2] < 80)).any(), "a linked file was drawn"


def test_pdf_scripts_do_not_run_and_pdfium_has_no_javascript(tmp_path):
    from pypdfium2.version import PDFIUM_INFO

    assert "V8" not in PDFIUM_INFO.flags and "XFA" not in PDFIUM_INFO.flags
    path = tmp_path / "script.pdf"
    js = "/OpenAction << /S /JavaScript /JS (this.closeDoc(); while (true) {}) >>"
    path.write_bytes(hostile_files.pdf_page(300, 400, catalogue_extra=js))
    picture, original = load_picture(path, 200)
    assert original == (300, 400) and picture.size == (150, 200)
    r, g, b = picture.getpixel((15, 185))  # the filled square near the bottom left
    assert r > 150 and g < 80


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("huge.pdf", hostile_files.pdf_page(1e7, 2e7), "page declares a size of 10,000,000 x 20,000,000 points"),
        ("huge.svg", hostile_files.svg("", "2e8", "1e8"), "drawing declares a size of 200,000,000 x 100,000,000 pixels"),
        ("thin.svg", hostile_files.svg("", "10", "100000"), "10,000 times taller than it is wide"),
        ("old.ai", b"%!PS-Adobe-3.0\n", "saved without PDF compatibility"),
        ("locked.pdf", hostile_files.pdf_page(300, 400, encrypted=True), "protected by a password"),
    ],
)
def test_absurd_or_unreadable_drawings_are_refused_in_plain_words(tmp_path, name, data, words):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageError) as caught:
        load_image(path, SIZE)
    assert words in caught.value.reason


def test_scan_finds_every_design_format_and_counts_what_it_skips(tmp_path, design_files):
    for path, _ in design_files.values():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "sub").mkdir()
    for name in ("brief.indd", "sheet.indd", "sub/old.indd", "notes.txt", "spec.DOCX", "README", "Thumbs.db", ".DS_Store", "sub/.hidden.indd"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "backup.swimcat").write_bytes(b"x")
    report = scan_folder_report(tmp_path)
    names = {f.relpath for f in report.files}
    assert names == {path.name for path, _ in design_files.values()}
    assert [f.relpath for f in scan_folder(tmp_path)] == [f.relpath for f in report.files]
    assert report.skipped == {".indd": 3, ".txt": 1, ".docx": 1, "(no extension)": 1}
    assert report.skipped_summary() == "3 .indd, 1 (no extension), 1 .docx, 1 .txt"
    assert report.skipped_summary(kinds=2) == "3 .indd, 1 (no extension), 2 other"
    assert skipped_summary({}) == ""
    assert report.unlisted == ()


@needs_permissions
def test_scan_reports_folders_it_cannot_list(tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "locked").chmod(0)
    script = (
        "import json, sys\nfrom swimsearch.images import scan_folder_report\n"
        "r = scan_folder_report(sys.argv[1])\nprint(json.dumps([[f.relpath for f in r.files], list(r.unlisted)]))\n"
    )
    done = subprocess.run([*PERMISSIONS, sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    (tmp_path / "locked").chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [["b.png"], ["locked"]]


def test_design_extensions_are_image_paths():
    for ext in (".pdf", ".ai", ".svg", ".svgz", ".heic", ".heif", ".avif", ".psd", ".psb", ".tif", ".PDF"):
        assert is_image_path(f"design{ext}"), ext
    assert not is_image_path("layout.indd") and ".indd" not in IMAGE_EXTENSIONS


def test_a_layered_psd_reads_its_merged_composite(tmp_path):
    # The old loader seeked to "frame 0" of any multi-frame file, which for a
    # PSD with layers is outside the sequence: every layered PSD was unreadable.
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer

    psd = PSDImage.new("RGB", (300, 200))
    psd.append(PixelLayer.frompil(Image.new("RGB", (300, 200), (200, 30, 30)), psd, "red"))
    psd.append(PixelLayer.frompil(Image.new("RGB", (100, 100), (30, 30, 200)), psd, "blue", top=50, left=100))
    merged = psd.composite().convert("RGB")
    record = psd._record
    record.image_data.set_data([np.asarray(band).tobytes() for band in merged.split()], record.header)
    psd.save(tmp_path / "layered.psd")
    assert Image.open(tmp_path / "layered.psd").n_frames == 2
    picture, original = load_picture(tmp_path / "layered.psd", 300)
    assert original == (300, 200)
    assert picture.getpixel((150, 100)) == (30, 30, 200) and picture.getpixel((10, 10)) == (200, 30, 30)


def test_a_rotated_heic_comes_out_upright_like_a_jpeg(tmp_path):
    import pillow_heif

    upright = Image.new("RGB", (60, 40), (255, 255, 255))
    upright.paste((255, 0, 0), (0, 0, 30, 20))  # red top-left quarter
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how a camera stores orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    pillow_heif.from_pillow(stored).save(tmp_path / "turned.heic", exif=exif.tobytes(), quality=95)
    picture, original = load_picture(tmp_path / "turned.heic", 60)
    assert original == (60, 40) and picture.size == (60, 40)
    assert picture.getpixel((5, 5))[1] < 80 and min(picture.getpixel((55, 35))) > 200
