"""Decoding: peak memory per picture and time per picture, the old loader against the new, in one run.

Memory: each file is loaded in a forked child (tests/memory_probe.py) under an
address-space cap, by the loader as it was before memory was bounded
(tests/reference_loader.py: pad to a max(w, h) square, then shrink) and by
today's; the child's peak resident memory above the fork is the cost. A loader
that would need more than the cap fails there ("capped").

Time: both loaders on the same clothing photos and larger generated photos,
interleaved picture by picture (old, new, new, old, ...), median ms each and
the ratio new / old. The pHash is computed from the decoded picture in both.

    python bench/bench_decode.py                  # 400 clothing photos
    python bench/bench_decode.py --photos 2000 --cap-mb 3000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from common import CLOTHING, ROOT, WORK, median, save, table

sys.path.insert(0, str(ROOT / "tests"))

import hostile_files  # noqa: E402
import reference_loader  # noqa: E402
from PIL import Image  # noqa: E402

from swimsearch.images import load_image  # noqa: E402

SIZE = 224


def memory_files(folder):
    """The pictures of the reliability report and their neighbours, written to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = __import__("numpy").random.default_rng(1)
    photo = hostile_files._photo(rng, 4000, 3000)
    files = {
        "1 x 100000 PNG (a valid file of 0.5 KB)": ("thin.png", hostile_files.png_solid(1, 100_000)),
        "100000 x 1 PNG (valid)": ("wide.png", hostile_files.png_solid(100_000, 1)),
        "30000 x 1000 banner PNG": ("banner.png", hostile_files.png_solid(30_000, 1_000)),
        "12000 x 200 panorama PNG": ("panorama.png", hostile_files.png_solid(12_000, 200)),
        "8000 x 8000 RGBA PNG (64 MP)": ("big_rgba.png", hostile_files.png_solid(8_000, 8_000, 6)),
        "16000 x 12000 PNG header (192 MP)": ("poster.png", hostile_files.png_header_bomb(16_000, 12_000)),
        "4000 x 3000 photo PNG": ("photo.png", hostile_files._encode(photo, "PNG")),
        "4000 x 3000 photo JPEG": ("photo.jpg", hostile_files._encode(photo, "JPEG", quality=90)),
        "2000 x 3000 RGBA PNG": ("tall_rgba.png", hostile_files._encode(photo.resize((2000, 3000)).convert("RGBA"), "PNG")),
    }
    out = {}
    for label, (name, data) in files.items():
        (folder / name).write_bytes(data)
        out[label] = folder / name
    return out


def probe(paths, cap_mb: int, reference: bool) -> list[dict]:
    command = [sys.executable, str(ROOT / "tests" / "memory_probe.py"), "--cap-mb", str(cap_mb), *map(str, paths)]
    if reference:
        command.insert(2, "--reference")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def describe(result: dict, cap_mb: int) -> str:
    """'N MB' for a load, 'over the cap' when the loader ran out of its address space, else 'refused'."""
    if result["outcome"] == "loads":
        return f"{result['peak_mb']:.0f} MB"
    reason = result.get("reason") or ""
    if "MemoryError" in reason or "not enough memory" in reason or result["outcome"] == "killed":
        return f"> {cap_mb} MB cap"
    return f"refused, {result['peak_mb']:.0f} MB"


def timings(paths, rounds: int = 1) -> tuple[list[float], list[float]]:
    old, new = [], []
    for _ in range(rounds):
        for i, path in enumerate(paths):
            order = (("old", "new") if i % 2 == 0 else ("new", "old"))
            for which in order:
                started = time.perf_counter()
                if which == "old":
                    reference_loader.load_image(path, SIZE)
                    old.append(time.perf_counter() - started)
                else:
                    load_image(path, SIZE)
                    new.append(time.perf_counter() - started)
    return old, new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=400, help="clothing photos to time")
    parser.add_argument("--cap-mb", type=int, default=3000, help="address-space cap of each probe child")
    args = parser.parse_args()

    files = memory_files(WORK / "decode")
    old_memory = probe(files.values(), args.cap_mb, reference=True)
    new_memory = probe(files.values(), args.cap_mb, reference=False)
    rows = []
    for label, old, new in zip(files, old_memory, new_memory):
        rows.append({"picture": label, "old": describe(old, args.cap_mb), "new": describe(new, args.cap_mb),
                     "new_reason": (new.get("reason") or "")[:70]})
    print(f"Peak memory of loading one picture (child above the fork, cap {args.cap_mb} MB)")
    print(table(rows, [("picture", "picture", ""), ("old", "old loader", ""), ("new", "new loader", "")]))
    for row in rows:
        if row["new_reason"]:
            print(f"  {row['picture']}: {row['new_reason']}")

    photos = sorted((CLOTHING / "images").glob("*.jpg"))[: args.photos]
    load_image(photos[0], SIZE), reference_loader.load_image(photos[0], SIZE)  # warm caches and imports
    old_t, new_t = timings(photos)
    large = [files["4000 x 3000 photo PNG"], files["4000 x 3000 photo JPEG"], files["2000 x 3000 RGBA PNG"]]
    large_rows = []
    for path in large:
        o, n = timings([path], rounds=5)
        large_rows.append({"picture": path.name, "old_ms": 1000 * median(o), "new_ms": 1000 * median(n), "ratio": median(n) / median(o)})
    time_rows = [{"picture": f"{len(photos)} clothing photos (median)", "old_ms": 1000 * median(old_t),
                  "new_ms": 1000 * median(new_t), "ratio": median(new_t) / median(old_t)}] + large_rows
    print("\nDecode time per picture (load_image at 224, pHash included; interleaved, same run)")
    print(table(time_rows, [("picture", "picture", ""), ("old_ms", "old ms", ".1f"), ("new_ms", "new ms", ".1f"), ("ratio", "new/old", ".2f")]))
    save("decode", {"cap_mb": args.cap_mb, "memory": rows, "memory_raw": {"old": old_memory, "new": new_memory}, "time": time_rows})


if __name__ == "__main__":
    Image.init()
    main()
