"""What the team-catalogue benchmarks share: the server, synthetic catalogues written through the real store, and a
synthetic "model" for updates made from real files.

* `start` runs the embedded PostgreSQL server on a data folder kept between
  runs (default /work/cache/pg-1m, or $SWIMSEARCH_BENCH_PG_DATA: several
  people's runs each need a server, and a data folder, of their own), with
  bench_pg.py's server settings.
* `sqlite_catalogue` is the synthetic SQLite catalogue of a size (bench_scale.py's
  data, fitted by the real engine at the app's defaults: augmented vectors,
  neighbour lists), with its exact-cosine truth and the queries, in the same
  folder; `ensure_sqlite` makes them when missing or of an older format.
* `write_team` copies such a catalogue into a team catalogue with `swimsearch.copying.copy_catalogue`: the store's
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
import json
import os
import time
from pathlib import Path

import numpy as np

from common import WORK

import bench_scale
from bench_pg import SERVER_SETTINGS, centres_from, start_server

# An environment variable, not an option: the clients pg_concurrency.py spawns read it too.
DATA = Path(os.environ.get("SWIMSEARCH_BENCH_PG_DATA")
            or ("/work/cache/pg-1m" if Path("/work/cache").is_dir() else WORK / "pg-store"))
CENTRES = Path("/work/cache/clothing-fp32.npz")


def sqlite_catalogue(size: int, data: Path = DATA) -> Path:
    """The synthetic SQLite catalogue of `size` designs in `data` (made by `ensure_sqlite`)."""
    path = data / f"synthetic-{size}.swimcat"
    if not path.exists():
        raise SystemExit(f"no synthetic catalogue of {size:,} designs in {data}: run bench/bench_pg.py --store --sizes {size} first")
    return path


def queries(data: Path = DATA) -> np.ndarray:
    """bench_scale's query embeddings, saved beside the catalogues by `ensure_sqlite`."""
    path = data / "queries.npy"
    if not path.exists():
        raise SystemExit(f"no queries.npy in {data}: run bench/bench_pg.py --store first")
    return np.load(path)


def current_format(path: Path) -> bool:
    """Whether a catalogue file holds what today's search reads (format 3 or later, with neighbour lists)."""
    import sqlite3

    from swimsearch.stores.sqlite_schema import SCHEMA_VERSION

    if not path.exists():
        return False
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        # Format 3 brought the neighbour lists today's search reads; a later format only adds what a search
        # by a detail reads (format 5), which these synthetic designs, made without pictures, cannot have.
        return (row is not None and 3 <= json.loads(row[0]) <= SCHEMA_VERSION
                and raw.execute("SELECT 1 FROM neighbours LIMIT 1").fetchone() is not None)
    except sqlite3.DatabaseError:
        return False
    finally:
        raw.close()


def ensure_sqlite(size: int, data: Path = DATA, reuse: bool = True) -> tuple[Path, dict]:
    """The synthetic SQLite catalogue of `size`, its truth and the queries in `data`; made when missing, outdated
    or not `reuse`d. Returns (path, build timings: empty when reused)."""
    from bench_pg import prepare

    data.mkdir(parents=True, exist_ok=True)
    synthetic = bench_scale.Synthetic(centres_from(CENTRES if CENTRES.exists() else None))
    if not (data / "queries.npy").exists():
        np.save(data / "queries.npy", synthetic.queries())
    path = data / f"synthetic-{size}.swimcat"
    keep = reuse and current_format(path)
    if path.exists() and not keep:
        (data / f"truth-{size}.npy").unlink(missing_ok=True)
    path, _, built = prepare(size, data, synthetic, keep)
    return path, built


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
