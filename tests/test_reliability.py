"""Reliability: hostile files, killed builds, damaged catalogues, concurrent use, full disks.

Tested the way SQLite and Pillow test themselves: generated hostile inputs and
real crashes (SIGKILL of a real `swimsearch index` process). Where root would
read a file whatever its permissions, the build runs with the capabilities
that let root ignore permission bits dropped (`setpriv`), so the permission
bits are really tested.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zlib
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import DATA, PERMISSIONS, REPO, build_pattern_catalogue, needs_permissions, copy_clothing_photos, make_pattern_images
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.errors import CatalogueError
from swimsearch.search import SearchEngine

PYTHON = sys.executable


def cli(*args, prefix=(), timeout=600, **kwargs):
    return subprocess.run(
        [*prefix, PYTHON, "-m", "swimsearch.cli", *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, **kwargs,
    )


def _png_bomb() -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


def hostile_corpus(folder: Path) -> dict[str, int]:
    """Write every kind of awkward file; returns the expected build counts."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = Image.open(DATA / "garment_a.jpg").convert("RGB")
    readable = 0

    def save(name, image, **kwargs):
        nonlocal readable
        image.save(folder / name, **kwargs)
        readable += 1

    # Unreadable on purpose.
    (folder / "zero.jpg").write_bytes(b"")
    full_jpeg = _jpeg_bytes(photo, quality=90)
    (folder / "truncated.jpg").write_bytes(full_jpeg[: len(full_jpeg) // 2])
    png = io.BytesIO()
    photo.save(png, "PNG")
    (folder / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (folder / "random.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())
    (folder / "text.png").write_text("this is a shopping list, not a picture\n")
    (folder / "bomb.png").write_bytes(_png_bomb())
    (folder / "locked.jpg").write_bytes(full_jpeg)
    (folder / "locked.jpg").chmod(0)
    (folder / "vanishing.jpg").write_bytes(full_jpeg)  # deleted after the scan, before it is read
    (folder / "growing.jpg").write_bytes(full_jpeg[:2000])  # still being written during the build
    with open(os.path.join(os.fsencode(folder), b"bad-name-\xff\xfe.jpg"), "wb") as fh:  # not valid UTF-8
        fh.write(full_jpeg)
    unreadable = 10

    # Readable, however awkward.
    save("one-pixel.png", Image.new("RGB", (1, 1), (200, 0, 0)))
    save("panorama.jpg", Image.new("RGB", (12000, 200), (0, 90, 160)))
    save("cmyk.jpg", photo.convert("CMYK"))
    save("grey16.png", Image.fromarray((np.asarray(photo.convert("L"), np.uint16) * 257)))
    save("grey8.png", photo.convert("L"))
    palette = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    save("palette-transparent.png", palette, transparency=0)
    frames = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    save("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=200, loop=0)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        save(f"exif-{orientation}.jpg", photo, exif=exif, quality=90)
    save("photo.webp", photo, quality=80)
    save("pages.tif", photo, save_all=True, append_images=[photo.convert("L").convert("RGB")])
    save("maillot été 🌊.jpg", photo)
    save("x" * 230 + ".jpg", photo)
    save("it's \"quoted\"; DROP TABLE images;--.jpg", photo)
    os.symlink(folder, folder / "loop")  # a symlink loop: must not hang the scan
    return {"added": readable, "unreadable": unreadable}


BUILD_SCRIPT = r"""
import json, sys
from pathlib import Path
from swimsearch.catalogue import Catalogue, as_dict
from swimsearch.config import EngineConfig
from swimsearch.model import Embedder, default_model_path

folder, path = Path(sys.argv[1]), Path(sys.argv[2])
full = (folder / "exif-1.jpg").read_bytes()

def progress(phase, done, total):
    if phase == "scan" and total:
        vanishing = folder / "vanishing.jpg"
        if vanishing.exists():
            vanishing.unlink()  # deleted between the scan and the read
            with open(folder / "growing.jpg", "ab") as fh:
                fh.write(full[2000:4000])  # still being written

with Catalogue.open_or_create(path, folder) as catalogue:
    report = catalogue.update(Embedder(default_model_path()), EngineConfig(), progress=progress)
    print(json.dumps({"report": as_dict(report), "counts": catalogue.counts()}))
"""


@needs_permissions
def test_hostile_corpus_builds_and_reports_each_bad_file(tmp_path):
    folder = tmp_path / "hostile"
    expected = hostile_corpus(folder)
    catalogue = tmp_path / "hostile.swimcat"
    done = subprocess.run([*PERMISSIONS, PYTHON, "-c", BUILD_SCRIPT, folder, catalogue], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    report, counts = result["report"], result["counts"]
    reasons = {path: reason for path, reason in report["errors"]}
    assert report["added"] == expected["added"] and report["unreadable"] == expected["unreadable"], reasons
    assert counts == {"images": 30, "readable": 20, "unreadable": 10, "searchable": 20}
    assert "empty" in reasons["zero.jpg"] or "not an image" in reasons["zero.jpg"]
    assert "truncated" in reasons["truncated.jpg"] and "truncated" in reasons["growing.jpg"]
    assert "too large" in reasons["bomb.png"]
    assert "permission denied" in reasons["locked.jpg"]
    assert "does not exist" in reasons["vanishing.jpg"]
    assert "not valid UTF-8" in reasons["bad-name-\\xff\\xfe.jpg"]
    assert all("Traceback" not in r for r in reasons.values())

    # The file finished writing and the vanished one is gone: an update notices both.
    photo = (folder / "exif-1.jpg").read_bytes()
    (folder / "growing.jpg").write_bytes(photo)
    again = cli("index", folder, "--catalogue", catalogue, "--json", prefix=PERMISSIONS)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["updated"], summary["removed"], summary["added"]) == (1, 1, 0)
    with Catalogue.open(catalogue) as opened:
        engine = SearchEngine(opened, None, EngineConfig())
        quoted = opened.record_by_path(folder / "it's \"quoted\"; DROP TABLE images;--.jpg")
        assert quoted is not None and engine.search_id(quoted.image_id, top_n=1).matches[0].image_id == quoted.image_id
        assert opened.counts()["images"] == 29


# --- killed builds -------------------------------------------------------------------


def check_intact(path: Path) -> dict:
    """The invariants a killed build must never break."""
    with Catalogue.open(path) as catalogue:  # opens without complaint,
        catalogue.check()  # and every checksum and record holds (catalogue format 2)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        images = conn.execute("SELECT count(*), count(DISTINCT path) FROM images").fetchone()
        assert images[0] == images[1]
        orphans = conn.execute("SELECT count(*) FROM embeddings WHERE image_id NOT IN (SELECT id FROM images)").fetchone()[0]
        assert orphans == 0
        coded_list = [i for (blob,) in conn.execute("SELECT ids FROM code_blocks") for i in np.frombuffer(blob, "<i8").tolist()]
        assert len(coded_list) == len(set(coded_list)), "an image sits in two code blocks"
        coded = set(coded_list)
        embedded = {r[0] for r in conn.execute("SELECT image_id FROM embeddings")}
        assert coded <= embedded, "codes of images that are gone"
        tables: dict[int, list[int]] = {}
        for table_no, blob in conn.execute("SELECT table_no, ids FROM buckets"):
            tables.setdefault(table_no, []).extend(np.frombuffer(blob, "<i8").tolist())
        for members in tables.values():
            assert len(members) == len(set(members)), "an image sits twice in one LSH table"
            assert set(members) == coded, "bucket tables and codes disagree"
        return {"images": images[0], "coded": len(coded)}


def _committed_images(path: Path) -> int:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
            return conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    except sqlite3.Error:
        return 0


def run_and_kill(folder: Path, victim, *, seconds: float | None = None, images: int | None = None, store=None) -> bool:
    """Start `swimsearch index`, SIGKILL it after `seconds` or once `images` are committed; check the catalogue.

    Returns whether it was killed (False: it finished first).
    """
    process = subprocess.Popen([PYTHON, "-m", "swimsearch.cli", "index", str(folder), "--catalogue", str(victim)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + (seconds if seconds is not None else 600)
    team = store is not None and store.team
    while process.poll() is None and time.monotonic() < deadline:
        if images is not None and (_team_committed(store, victim) if team else _committed_images(victim)) >= images:
            break
        time.sleep(0.005)
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait()
    if team:
        if _team_committed(store, victim) or images is None:
            _check_team_catalogue_if_there(store, victim)
    elif victim.exists():
        check_intact(victim)
    return killed


def _team_committed(store, victim) -> int:
    try:
        return store.query(victim, "SELECT count(*) FROM {s}.embeddings")[0][0]
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def _check_team_catalogue_if_there(store, victim) -> None:
    from swimsearch.errors import CatalogueError

    try:
        store.check_intact(victim)
    except CatalogueError as exc:  # killed before the catalogue was created: nothing there
        assert "no team catalogue named" in str(exc), exc


def ranked(path, queries: list[Path]) -> list:
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, None, EngineConfig())
        out = []
        for query in queries:
            record = catalogue.record_by_path(query)
            out.append([(m.relpath, round(m.score, 5)) for m in engine.search_id(record.image_id, top_n=8).matches])
        return out


@pytest.mark.slow
def test_sigkilled_builds_lose_nothing(store, tmp_path, clothing):
    folder = tmp_path / "photos"
    photos = copy_clothing_photos(clothing, folder, 150)
    clean = store.location("clean")
    assert cli("index", folder, "--catalogue", clean).returncode == 0

    victim = store.location("killed") if store.team else tmp_path / "killed.swimcat"
    rng = random.Random(20261122)
    # Kill moments: a random time in the first second (start-up, creating the
    # catalogue, scanning), or the moment the build has committed a random number of
    # images (mid-embedding, or at 150: while it fits and writes the index).
    moments = [("seconds", rng.uniform(0.05, 1.0)) for _ in range(3)]
    moments += [("images", n) for n in sorted(rng.sample(range(1, 151), 9))]
    kills = sum(run_and_kill(folder, victim, store=store, **{kind: value}) for kind, value in moments)
    assert kills >= 10
    final = cli("index", folder, "--catalogue", victim)
    assert final.returncode == 0, final.stderr
    state = store.check_intact(str(victim)) if store.team else check_intact(victim)
    assert state == {"images": 150, "coded": 150}
    assert ranked(victim, photos[::15]) == ranked(clean, photos[::15])


# --- damaged and unusual catalogues -----------------------------------------------------


@pytest.fixture
def built(tmp_path, fake_embedder, small_config):
    folder = tmp_path / "pics"
    return build_pattern_catalogue(folder, folder / "pics.swimcat", fake_embedder, small_config, 60, family=6)


def test_truncated_catalogue_is_refused_untouched(built):
    _, path = built
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    before = path.read_bytes()
    with pytest.raises(CatalogueError, match="cut short|damaged"):
        with Catalogue.open(path) as catalogue:
            SearchEngine(catalogue, None, EngineConfig())
    assert path.read_bytes() == before


def test_catalogue_with_garbage_pages_reports_damage(built, small_config, fake_embedder):
    _, path = built
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 8192
    for offset in range(3 * page, len(data) - page, 5 * page):  # scribble over pages, keep the header
        data[offset : offset + 512] = os.urandom(512)
    path.write_bytes(bytes(data))
    with pytest.raises(CatalogueError, match="damaged|cannot be used|not a SwimSearch"):
        with Catalogue.open(path) as catalogue:
            SearchEngine(catalogue, fake_embedder, small_config)
            catalogue.update(fake_embedder, small_config)


@needs_permissions
def test_read_only_catalogue_searches_but_refuses_updates(built, tmp_path):
    folder, path = built
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    script = (
        "import sys\n"
        "from swimsearch.catalogue import Catalogue\n"
        "from swimsearch.config import EngineConfig\n"
        "from swimsearch.errors import CatalogueError\n"
        "from swimsearch.search import SearchEngine\n"
        "sys.path.insert(0, 'tests')\n"
        "from helpers import FakeEmbedder\n"
        "c = Catalogue.open(sys.argv[1])\n"
        "e = SearchEngine(c, None, EngineConfig())\n"
        "print('readonly', c.readonly, 'results', len(e.search_random(top_n=5).matches))\n"
        "try:\n"
        "    c.update(FakeEmbedder(), EngineConfig())\n"
        "except CatalogueError as exc:\n"
        "    print('refused:', exc)\n"
    )
    before = path.read_bytes()
    os.chmod(path, 0o444)
    os.chmod(folder, 0o555)
    try:
        done = subprocess.run([*PERMISSIONS, PYTHON, "-c", script, path], cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        os.chmod(folder, 0o755)
        os.chmod(path, 0o644)
    assert done.returncode == 0, done.stderr
    assert "readonly True results 5" in done.stdout
    assert "refused:" in done.stdout and "read-only" in done.stdout
    assert path.read_bytes() == before


def test_moved_folder_and_deleted_images(built, tmp_path, fake_embedder, small_config):
    folder, path = built
    moved = tmp_path / "renamed-folder"
    folder.rename(moved)
    for victim in sorted(moved.glob("*.png"))[:10]:
        victim.unlink()
    with Catalogue.open(moved / "pics.swimcat") as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        matches = engine.search(moved / "img0011.png", top_n=20).matches
        assert matches[0].relpath == "img0011.png" and not matches[0].missing
        missing = [m for m in matches if m.missing]
        assert missing and all(not Path(m.path).exists() for m in missing)
        report = catalogue.update(fake_embedder, small_config)
        assert report.removed == 10 and report.unchanged == 50


def test_a_copied_folder_with_its_catalogue_inside_describes_the_copy(built, tmp_path, fake_embedder, small_config):
    folder, path = built
    copy = tmp_path / "copy-of-pics"
    shutil.copytree(folder, copy)
    (copy / "img0011.png").unlink()  # the copy is edited; the original is not
    with Catalogue.open(copy / "pics.swimcat") as catalogue:
        assert catalogue.root == copy
        matches = SearchEngine(catalogue, fake_embedder, small_config).search(copy / "img0012.png", top_n=5).matches
        assert all(Path(m.path).parent == copy for m in matches)
        assert catalogue.update(fake_embedder, small_config).removed == 1
    with Catalogue.open(path) as original:
        assert original.root == folder and original.info()["images"] == 60


def test_a_copied_folder_whose_first_pictures_were_deleted_still_describes_the_copy(built, tmp_path, fake_embedder, small_config):
    """A reviewer deleted the first pictures of a copied folder: the catalogue inside took the original's
    folder for its own (only the first 20 pictures were looked for), and showed the original's designs."""
    folder, _ = built
    copy = tmp_path / "copy-of-pics"
    shutil.copytree(folder, copy)
    for victim in sorted(copy.glob("*.png"))[:25]:
        victim.unlink()
    with Catalogue.open(copy / "pics.swimcat") as catalogue:
        assert catalogue.root == copy
        matches = SearchEngine(catalogue, fake_embedder, small_config).search(copy / "img0040.png", top_n=10).matches
        assert matches[0].relpath == "img0040.png" and all(Path(m.path).parent == copy for m in matches)


def test_catalogue_left_behind_by_its_folder_says_so(built, tmp_path, fake_embedder, small_config):
    folder, path = built
    lonely = tmp_path / "elsewhere" / "pics.swimcat"
    lonely.parent.mkdir()
    shutil.copy(path, lonely)
    shutil.rmtree(folder)
    with Catalogue.open(lonely) as catalogue:
        engine = SearchEngine(catalogue, None, small_config)
        assert all(m.missing for m in engine.search_random(top_n=5).matches)
        with pytest.raises(CatalogueError, match="no longer exists"):
            catalogue.update(fake_embedder, small_config)


# --- concurrent use ---------------------------------------------------------------------------


def test_searching_while_a_build_writes_stays_consistent(store, tmp_path, fake_embedder, small_config):
    folder, path = build_pattern_catalogue(tmp_path / "pics", store.location(), fake_embedder, small_config, 120, family=4)
    make_pattern_images(folder, 400, start=1000, family=4)
    errors: list[BaseException] = []
    done = threading.Event()

    def build():
        try:
            with Catalogue.open(path) as writer:
                writer.update(fake_embedder, small_config.with_changes(batch_size=4))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=build)
    thread.start()
    sizes = []
    with Catalogue.open(path) as reader:
        engine = SearchEngine(reader, fake_embedder, small_config)
        while not done.is_set() or not sizes:
            engine.reload()
            sizes.append(len(engine))
            result = engine.search(folder / "img0007.png", top_n=5)
            assert result.matches[0].relpath == "img0007.png" and result.matches[0].score == 1.0
            assert len({m.image_id for m in result.matches}) == len(result.matches)
    thread.join()
    assert not errors, errors
    assert sizes == sorted(sizes) and sizes[-1] in (120, 520)
    with Catalogue.open(path) as reader:
        assert SearchEngine(reader, fake_embedder, small_config).__len__() == 520


@pytest.mark.slow
def test_two_processes_updating_one_catalogue(store, tmp_path, clothing):
    folder = tmp_path / "photos"
    # Enough photos that the first build is still running when the second command has started
    # (its interpreter and model take seconds; with 120 the first sometimes finished before).
    copy_clothing_photos(clothing, folder, 360)
    path = store.location("shared")
    first = subprocess.Popen([PYTHON, "-m", "swimsearch.cli", "index", str(folder), "--catalogue", str(path)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the first build is writing batches
        try:
            if store.query(path, "SELECT count(*) FROM {s}.images")[0][0] > 0:
                break
        except Exception:  # noqa: BLE001 - not created yet
            pass
        time.sleep(0.05)
    second = cli("index", folder, "--catalogue", path)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 1
    expected = "is updating the team catalogue shared right now" if store.team else "being built or updated by another SwimSearch process"
    assert expected in second.stderr and len(second.stderr.strip().splitlines()) == 1
    store.check_intact(path)
    assert "360 added" in out


# --- resources ----------------------------------------------------------------------------------


def _small_filesystem(tmp_path) -> Path | None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    # 3 MB: the region basis every catalogue keeps (1.3 MB, in the WAL and then the file) and some of the
    # 120 pictures (about 25 KB each, 15 KB of them regional vectors) fit, not all of them
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3000k", "tmpfs", str(mount)], capture_output=True)
    return mount if done.returncode == 0 else None


def test_full_disk_during_a_build_is_a_plain_error_and_keeps_the_catalogue(tmp_path, clothing):
    folder = tmp_path / "photos"
    copy_clothing_photos(clothing, folder, 120)
    mount = _small_filesystem(tmp_path)
    try:
        if mount is not None:  # a real full disk: a 3 MB file system
            path = mount / "full.swimcat"
            done = cli("index", folder, "--catalogue", path, "--batch-size", "8")
        else:  # no permission to mount: a size-limited file instead (RLIMIT_FSIZE)
            import resource

            path = tmp_path / "limited.swimcat"

            def limit():
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, 3_000_000))

            done = cli("index", folder, "--catalogue", path, "--batch-size", "8", preexec_fn=limit)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "disk" in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        state = check_intact(path)
        assert 0 < state["images"] < 120
        with Catalogue.open(path) as catalogue:
            assert catalogue.counts()["readable"] == state["images"]
    finally:
        if mount is not None:
            if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_missing_or_altered_model_names_the_file(tmp_path, model_path, photo_catalogue):
    folder, catalogue = photo_catalogue
    missing = cli("query", "--catalogue", catalogue, "--model", tmp_path / "gone.onnx", next(folder.glob("*.jpg")))
    assert missing.returncode == 1 and "gone.onnx is missing" in missing.stderr
    altered = tmp_path / model_path.name
    data = bytearray(model_path.read_bytes())
    data[-100] ^= 0x55
    altered.write_bytes(bytes(data))
    shutil.copy(model_path.with_name("MODEL_CARD.md"), tmp_path / "MODEL_CARD.md")
    damaged = cli("query", "--catalogue", catalogue, "--model", altered, next(folder.glob("*.jpg")))
    assert damaged.returncode == 1 and str(altered) in damaged.stderr and "damaged" in damaged.stderr
    assert "Traceback" not in missing.stderr + damaged.stderr


# --- nothing executes what it reads ---------------------------------------------------------------


def test_no_pickle_anywhere_in_the_project():
    sources = [p for d in ("swimsearch", "ui", "bench", "tools", "models") for p in (REPO / d).rglob("*.py")]
    sources.append(REPO / "app.py")
    import re

    use = re.compile(r"^\s*(import pickle|from pickle|import cPickle)|pickle\.(loads?|dumps?)\(|allow_pickle\s*=\s*True", re.M)
    for source in sources:
        assert not use.search(source.read_text(encoding="utf-8")), source


def test_sql_is_parameterised():
    """Values reach SQLite only as parameters: f-strings in SQL only splice placeholders or fixed names."""
    import re

    for source in (REPO / "swimsearch").glob("*.py"):
        for match in re.finditer(r'execute(?:many)?\(\s*f"([^"]*)"', source.read_text(encoding="utf-8")):
            for field in re.findall(r"\{([^}]*)\}", match.group(1)):
                assert field in ("marks", "table", "column", "APPLICATION_ID"), f"{source.name}: {{{field}}} spliced into SQL"
