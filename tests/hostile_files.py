"""A seeded generator of hostile and awkward picture files, for the loader's tests and bench.

Each variant is a file plus what a user must see: it loads ("loads"), or it
is refused with one plain sentence containing some words ("refused"), or it
fails with any plain sentence ("fails": damaged files whose exact reason is
the parser's business). Whatever the file, loading it must stay within a
bounded amount of memory and never crash the process.

    python tests/hostile_files.py OUT_DIR     # writes the files, prints a summary

The classes covered: header bombs (a tiny file declaring a huge picture) in
every format that has a header, at sizes just under and over the limit and
in every PNG colour type and bit depth; real pictures that are long and thin
(decodable banners and strips); real pictures near the pixel limit; every
Pillow mode and EXIF orientation; hostile SVGs (entity bombs, external
files, embedded bombs, absurd sizes); hostile PDFs (absurd pages, passwords,
scripts); truncated and bit-flipped copies of every valid file; random bytes
behind every magic number.
"""

from __future__ import annotations

import base64
import gzip
import io
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 20261130


@dataclass(frozen=True)
class Variant:
    """One generated file and what loading it must give."""

    name: str  # file name, with the extension that routes it
    data: bytes
    expect: str  # "loads", "refused" or "fails"
    words: tuple[str, ...] = ()  # for "refused": words the reason must contain


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_bomb(width: int, height: int, colour: int = 2, depth: int = 8) -> bytes:
    """A PNG that declares width x height but carries a few bytes of data."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    palette = _png_chunk(b"PLTE", bytes(range(48))) if colour == 3 else b""
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + palette
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b"")
    )


def png_solid(width: int, height: int, colour: int = 2, depth: int = 8) -> bytes:
    """A valid PNG of one flat colour, written row by row (no big buffer): deflate makes it tiny."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    row = b"\0" + bytes([200]) * ((width * channels * depth + 7) // 8)
    compressor = zlib.compressobj(1)
    parts = [compressor.compress(row) for _ in range(height)]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    palette = _png_chunk(b"PLTE", bytes(range(256)) * 3) if colour == 3 else b""
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + palette
        + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    )


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    if fmt == "PNG":
        kwargs.setdefault("compress_level", 1)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to declare width x height."""
    data = bytearray(_encode(Image.new("RGB", (64, 48), (120, 40, 40)), "JPEG"))
    at = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def gif_with_size(width: int, height: int) -> bytes:
    data = bytearray(_encode(Image.new("P", (8, 8), 1), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)  # logical screen
    at = data.find(b"\x2c")  # image descriptor: x, y, w, h
    struct.pack_into("<HH", data, at + 5, width, height)
    return bytes(data)


def bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(_encode(Image.new("RGB", (4, 4), (1, 2, 3)), "BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def tiff_with_size(width: int, height: int) -> bytes:
    """A valid little TIFF whose width and length tags are rewritten."""
    image = Image.new("L", (16, 16), 77)
    data = bytearray(_encode(image, "TIFF"))
    count = struct.unpack_from("<H", data, struct.unpack_from("<I", data, 4)[0])[0]
    start = struct.unpack_from("<I", data, 4)[0] + 2
    for i in range(count):
        tag, kind = struct.unpack_from("<HH", data, start + 12 * i)
        if tag in (256, 257):
            value = width if tag == 256 else height
            if kind == 3:
                struct.pack_into("<HHIH", data, start + 12 * i, tag, 4, 1, 0)
            struct.pack_into("<I", data, start + 12 * i + 8, value)
            struct.pack_into("<H", data, start + 12 * i + 2, 4)
    return bytes(data)


def webp_with_size(width: int, height: int) -> bytes:
    """A lossless WebP whose VP8L header declares width x height (at most 16384 each)."""
    data = bytearray(_encode(Image.new("RGB", (8, 8), (9, 9, 9)), "WEBP", lossless=True))
    at = data.find(b"VP8L") + 8 + 1
    bits = (width - 1) | ((height - 1) << 14) | (struct.unpack_from("<I", data, at)[0] & ~((1 << 28) - 1))
    struct.pack_into("<I", data, at, bits)
    return bytes(data)


def psd_with_size(width: int, height: int, version: int = 1) -> bytes:
    """A PSD (version 1) or PSB (version 2) header declaring width x height, raw RGB, a few bytes."""
    header = b"8BPS" + struct.pack(">H", version) + b"\0" * 6 + struct.pack(">HIIHH", 3, height, width, 8, 3)
    length = b"\0" * (4 if version == 1 else 8)
    return header + b"\0\0\0\0" + b"\0\0\0\0" + length + struct.pack(">H", 0) + b"\x80" * 64


def psb_image(image: Image.Image, rle: bool = True) -> bytes:
    """A valid PSB (Photoshop large document) holding `image` (RGB) as its composite."""
    width, height = image.size
    out = io.BytesIO()
    out.write(b"8BPS" + struct.pack(">H", 2) + b"\0" * 6 + struct.pack(">HIIHH", 3, height, width, 8, 3))
    out.write(b"\0\0\0\0" + b"\0\0\0\0" + b"\0" * 8)
    channels = [np.asarray(band) for band in image.convert("RGB").split()]
    if not rle:
        out.write(struct.pack(">H", 0))
        for band in channels:
            out.write(band.tobytes())
        return out.getvalue()
    rows = [_packbits(row.tobytes()) for band in channels for row in band]
    out.write(struct.pack(">H", 1))
    out.write(b"".join(struct.pack(">I", len(row)) for row in rows))
    out.write(b"".join(rows))
    return out.getvalue()


def _packbits(row: bytes) -> bytes:
    """PackBits with literal runs only (valid, simple)."""
    out = bytearray()
    for i in range(0, len(row), 128):
        chunk = row[i : i + 128]
        out.append(len(chunk) - 1)
        out += chunk
    return bytes(out)


def pdf_page(width: float, height: float, extra: str = "", catalogue_extra: str = "", encrypted: bool = False) -> bytes:
    """A minimal valid one-page PDF of the given page size (points), with a filled square.

    `encrypted` adds a standard security handler whose user password is not
    empty (random O and U entries): a reader must ask for a password.
    """
    content = b"0.8 0.1 0.1 rg 10 10 50 50 re f"
    objects = [
        f"<< /Type /Catalog /Pages 2 0 R {catalogue_extra}>>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Contents 4 0 R {extra}>>",
        f"<< /Length {len(content)} >>\nstream\n{content.decode()}\nendstream",
    ]
    trailer_extra = ""
    if encrypted:
        objects.append(f"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -4 /O <{'ab' * 32}> /U <{'cd' * 32}> >>")
        trailer_extra = f"/Encrypt {len(objects)} 0 R /ID [<{'01' * 16}> <{'01' * 16}>] "
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R {trailer_extra}>>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


SVG_NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'


def svg(body: str, width: str = "200", height: str = "100", extra: str = "") -> bytes:
    return f'<svg {SVG_NS} width="{width}" height="{height}" {extra}>{body}</svg>'.encode()


def _billion_laughs() -> bytes:
    entities = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    return f'<?xml version="1.0"?><!DOCTYPE svg [{entities}]><svg {SVG_NS} width="10" height="10"><text>&a9;</text></svg>'.encode()


def _photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth, photo-like RGB picture (compresses like a photo, not like noise)."""
    small = rng.integers(0, 256, (max(2, height // 32), max(2, width // 32), 3), np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def variants(secret_file: str = "/etc/hostname") -> list[Variant]:
    """Every variant, the same on every run (seeded)."""
    rng = np.random.default_rng(SEED)
    out: list[Variant] = []
    add = out.append

    # Header bombs in PNG: every colour type and depth; thin, wide, huge, just over the limit.
    for w, h in ((1, 100_000), (100_000, 1), (30_000, 1_000), (1_000, 30_000), (50_000, 50_000), (2**31 - 1, 1), (16_000, 12_000), (8_001, 8_001)):
        words = ("times",) if max(w, h) / min(w, h) > 100 else ("megapixels",)
        for colour, depth in ((2, 8), (0, 1), (0, 16), (3, 8), (4, 8), (6, 16)):
            if (w, h) in ((50_000, 50_000), (2**31 - 1, 1), (16_000, 12_000), (8_001, 8_001)) and colour != 2:
                continue
            if (w, h) in ((30_000, 1_000), (1_000, 30_000)):
                add(Variant(f"bomb_png_{w}x{h}_c{colour}d{depth}.png", png_header_bomb(w, h, colour, depth), "fails"))
                continue
            add(Variant(f"bomb_png_{w}x{h}_c{colour}d{depth}.png", png_header_bomb(w, h, colour, depth), "refused", words))
    # Header bombs in every other format with a header.
    add(Variant("bomb_jpeg_65535x65535.jpg", jpeg_with_size(65535, 65535), "refused", ("megapixels",)))
    add(Variant("bomb_jpeg_1x65000.jpg", jpeg_with_size(1, 65000), "refused", ("times",)))
    add(Variant("bomb_jpeg_16000x12000.jpg", jpeg_with_size(16000, 12000), "any"))  # read at 1/8: within the limit
    add(Variant("bomb_gif_65535x65535.gif", gif_with_size(65535, 65535), "refused", ("megapixels",)))
    add(Variant("bomb_gif_65535x1.gif", gif_with_size(65535, 1), "refused", ("times",)))
    add(Variant("bomb_bmp_60000x60000.bmp", bmp_with_size(60000, 60000), "refused", ("megapixels",)))
    add(Variant("bomb_bmp_1x-90000.bmp", bmp_with_size(1, -90000), "refused", ("times",)))
    add(Variant("bomb_tiff_100000x100000.tif", tiff_with_size(100_000, 100_000), "refused", ("megapixels",)))
    add(Variant("bomb_tiff_1x1000000.tif", tiff_with_size(1, 1_000_000), "refused", ("times",)))
    add(Variant("bomb_webp_16384x16384.webp", webp_with_size(16384, 16384), "fails"))
    add(Variant("bomb_webp_16384x2.webp", webp_with_size(16384, 2), "refused", ("times",)))
    add(Variant("bomb_psd_30000x30000.psd", psd_with_size(30000, 30000), "refused", ("megapixels",)))
    add(Variant("bomb_psb_300000x300000.psb", psd_with_size(300_000, 300_000, 2), "refused", ("megapixels",)))
    add(Variant("bomb_psb_3x300000.psb", psd_with_size(3, 300_000, 2), "refused", ("times",)))

    # Real pictures that decode: long banners within the aspect limit, strips beyond it, near the pixel limit.
    add(Variant("real_banner_30000x1000.png", png_solid(30_000, 1_000), "loads"))
    add(Variant("real_tower_1000x30000_grey16.png", png_solid(1_000, 30_000, 0, 16), "loads"))
    add(Variant("real_strip_20000x200_rgba.png", png_solid(20_000, 200, 6), "loads"))
    add(Variant("real_strip_20100x200.png", png_solid(20_100, 200), "refused", ("times",)))
    add(Variant("real_line_1x5000.png", png_solid(1, 5000), "refused", ("times",)))
    add(Variant("real_8000x8000_rgba.png", png_solid(8000, 8000, 6), "loads"))
    add(Variant("real_8000x8000_grey1.png", png_solid(8000, 8000, 0, 1), "loads"))
    add(Variant("real_7900x8100_palette.png", png_solid(7900, 8100, 3), "loads"))
    add(Variant("real_8001x8000.png", png_solid(8001, 8000), "refused", ("megapixels",)))

    # Every mode and EXIF orientation on real photos (a JPEG big enough to be drafted).
    photo = _photo(rng, 1800, 1200)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        add(Variant(f"photo_orientation{orientation}.jpg", _encode(photo, "JPEG", exif=exif, quality=85), "loads"))
    add(Variant("photo_cmyk.jpg", _encode(photo.convert("CMYK"), "JPEG"), "loads"))
    add(Variant("photo_grey.jpg", _encode(photo.convert("L"), "JPEG"), "loads"))
    add(Variant("photo_cmyk.tif", _encode(photo.convert("CMYK"), "TIFF", compression="tiff_lzw"), "loads"))
    add(Variant("photo_grey16.tif", _encode(Image.fromarray((np.asarray(photo.convert("L")).astype(np.uint16) * 257)), "TIFF"), "loads"))
    add(Variant("photo_float.tif", _encode(Image.fromarray(np.asarray(photo.convert("L")).astype(np.float32) / 7), "TIFF"), "loads"))
    add(Variant("photo_palette_alpha.png", _encode(photo.convert("P"), "PNG", transparency=3), "loads"))
    add(Variant("photo_la.png", _encode(photo.convert("LA"), "PNG"), "loads"))
    add(Variant("photo_1bit.png", _encode(photo.convert("1"), "PNG"), "loads"))
    add(Variant("photo_rgba.webp", _encode(photo.convert("RGBA"), "WEBP"), "loads"))
    add(Variant("photo.avif", _encode(photo.resize((600, 400)), "AVIF"), "loads"))
    pages = [photo.resize((600, 400)), Image.new("RGB", (600, 400), (0, 0, 255))]
    add(Variant("photo_pages.tif", _encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]), "loads"))
    add(Variant("photo_big.psb", psb_image(photo), "loads"))
    add(Variant("photo_raw.psb", psb_image(photo.resize((300, 200)), rle=False), "loads"))

    # Hostile SVGs.
    add(Variant("svg_billion_laughs.svg", _billion_laughs(), "fails"))
    xxe = f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file://{secret_file}">]><svg {SVG_NS} width="9" height="9"><text>&x;</text></svg>'
    add(Variant("svg_external_entity.svg", xxe.encode(), "fails"))
    add(Variant("svg_external_image.svg", svg(f'<rect width="200" height="100" fill="blue"/><image width="200" height="100" xlink:href="{secret_file}"/>'), "loads"))
    add(Variant("svg_absurd_size.svg", svg("<rect width='10' height='10'/>", "1e9", "1e9"), "refused", ("declares",)))
    add(Variant("svg_thin.svg", svg("<rect width='1' height='100000'/>", "1", "100000"), "refused", ("times",)))
    add(Variant("svg_zero.svg", svg("", "0", "0"), "refused", ("impossible",)))
    add(Variant("svg_negative.svg", svg("", "-5", "10"), "refused", ("impossible",)))
    bomb = base64.b64encode(png_header_bomb(100_000, 100_000)).decode()
    add(Variant("svg_embedded_bomb.svg", svg(f'<image width="200" height="100" href="data:image/png;base64,{bomb}"/>'), "refused", ("embeds",)))
    add(Variant("svg_deep.svg", svg("<g>" * 3000 + "<rect width='5' height='5'/>" + "</g>" * 3000), "fails"))
    add(Variant("svg_big_blur.svg", svg("<filter id='b'><feGaussianBlur stdDeviation='50000'/></filter><rect width='100000' height='100000' filter='url(#b)'/>", "100000", "100000"), "loads"))
    add(Variant("svg_not_xml.svg", b"<svg this is not xml", "fails"))
    add(Variant("svgz_gzip_bomb.svgz", gzip.compress(b"<svg " + b" " * (80 << 20) + b"/>", 9, mtime=0), "refused", ("MB",)))
    add(Variant("svg_no_size.svg", f'<svg {SVG_NS}><rect width="30" height="20" fill="red"/></svg>'.encode(), "loads"))

    # Hostile PDFs.
    add(Variant("pdf_absurd_page.pdf", pdf_page(1e7, 1e7), "refused", ("declares",)))
    add(Variant("pdf_thin_page.pdf", pdf_page(1, 90000), "refused", ("times",)))
    add(Variant("pdf_zero_page.pdf", pdf_page(0, 0), "any"))  # PDFium falls back to a default page
    js = "/OpenAction << /S /JavaScript /JS (app.alert('x'); while(true){}) >>"
    add(Variant("pdf_javascript.pdf", pdf_page(300, 400, catalogue_extra=js), "loads"))
    add(Variant("pdf_no_pages.pdf", pdf_page(300, 400).replace(b"/Count 1", b"/Count 0").replace(b"[3 0 R]", b"[]"), "fails"))
    add(Variant("pdf_password.pdf", pdf_page(300, 400, encrypted=True), "refused", ("password",)))
    add(Variant("pdf_garbage.pdf", b"%PDF-1.7\n" + rng.integers(0, 256, 4000, np.uint8).tobytes(), "fails"))
    add(Variant("ai_postscript.ai", b"%!PS-Adobe-3.0\n%%Creator: Adobe Illustrator\n", "refused", ("PDF",)))

    # Truncated, bit-flipped, and random bytes behind every magic number.
    valid = [v for v in out if v.expect == "loads" and len(v.data) > 200 and not v.name.startswith(("svg", "pdf"))]
    for v in valid[:: max(1, len(valid) // 12)]:
        stem, ext = v.name.rsplit(".", 1)
        add(Variant(f"cut_{stem}.{ext}", v.data[: len(v.data) // 3], "fails"))
        flipped = bytearray(v.data)
        for at in rng.integers(len(flipped) // 4, len(flipped), 24):
            flipped[at] ^= 0xFF
        add(Variant(f"flip_{stem}.{ext}", bytes(flipped), "any"))
    for magic, ext in ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"GIF89a", "gif"), (b"II*\0", "tif"), (b"RIFF\0\0\0\0WEBP", "webp"), (b"8BPS\0\1", "psd"), (b"8BPS\0\2", "psb"), (b"%PDF-1.4", "pdf"), (b"\0\0\0\x18ftypheic", "heic"), (b"\0\0\0\x1cftypavif", "avif"), (b"BM", "bmp")):
        add(Variant(f"noise_{ext}.{ext}", magic + rng.integers(0, 256, 3000, np.uint8).tobytes(), "fails"))
    add(Variant("empty.png", b"", "fails"))
    add(Variant("text.jpg", b"this is not a picture\n", "fails"))
    return out


def write(folder: str | Path, secret_file: str = "/etc/hostname") -> dict[str, Variant]:
    """Write every variant into `folder`; returns them by file path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for variant in variants(secret_file):
        path = folder / variant.name
        path.write_bytes(variant.data)
        written[str(path)] = variant
    return written


if __name__ == "__main__":
    made = write(sys.argv[1] if len(sys.argv) > 1 else "hostile")
    kinds: dict[str, int] = {}
    for variant in made.values():
        kinds[variant.expect] = kinds.get(variant.expect, 0) + 1
    print(f"{len(made)} variants: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
