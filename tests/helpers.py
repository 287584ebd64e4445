"""Helpers shared by the tests, the UI tests and the test scripts in tools/.

A module of its own, not conftest.py: pytest imports every conftest.py as
"conftest", so `from conftest import ...` could find tests/ui/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def _permission_prefix() -> list[str] | None:
    """Command prefix under which file permissions apply even for root (None: cannot arrange it).

    Root reads every file whatever its permission bits; with the two
    capabilities that allow it dropped from the bounding set (setpriv), it
    does not, so unreadable files and read-only folders can really be tested.
    """
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return prefix if probe.returncode == 0 else None


PERMISSIONS = _permission_prefix()
needs_permissions = pytest.mark.skipif(PERMISSIONS is None, reason="cannot make root respect file permissions here")

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
REPO = TESTS.parent
CLOTHING = REPO.parent / "shared" / "datasets" / "clothing"


class FakeEmbedder:
    """A tiny deterministic stand-in for the trunk, for tests where the real model is not the point.

    Embeds a picture as a fixed random projection of its 8x8 colour thumbnail:
    similar pictures get similar vectors, and it runs in microseconds.
    """

    size = 32
    dim = 96
    name = "fake-embedder@32"
    sha256 = "f" * 64

    def __init__(self):
        import numpy as np

        self._projection = np.random.default_rng(42).standard_normal((8 * 8 * 3, self.dim)).astype("float32")

    def embed(self, pixels):
        import numpy as np

        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim == 3:
            pixels = pixels[None]
        thumb = pixels.reshape(len(pixels), 8, 4, 8, 4, 3).mean(axis=(2, 4)).reshape(len(pixels), -1) / 255.0
        return np.maximum(thumb @ self._projection, 0).astype(np.float32)


class FakeMapEmbedder(FakeEmbedder):
    """The fake trunk with a feature map of the real one's shape (1280 x 7 x 7), so a build keeps regional vectors.

    Its map is a fixed random projection of each cell's mean colour: pictures
    sharing a coloured patch share cells, which is all a detail search needs here.
    """

    has_feature_map = True
    feature_map_shape = (1280, 7, 7)

    def __init__(self):
        import numpy as np

        super().__init__()
        self._cells = np.random.default_rng(7).standard_normal((3, 1280)).astype("float32")

    def embed_with_maps(self, pixels):
        import numpy as np

        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.ndim == 3:
            pixels = pixels[None]
        n, size = len(pixels), pixels.shape[1]
        edges = np.linspace(0, size, 8).astype(int)
        cells = np.stack([
            np.stack([pixels[:, edges[r]:edges[r + 1], edges[c]:edges[c + 1]].mean(axis=(1, 2)) for c in range(7)], axis=1)
            for r in range(7)
        ], axis=1) / 255.0  # (n, 7, 7, 3)
        maps = np.maximum(cells @ self._cells, 0).transpose(0, 3, 1, 2)
        return self.embed(pixels), np.ascontiguousarray(maps, dtype=np.float32)


def make_pattern_images(
    folder: Path, count: int, *, start: int = 0, size: int = 48, prefix: str = "img", family: int = 1
) -> list[Path]:
    """`count` small PNGs of coloured blocks, each a different seeded pattern.

    With `family` > 1, consecutive images come in families of that size: a
    shared base pattern with small variations, like colourways of one design.
    """
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(start, start + count):
        rng = np.random.default_rng(n)
        if family > 1:
            base = np.random.default_rng(10_000 + n // family).integers(0, 256, (4, 4, 3))
            blocks = np.clip(base + rng.integers(-40, 41, (4, 4, 3)), 0, 255).astype(np.uint8)
        else:
            blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        picture = np.kron(blocks, np.ones((size // 4, size // 4, 1), dtype=np.uint8))
        path = folder / f"{prefix}{n:04d}.png"
        Image.fromarray(picture).save(path)
        paths.append(path)
    return paths


def build_pattern_catalogue(folder: Path, path: Path, embedder, config, count: int, **pattern) -> tuple[Path, Path]:
    """Generate `count` pattern images in `folder` and build a catalogue of them at `path`."""
    make_pattern_images(folder, count, **pattern)
    return folder, built_catalogue(path, folder, embedder, config)


def built_catalogue(path: Path, folder: Path, embedder, config=None) -> Path:
    """A real catalogue of the pictures in `folder`, built at `path` (default settings unless `config`)."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.config import EngineConfig

    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(embedder, config or EngineConfig())
    return path


def copy_clothing_photos(clothing: Path, folder: Path, count: int, *, offset: int = 0) -> list[Path]:
    """Copy `count` labelled clothing photos (every 7th, for variety) into `folder`."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((clothing / "images").glob("*.jpg"))[offset::7][:count]
    out = []
    for source in sources:
        target = folder / source.name
        shutil.copy(source, target)
        target.chmod(0o644)
        out.append(target)
    return out


#: The kinds of print `make_motif_images` draws: the real model tells them apart, whatever their colours.
MOTIFS = ("stripes", "dots", "checks", "diagonal", "rings")


def motif_picture(kind: str, seed: int, size: int = 160):
    """A generated fabric print of one kind (`MOTIFS`), in a seeded colour, spacing and phase."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    ink = tuple(int(v) for v in rng.integers(20, 235, 3))
    picture = Image.new("RGB", (size, size), (245, 245, 240))
    draw = ImageDraw.Draw(picture)
    step, shift = int(rng.integers(14, 22)), int(rng.integers(0, 14))
    if kind == "stripes":
        for y in range(shift - step, size, step):
            draw.rectangle([0, y, size, y + step // 2], fill=ink)
    elif kind == "dots":
        for y in range(shift, size, step):
            for x in range(shift, size, step):
                draw.ellipse([x - step // 4, y - step // 4, x + step // 4, y + step // 4], fill=ink)
    elif kind == "checks":
        for y in range(shift - step, size, step):
            for x in range(shift - step, size, step):
                if ((x - shift) // step + (y - shift) // step) % 2 == 0:
                    draw.rectangle([x, y, x + step, y + step], fill=ink)
    elif kind == "diagonal":
        for x in range(-size, 2 * size, step):
            draw.line([(x, 0), (x + size, size)], fill=ink, width=step // 3)
    elif kind == "rings":
        centre = size // 2 + shift - 7
        for radius in range(step // 2, size, step):
            draw.ellipse([centre - radius] * 2 + [centre + radius] * 2, outline=ink, width=step // 4)
    else:
        raise ValueError(f"unknown motif {kind!r}")
    return picture


def make_motif_images(folder: Path, per_kind: int, *, kinds=MOTIFS, start: int = 0) -> list[Path]:
    """`per_kind` prints of each kind as PNGs named "<kind>-<n>.png" (n from `start`), in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in kinds:
        for n in range(start, start + per_kind):
            path = folder / f"{kind}-{n}.png"
            motif_picture(kind, 1000 * MOTIFS.index(kind) + n).save(path)
            paths.append(path)
    return paths


def _v1_config():
    from swimsearch.config import EngineConfig

    return EngineConfig(bits=64, hash_dim=16, rerank_dim=16, lsh_tables=4, lsh_key_bits=8, exact_below=0, batch_size=8)


#: The settings tests/data/catalogue-v1.swimcat was built with (tools/make_v1_catalogue.py).
V1_CONFIG = _v1_config()



def print_motif():
    """A bold print: coloured rings and stripes, unlike anything in the sample photos."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (240, 240), (250, 220, 40))
    draw = ImageDraw.Draw(picture)
    for n, colour in enumerate(((200, 20, 90), (20, 120, 200), (250, 220, 40), (10, 10, 10))):
        inset = 20 + n * 25
        draw.ellipse((inset, inset, 240 - inset, 240 - inset), fill=colour)
    for x in range(0, 240, 30):
        draw.rectangle((x, 0, x + 8, 240), fill=(10, 10, 10))
    return picture


def save_with_print(photos: list[Path], folder: Path, sizes, places):
    """`photos` again as folder/with-print-N.jpg, `print_motif()` pasted on each at its size (a share of the
    picture's longer side) and place (fractions of the room left); returns the motif."""
    from PIL import Image

    motif = print_motif()
    for n, (photo, size, where) in enumerate(zip(photos, sizes, places)):
        design = Image.open(photo).convert("RGB")
        side = round(size * max(design.size))
        design.paste(motif.resize((side, side)), (round(where[0] * (design.width - side)), round(where[1] * (design.height - side))))
        design.save(folder / f"with-print-{n}.jpg", quality=92)
    return motif


#: The share of the query picture's width the print takes, at its bottom right corner (`make_steering_designs`).
PRINT_SHARE = 0.4


def make_steering_designs(folder: Path) -> tuple[Path, tuple[float, float, float, float]]:
    """Generated pictures for steering a search (issue 12), from 20 sample photos.

    Besides the photos: three of them with a bold print pasted on at other
    places and sizes (with-print-N.jpg); tshirt-01.jpg in another colourway
    (tee-other-colourway.jpg, hue turned 120 degrees) and a tighter crop of it
    in its own colours (tee-cropped.jpg). Returns the query picture (beside the
    folder: dress-02.jpg with the print on its hem) and the box of the print on
    it, in fractions.
    """
    import shutil

    import numpy as np
    from PIL import Image

    from swimsearch.colour import hue_turned

    sample = REPO / "resources" / "sample"
    folder.mkdir(parents=True, exist_ok=True)
    samples = sorted(sample.glob("*.jpg"))[:20]
    for photo in samples:
        shutil.copy(photo, folder / photo.name)
    motif = save_with_print(samples[12:15], folder, (0.45, 0.4, 0.5), ((0.05, 0.1), (0.6, 0.5), (0.3, 0.05)))
    tee = Image.open(sample / "tshirt-01.jpg").convert("RGB")
    Image.fromarray(hue_turned(np.asarray(tee), 120)).save(folder / "tee-other-colourway.jpg", quality=92)
    w, h = tee.size
    tee.crop((round(0.08 * w), round(0.08 * h), round(0.92 * w), round(0.92 * h))).save(folder / "tee-cropped.jpg", quality=92)
    shutil.copy(sample / "tshirt-01.jpg", folder / "tshirt-01.jpg")
    query = Image.open(sample / "dress-02.jpg").convert("RGB")  # a dress of the catalogue, the print on its hem
    side = round(PRINT_SHARE * query.width)
    query.paste(motif.resize((side, side)), (query.width - side, query.height - side))
    query_path = folder.parent / "query-with-print.png"
    query.save(query_path)
    box = (1 - side / query.width, 1 - side / query.height, side / query.width, side / query.height)
    return query_path, box


def slow_mapping(monkeypatch, seconds: float) -> None:
    """The array cache's pages mapped in slowly (a large file's mapping: `seconds` unless stopped between its
    steps of 10 ms), for tests of what stops it (mapped_pages.populate)."""
    import time

    from swimsearch import mapped_pages

    real = mapped_pages.populate

    def slow(maps, stopped):
        for _ in range(int(seconds * 100)):
            if stopped():
                return False
            time.sleep(0.01)
        return real(maps, stopped)

    monkeypatch.setattr(mapped_pages, "populate", slow)
