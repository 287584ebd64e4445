"""The big, seeded version of the killed-build test (the CI test kills 12 times; this as often as asked).

Builds a clean catalogue of N clothing photos, then builds another one while
killing the `swimsearch index` process with SIGKILL at random moments (a
random time after start, or the moment a random number of images has been
committed). After every kill the catalogue must open, pass
PRAGMA integrity_check, hold no image twice in any table, and keep its LSH
tables in step with its codes. A last run must finish with every image present
exactly once and give search results identical to the clean build's.

    python tools/kill_test.py --kills 100 --images 600 --seed 7
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import CLOTHING, copy_clothing_photos  # noqa: E402
from test_reliability import _committed_images, check_intact, ranked, run_and_kill  # noqa: E402


def index(folder: Path, catalogue: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "swimsearch.cli", "index", str(folder), "--catalogue", str(catalogue)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="swimsearch-kill-"))
    try:
        folder = work / "photos"
        photos = copy_clothing_photos(CLOTHING, folder, args.images)
        clean, victim = work / "clean.swimcat", work / "killed.swimcat"
        started = time.monotonic()
        index(folder, clean).wait()
        print(f"clean build of {len(photos)} photos: {time.monotonic() - started:.1f} s")
        rng = random.Random(args.seed)
        kills = checks = 0
        for attempt in range(1, args.kills + 1):
            if victim.exists() and _committed_images(victim) >= len(photos) and rng.random() < 0.5:
                # Everything is embedded: start over on a fresh file so kills keep landing mid-build.
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{victim}{suffix}").unlink(missing_ok=True)
            by_time = rng.random() < 0.3
            moment = {"seconds": rng.uniform(0.05, 3.0)} if by_time else {"images": rng.randint(1, len(photos))}
            kills += run_and_kill(folder, victim, **moment)
            if victim.exists():
                state = check_intact(victim)
                checks += 1
                print(f"kill {attempt:4d} ({moment}): intact, {state['images']} images, {state['coded']} indexed", flush=True)
        index(folder, victim).wait()
        final = check_intact(victim)
        assert final == {"images": len(photos), "coded": len(photos)}, final
        queries = photos[:: max(1, len(photos) // 40)]
        assert ranked(victim, queries) == ranked(clean, queries), "results differ from the clean build"
        print(f"\n{kills} kills, {checks} integrity checks passed; final catalogue complete "
              f"({final['images']} images) and its results identical to a clean build's for {len(queries)} queries")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
