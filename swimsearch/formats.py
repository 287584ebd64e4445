"""The design file formats beyond Pillow's own: PDF and Illustrator, SVG, HEIC, PSB.

Vector files (PDF, PDF-compatible .ai, SVG) are rendered at the size the
caller needs, never at their declared size, so a page that declares itself
35 metres wide costs what a thumbnail costs. Every file here is untrusted:
PDFium is built without JavaScript and forms are never initialised; SVG
references to other files are removed before rendering (resvg would read any
local picture an SVG names) and embedded pictures are held to the same pixel
limit as picture files. HEIC/HEIF come through pi-heif as a Pillow plugin;
AVIF and PSD are Pillow's own; PSB (Photoshop's large document format) is
read here, as Pillow reads PSD: the merged composite only, a strip at a time.
"""

from __future__ import annotations

import base64
import gzip
import io
import logging
import math
import os
import re
import threading
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image, ImageFile, ImagePalette, PsdImagePlugin

log = logging.getLogger(__name__)

#: Extensions read by Pillow (and the plugins registered here), lower case.
RASTER_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
    | {".heic", ".heif", ".hif", ".avif", ".psd", ".psb"}
)
#: Extensions rendered from vectors here.
VECTOR_EXTENSIONS = frozenset({".pdf", ".ai", ".svg", ".svgz"})
IMAGE_EXTENSIONS = RASTER_EXTENSIONS | VECTOR_EXTENSIONS

#: A picture whose long side is more than this many times its short side is
#: refused: shrunk for the network it would be a line a few pixels thick.
MAX_ASPECT = 100

#: Largest page or drawing side accepted, in points or CSS pixels (35 m).
MAX_DRAWING_SIDE = 100_000

#: Largest SVG text read (after gunzip for .svgz).
MAX_SVG_BYTES = 64 << 20

_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# pdfium is not thread-safe, even across documents; decoders run in threads.
_PDFIUM_LOCK = threading.Lock()
_HEIF_LOCK = threading.Lock()
_heif_state: list[bool] = []


class Refused(Exception):
    """A file read fine but refused on purpose; `reason` is the plain sentence."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def aspect_problem(width: float, height: float, what: str = "picture") -> str | None:
    """The plain reason to refuse a picture this long and thin, or None."""
    long_side, short_side = max(width, height), min(width, height)
    if short_side <= 0 or long_side / short_side <= MAX_ASPECT:
        return None
    shape = "wider than it is tall" if width > height else "taller than it is wide"
    return (
        f"the {what} is {_number(width)} x {_number(height)}, {long_side / short_side:,.0f} times {shape}; "
        f"SwimSearch reads pictures up to {MAX_ASPECT} times longer than wide "
        f"(a thinner strip would shrink to a line)"
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:,.2g}"


def register_plugins() -> None:
    """Teach Pillow PSB and (when pi-heif is installed) HEIC/HEIF; cheap after the first call."""
    if _heif_state:
        return
    with _HEIF_LOCK:
        if _heif_state:
            return
        Image.register_open(PsbImageFile.format, PsbImageFile, _accept_psb)
        Image.register_extension(PsbImageFile.format, ".psb")
        try:
            import pi_heif

            pi_heif.register_heif_opener()
        except ImportError:
            log.warning("pi-heif is not installed: HEIC/HEIF files cannot be read")
        _heif_state.append(True)


def sniff(path: str | os.PathLike, head: bytes) -> str | None:
    """'pdf', 'svg' or 'postscript' for files read here rather than by Pillow, else None."""
    if head[:1024].find(b"%PDF-") >= 0:
        return "pdf"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "postscript"
    ext = os.path.splitext(str(path))[1].lower()
    if ext in (".svg", ".svgz"):
        return "svg"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith((b"<?xml", b"<svg", b"<!--", b"<!DOCTYPE")) and b"<svg" in head:
        return "svg"
    return None


def postscript_reason(path: str | os.PathLike) -> str:
    if os.path.splitext(str(path))[1].lower() == ".ai":
        return (
            "this Illustrator file was saved without PDF compatibility; "
            "save it again with 'Create PDF Compatible File' ticked"
        )
    return "PostScript and EPS files cannot be read; save the design as PDF, SVG or PNG"


def _check_drawing(width: float, height: float, unit: str) -> None:
    what = "page" if unit == "points" else "drawing"
    if not (math.isfinite(width) and math.isfinite(height)) or width <= 0 or height <= 0:
        raise Refused(f"the {what} declares an impossible size ({width:g} x {height:g} {unit})")
    if max(width, height) > MAX_DRAWING_SIDE:
        raise Refused(
            f"the {what} declares a size of {width:,.0f} x {height:,.0f} {unit}; "
            f"SwimSearch reads {what}s up to {MAX_DRAWING_SIDE:,} {unit} on a side"
        )
    problem = aspect_problem(width, height, what)
    if problem:
        raise Refused(problem)


def render_pdf(path: str | os.PathLike, long_side: int) -> tuple[Image.Image, tuple[int, int]]:
    """First page of a PDF (or PDF-compatible .ai) on white, `long_side` pixels on its long side.

    Returns the picture and the page size in points (1/72 inch).
    """
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise Refused(_pdfium_reason(exc)) from exc
        try:
            if len(pdf) < 1:
                raise Refused("the PDF has no pages")
            page = pdf[0]
            try:
                width, height = page.get_size()
                _check_drawing(width, height, "points")
                scale = long_side / max(width, height)
                # No init_forms(): form fields and their scripts stay inert.
                bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255), may_draw_forms=False)
                try:
                    picture = bitmap.to_pil().convert("RGB")
                finally:
                    bitmap.close()
            finally:
                page.close()
        finally:
            pdf.close()
    return picture, (max(1, round(width)), max(1, round(height)))


def _pdfium_reason(exc: Exception) -> str:
    text = str(exc).lower()
    if "password" in text:
        return "the PDF is protected by a password"
    if "file" in text and ("not found" in text or "access" in text):
        return "the file cannot be opened"
    return "the PDF is damaged or not a PDF"


def render_svg(path: str | os.PathLike, long_side: int, max_pixels: int) -> tuple[Image.Image, tuple[int, int]]:
    """An SVG (or gzipped .svgz) rendered with resvg to `long_side` on its long side.

    Returns the RGBA picture and the declared size in CSS pixels (the
    rendered size when the drawing declares none).
    """
    import resvg_py

    root = _parse_svg(_read_svg_bytes(path))
    _strip_external_references(root, max_pixels)
    declared = _declared_size(root)
    if declared is not None:
        _check_drawing(*declared, "pixels")
    text = ET.tostring(root, encoding="unicode")
    try:
        png = resvg_py.svg_to_bytes(svg_string=text, width=long_side, height=long_side, dpi=96.0)
    except BaseException as exc:  # resvg panics surface as a BaseException (pyo3 PanicException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise Refused(f"the SVG cannot be drawn ({_first_line(exc)})") from exc
    picture = Image.open(io.BytesIO(bytes(png)))
    picture.load()
    if declared is None:
        problem = aspect_problem(*picture.size, "drawing")
        if problem:
            raise Refused(problem)
        declared = picture.size
    return picture, (max(1, round(declared[0])), max(1, round(declared[1])))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]


def _read_svg_bytes(path: str | os.PathLike) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_SVG_BYTES + 1)
    if data[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
            data = unzipped.read(MAX_SVG_BYTES + 1)
    if len(data) > MAX_SVG_BYTES:
        raise Refused(f"the SVG is larger than {MAX_SVG_BYTES >> 20} MB of text")
    return data


def _parse_svg(data: bytes) -> ET.Element:
    # expat expands no external entities and stops entity-expansion bombs.
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise Refused(f"the SVG is not well-formed XML ({exc})") from exc
    if root.tag.rsplit("}", 1)[-1] != "svg":
        raise Refused("not an SVG drawing")
    return root


def _strip_external_references(root: ET.Element, max_pixels: int) -> None:
    """Remove links to other files (resvg would read them) and check embedded pictures."""
    for element in root.iter():
        for attribute in ("href", _XLINK_HREF):
            value = element.get(attribute)
            if value is None:
                continue
            link = value.strip()
            if link.startswith("#"):
                continue
            if link[:5].lower() == "data:" and _embedded_picture_ok(link, max_pixels):
                continue
            log.info("SVG: ignoring a reference to %.80s", link)
            del element.attrib[attribute]


def _embedded_picture_ok(link: str, max_pixels: int) -> bool:
    """True for a data: URL holding a raster picture within the limits; raises Refused when too big."""
    header, _, payload = link.partition(",")
    if "svg" in header.lower() or ";base64" not in header.lower():
        return False  # nested SVG could link files again; plain-text payloads are not pictures
    try:
        data = base64.b64decode(re.sub(r"\s+", "", payload), validate=False)
        with Image.open(io.BytesIO(data)) as embedded:
            width, height = embedded.size
    except Exception:  # noqa: BLE001 - an unreadable embedded picture is left out
        return False
    if width * height > max_pixels or aspect_problem(width, height):
        raise Refused(f"the SVG embeds a picture of {width:,} x {height:,} pixels, too large to draw safely")
    return True


_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0, "em": 16.0, "ex": 8.0}
_LENGTH = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z%]*)\s*$")


def _declared_size(root: ET.Element) -> tuple[float, float] | None:
    """The root's width and height in CSS pixels, as resvg reads them; None if it declares none."""
    view = [float(v) for v in re.split(r"[\s,]+", root.get("viewBox", "").strip()) if v][:4]
    view_size = (view[2], view[3]) if len(view) == 4 else None
    sizes = []
    for index, name in enumerate(("width", "height")):
        match = _LENGTH.match(root.get(name, "100%"))
        if match is None:
            return None
        number, unit = float(match.group(1)), match.group(2).lower()
        if unit == "%":
            if view_size is None:
                return None
            sizes.append(view_size[index] * number / 100)
        elif unit in _UNITS:
            sizes.append(number * _UNITS[unit])
        else:
            return None
    return sizes[0], sizes[1]


# --------------------------------------------------------------------------- PSB


def _accept_psb(prefix: bytes) -> bool:
    return prefix[:4] == b"8BPS" and prefix[4:6] == b"\x00\x02"


class PsbImageFile(ImageFile.ImageFile):
    """Photoshop Large Document (.psb): the merged composite, as Pillow reads PSD.

    PSB is PSD with 8-byte section lengths and 4-byte RLE row counts, which
    Pillow's PSD reader does not accept; layers are skipped, not read.
    """

    format = "PSB"
    format_description = "Adobe Photoshop large document"

    def _open(self) -> None:
        assert self.fp is not None
        read = self.fp.read
        header = read(26)
        if not _accept_psb(header):
            raise SyntaxError("not a PSB file")
        channels, height, width = _be(header[12:14]), _be(header[14:18]), _be(header[18:22])
        bits, ps_mode = _be(header[22:24]), _be(header[24:26])
        if (ps_mode, bits) not in PsdImagePlugin.MODES:
            raise Refused(f"Photoshop files with {bits} bits per channel in this colour mode cannot be read")
        mode, needed = PsdImagePlugin.MODES[(ps_mode, bits)]
        if not needed <= channels <= 56:  # the format allows 1 to 56
            raise SyntaxError("impossible number of channels")
        if mode == "RGB" and channels >= 4:
            mode, needed = "RGBA", 4
        self._mode = mode
        self._size = (width, height)
        colours = _be(read(4))
        data = read(colours)
        if mode == "P" and colours == 768:
            self.palette = ImagePalette.raw("RGB;L", data)
        self.fp.seek(_be(read(4)), os.SEEK_CUR)  # image resources
        self.fp.seek(_be(read(8)), os.SEEK_CUR)  # layers and masks: 8-byte length in PSB
        self.tile = self._composite_tiles(mode, needed, channels, width, height)

    def _composite_tiles(self, mode: str, channels: int, in_file: int, width: int, height: int) -> list:
        assert self.fp is not None
        compression = _be(self.fp.read(2))
        box = (0, 0, width, height)
        bands = [mode[c] + (";I" if mode == "CMYK" else "") for c in range(channels)]
        if compression == 0:
            offset = self.fp.tell()
            row_bytes = (width + 7) // 8 if mode == "1" else width
            tiles = []
            for band in bands:
                tiles.append(ImageFile._Tile("raw", box, offset, band))
                offset += row_bytes * height
            return tiles
        if compression != 1:
            raise Refused("this Photoshop file's composite image is compressed in a way that cannot be read")
        # Row byte counts of every channel in the file, channel after channel
        # (4 bytes each in PSB); the data of the first channel follows them.
        counts = np.frombuffer(ImageFile._safe_read(self.fp, in_file * height * 4), dtype=">u4")
        offset = self.fp.tell()
        tiles = []
        for index, band in enumerate(bands):
            tiles.append(ImageFile._Tile("packbits", box, offset, band))
            offset += int(counts[index * height : (index + 1) * height].sum(dtype=np.uint64))
        return tiles


def _be(data: bytes) -> int:
    return int.from_bytes(data, "big")
