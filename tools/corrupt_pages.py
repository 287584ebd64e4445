"""Corrupt random pages of a real catalogue file and count what SwimSearch makes of each: the red team's test.

Each trial copies a clean catalogue, damages one random page of it (zeroed,
overwritten with random bytes, a few bytes changed, or a few bits flipped),
then opens it, searches it (by catalogue image and by picture file),
checks it (`info --check` where the version has it) and compares every
result with the clean catalogue's. A trial ends one of these ways:

* refused: one plain sentence (a CatalogueError), never a traceback;
* identical: the damage touched nothing a search reads (free space, slack);
* silently wrong: results differ and nothing was said (what must never happen);
* traceback, hang or killed (out of memory): what must never happen either.

    python tools/corrupt_pages.py --trials 80 --seed 3                 # real photos, the real model
    python tools/corrupt_pages.py --trials 60 --fake                   # generated pictures, the test embedder
    PYTHONPATH=/tmp/v1src python tools/corrupt_pages.py --trials 80    # another version of SwimSearch (before)

Trials run in a child process (restarted after a hang or a kill) under an
address-space limit and a time limit per trial.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO / "tests"))

KINDS = ("zero", "random", "bytes", "bits")
TRIAL_SECONDS = 60
MEMORY_LIMIT = 4 * 1024**3


def _config(fake: bool):
    from swimsearch.config import EngineConfig

    if fake:
        return EngineConfig(hash_dim=32, rerank_dim=32, bits=64, lsh_tables=8, lsh_key_bits=8, batch_size=8, exact_below=0)
    return EngineConfig(exact_below=0)  # the LSH path, so that buckets are read by every search


def _embedder(fake: bool):
    if fake:
        from helpers import FakeEmbedder

        return FakeEmbedder()
    from swimsearch.model import Embedder, default_model_path

    return Embedder(default_model_path())


def build(folder: Path, path: Path, images: int, fake: bool) -> None:
    """The clean catalogue: real clothing photos with the real model, or generated pictures with the fake one."""
    from swimsearch.catalogue import Catalogue

    if fake:
        from helpers import make_pattern_images

        make_pattern_images(folder / "a", images // 2, family=4)
        make_pattern_images(folder / "b", images - images // 2, start=1000, family=4)
    else:
        from helpers import CLOTHING, copy_clothing_photos

        copy_clothing_photos(CLOTHING, folder, images)
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(_embedder(fake), _config(fake))


def results(path: Path, folder: Path, embedder, config) -> dict:
    """What a user sees of a catalogue: counts, searches by id and by file, duplicates."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.search import SearchEngine

    out: dict = {}
    with Catalogue.open(path) as catalogue:
        info = catalogue.info()
        out["counts"] = [info[k] for k in ("images", "readable", "unreadable", "searchable")]
        engine = SearchEngine(catalogue, embedder, config)
        ids = engine.searchable_ids()
        out["searches"] = [
            [(m.relpath, round(m.score, 4), m.duplicate) for m in engine.search_id(int(i), top_n=10).matches]
            for i in ids[:: max(1, len(ids) // 8)]
        ]
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
        out["files"] = [
            [(m.relpath, round(m.score, 4)) for m in engine.search(f, top_n=10).matches] for f in files[:: max(1, len(files) // 4)]
        ]
        out["records"] = sorted((r.relpath, r.phash) for r in catalogue.records(ids.tolist()).values())
        check = getattr(catalogue, "check", None)
        if check is not None:
            check()
    return out


def corrupt(source: Path, target: Path, rng: random.Random) -> dict:
    """Copy `source` to `target` with one random page damaged; what was done."""
    data = bytearray(source.read_bytes())
    page_size = int.from_bytes(data[16:18], "big") or 65536
    pages = len(data) // page_size
    page = rng.randrange(pages)
    kind = rng.choice(KINDS)
    start = page * page_size
    if kind == "zero":
        data[start : start + page_size] = bytes(page_size)
    elif kind == "random":
        data[start : start + page_size] = rng.randbytes(page_size)
    elif kind == "bytes":
        for _ in range(rng.randint(1, 16)):
            data[start + rng.randrange(page_size)] = rng.randrange(256)
    else:
        for _ in range(rng.randint(1, 8)):
            data[start + rng.randrange(page_size)] ^= 1 << rng.randrange(8)
    target.write_bytes(bytes(data))
    return {"page": page + 1, "pages": pages, "kind": kind}


def child(work: Path, trials: list[int], seed: int, fake: bool) -> None:
    """Run trials, one JSON line each."""
    from swimsearch.errors import CatalogueError

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    folder, clean_path = work / "pictures", work / "clean.swimcat"
    embedder, config = _embedder(fake), _config(fake)
    clean = json.loads((work / "clean.json").read_text())
    for trial in trials:
        rng = random.Random(f"{seed}:{trial}")
        target = work / "trial.swimcat"
        for leftover in work.glob("trial.swimcat*"):
            leftover.unlink()
        done = corrupt(clean_path, target, rng)
        started = time.perf_counter()
        try:
            seen = json.loads(json.dumps(results(target, folder, embedder, config)))
            outcome = "identical" if seen == clean else "silently wrong"
            message = ""
        except CatalogueError as exc:
            message = str(exc)
            outcome = "refused" if "\n" not in message else "unclear"
        except Exception as exc:  # noqa: BLE001 - what the tool counts
            outcome, message = "traceback", f"{type(exc).__name__}: {exc}"[:300]
        print(json.dumps({"trial": trial, **done, "outcome": outcome, "message": message[:300],
                          "seconds": round(time.perf_counter() - started, 3)}), flush=True)


def run(trials: int, seed: int, images: int, fake: bool, work: Path) -> dict:
    folder, clean_path = work / "pictures", work / "clean.swimcat"
    build(folder, clean_path, images, fake)
    (work / "clean.json").write_text(json.dumps(results(clean_path, folder, _embedder(fake), _config(fake))))
    todo = list(range(trials))
    lines: list[dict] = []
    while todo:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(work), "--seed", str(seed), *(["--fake"] if fake else []),
             "--trials-list", ",".join(map(str, todo))],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))},
        )
        assert proc.stdout is not None
        current = todo[0]
        deadline = time.monotonic() + TRIAL_SECONDS + 30  # start-up included for the first
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        ended = None
        while todo:
            if not selector.select(timeout=max(0.1, deadline - time.monotonic())):
                if time.monotonic() > deadline:
                    proc.kill()
                    ended = "hang"
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                ended = "killed"
                break
            record = json.loads(line)
            lines.append(record)
            print(json.dumps(record), flush=True)
            todo.remove(record["trial"])
            current = todo[0] if todo else -1
            deadline = time.monotonic() + TRIAL_SECONDS
        proc.wait()
        if ended and todo:
            record = {"trial": current, "outcome": ended, "message": f"child ended with {proc.returncode}"}
            lines.append(record)
            print(json.dumps(record), flush=True)
            todo.remove(current)
    summary = {"trials": len(lines)}
    for outcome in ("refused", "identical", "silently wrong", "traceback", "hang", "killed", "unclear"):
        summary[outcome] = sum(line["outcome"] == outcome for line in lines)
    print(json.dumps({"summary": summary}), flush=True)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=80)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--fake", action="store_true", help="generated pictures and the test embedder (fast)")
    parser.add_argument("--work", type=Path, help="folder to work in (default: a temporary one, removed after)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trials-list", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, [int(t) for t in args.trials_list.split(",")], args.seed, args.fake)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="corrupt-pages-"))
    try:
        run(args.trials, args.seed, args.images, args.fake, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
