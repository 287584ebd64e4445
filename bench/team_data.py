"""What the team-catalogue benchmarks share: the server, synthetic catalogues written through the real store, and a
synthetic "model" for updates made from real files.

* `start` runs the embedded PostgreSQL server on a data folder kept between
  runs (default /work/cache/pg-store), with bench_pg.py's server settings.
* `write_team` copies a synthetic SQLite catalogue (bench_scale.py's data,
  fitted by the real engine; the research's are in /work/cache/pg-research)
  into a team catalogue with `swimsearch.copying.copy_catalogue`: the store's
  own import, its fit swapped in with the HNSW index built by the schema's
  refit_finish(), and the copy's digest check.
* `SyntheticEmbedder` stands in for the trunk of those catalogues (model
  "synthetic"): it turns a picture into an embedding made the way
  bench_scale.Synthetic makes them (between a real clothing embedding and a
  neighbour, plus noise), seeded by the picture's pixels. So updates, kills
  and the window run the real build, the real store and the real window on
  files, against a catalogue of a million designs.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from common import WORK

import bench_scale
from bench_pg import SERVER_SETTINGS, centres_from, start_server

DATA = Path("/work/cache/pg-store") if Path("/work/cache").is_dir() else WORK / "pg-store"
RESEARCH = Path("/work/cache/pg-research")
CENTRES = Path("/work/cache/clothing-fp32.npz")


def sqlite_catalogue(size: int) -> Path:
    """The synthetic SQLite catalogue of `size` designs (ours, upgraded to the current format; else the research's
    or bench/work's: a catalogue of an older format must be opened once for writing to be upgraded)."""
    for folder in (DATA, RESEARCH, WORK):
        path = folder / f"synthetic-{size}.swimcat"
        if path.exists():
            return path
    raise SystemExit(f"no synthetic catalogue of {size:,} designs: run bench/bench_pg.py --sizes {size} first")


def start(data: Path = DATA):
    """The embedded server on `data`: (address of a database, stop function)."""
    connect, stop = start_server(data, SERVER_SETTINGS)
    with connect() as conn:
        uri = conn.info.dsn
    host = dict(part.split("=", 1) for part in uri.split() if "=" in part)

    def address(database: str, catalogue: str = "synthetic") -> str:
        with connect() as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                conn.execute(f'CREATE DATABASE "{database}"')
        return f"postgresql://postgres@/{database}?host={host['host']}&port={host.get('port', 5432)}&catalogue={catalogue}"

    return address, connect, stop


def write_team(address: str, source: Path, root: Path) -> dict:
    """Copy the SQLite catalogue `source` into the team catalogue `address` through the store; timings."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.copying import copy_catalogue

    marks: dict[str, float] = {}
    started = time.perf_counter()

    def progress(phase: str, done: int, total: int) -> None:
        marks.setdefault(f"{phase}_started", time.perf_counter() - started)
        if done >= total:
            marks[f"{phase}_done"] = time.perf_counter() - started

    root.mkdir(parents=True, exist_ok=True)
    with Catalogue.open(source, readonly=True) as sqlite, Catalogue.create(address, root) as team:
        report = copy_catalogue(sqlite, team.writer(), progress)
    return {"copy_s": time.perf_counter() - started, "marks": marks, "images": report.images,
            "embeddings_sha256": report.embeddings_sha256, "index_sha256": report.index_sha256}


def vacuum(connect, database: str) -> float:
    """VACUUM ANALYZE after a bulk load, as autovacuum would (visibility map: counts read the small indexes)."""
    started = time.perf_counter()
    with connect(database) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - started


class SyntheticEmbedder:
    """The "synthetic" model of bench_scale's catalogues: a picture's pixels seed a synthetic embedding."""

    name = "synthetic"
    sha256 = "0" * 64
    size = 32

    def __init__(self, centres: np.ndarray | None = None):
        synthetic = bench_scale.Synthetic(centres if centres is not None else centres_from(CENTRES if CENTRES.exists() else None))
        self.centres, self.neighbours, self.directions = synthetic.centres, synthetic.neighbours, synthetic.directions
        self.dim = self.centres.shape[1]

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.asarray(pixels)
        if pixels.ndim == 3:
            pixels = pixels[None]
        out = np.empty((len(pixels), self.dim), dtype=np.float32)
        for n, picture in enumerate(pixels):
            seed = int.from_bytes(hashlib.sha256(np.ascontiguousarray(picture).tobytes()).digest()[:8], "little")
            rng = np.random.default_rng(seed)
            which = int(rng.integers(len(self.centres)))
            towards = self.neighbours[which, int(rng.integers(self.neighbours.shape[1]))]
            beta = float(rng.uniform(0.0, 0.5))
            noise = rng.standard_normal(len(self.directions)).astype(np.float32) @ self.directions
            out[n] = (1 - beta) * self.centres[which] + beta * self.centres[towards] + bench_scale.NOISE * noise
        return out


def make_pictures(folder: Path, count: int, start: int = 0) -> list[Path]:
    """`count` tiny distinct PNGs (each seeds its own synthetic embedding)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(start, start + count):
        pixels = np.random.default_rng(n).integers(0, 256, (8, 8, 3), dtype=np.uint8)
        path = folder / f"design-{n:06d}.png"
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(path)
        paths.append(path)
    return paths
