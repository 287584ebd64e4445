"""Fitting a catalogue again (what a first build does after reading), with two versions of the code in turns.

The fit of a large catalogue (refit_catalogue: the hash layer, every image's
neighbour list for the augmented vectors, codes, LSH tables and the HNSW
graph) runs from the stored embeddings, so it can be timed on its own. Each
turn copies CATALOGUE into --work (the source is never written), refits the
copy in a fresh process with one source tree first on the import path, and
prints wall time, CPU time, peak memory and when each step began; the trees
alternate (A B, B A, ...), so a loaded machine's load falls on both alike.
Then the neighbour lists each tree made are compared: how many are the
same, and their recall of the exact k nearest on a sample of images (the
graph build runs on every core, so two runs of one tree differ a little too).

    python bench/bench_fit.py CATALOGUE --code BASELINE_TREE NEW_TREE [--pairs 1] [--work DIR]

e.g. the 100,000-image catalogue `bench_scale.py --sizes 100000 --build-only` writes, with a checkout of main.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WORK, run_with_tree, save  # noqa: E402

import numpy as np  # noqa: E402

CHILD = """
import json, logging, sys, time
import swimsearch
from swimsearch.build import refit_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
steps = []
class Steps(logging.Handler):
    def emit(self, record):
        if record.name.startswith("swimsearch"):
            steps.append([round(time.perf_counter() - wall, 1), record.getMessage()])
logging.getLogger().addHandler(Steps())
logging.getLogger().setLevel(logging.INFO)
wall = time.perf_counter()
with Catalogue.open(sys.argv[1]) as catalogue:  # a catalogue of an older format is migrated here, before the clock starts
    steps.clear()
    writer = catalogue.writer()
    wall, cpu = time.perf_counter(), time.process_time()
    refit_catalogue(writer, EngineConfig())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = [int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_mb": peak, "steps": steps, "code": swimsearch.__file__}))
"""


def turn(code: str, source: Path, copy: Path) -> dict:
    for suffix in ("", "-wal", "-shm"):
        Path(str(copy) + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, copy)
    return run_with_tree(code, CHILD, str(copy))


def compare_lists(copies: list[Path], sample: int, seed: int = 0) -> dict:
    """Neighbour lists of the refitted copies: how many agree, and each one's recall of the exact lists on a sample."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.indexing import prepared_table, reference_centre
    from swimsearch.neighbours import exact_lists

    lists = []
    for copy in copies:
        with Catalogue.open(copy, readonly=True) as catalogue:
            lists.append(catalogue.neighbour_lists())
            fitted = catalogue.fitted()
    if not all(len(x) for x in lists):
        return {"note": "a catalogue without neighbour lists (fitted on the raw embeddings)"}
    same = int(np.sum(np.all(lists[0].neighbours == lists[1].neighbours, axis=1))) if np.array_equal(lists[0].ids, lists[1].ids) else 0
    with Catalogue.open(copies[-1], readonly=True) as catalogue:
        table = prepared_table(catalogue, fitted.centre if fitted.centre is not None else reference_centre(None))
    ids = np.sort(np.random.default_rng(seed).choice(table.ids, min(sample, len(table)), replace=False))
    exact = exact_lists(table, ids, lists[0].k, chunk=256)
    recalls = []
    for made in lists:
        got = made.select(ids)
        hits = [len(np.intersect1d(a[a >= 0], b[b >= 0])) for a, b in zip(got.neighbours, exact.neighbours)]
        recalls.append(float(np.sum(hits) / np.sum(exact.neighbours >= 0)))
    return {"images": len(lists[0]), "same_lists": same, "recall_of_exact": recalls, "sample": len(ids)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalogue", type=Path)
    parser.add_argument("--code", nargs=2, required=True, metavar=("BASELINE", "NEW"), help="two source trees")
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=WORK, help="where the copies are refitted (two copies of CATALOGUE)")
    parser.add_argument("--sample", type=int, default=1000, help="images whose lists are checked against the exact ones")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    copies = [args.work / f"fit-{label}.swimcat" for label in ("baseline", "new")]
    turns: dict[str, list[dict]] = {code: [] for code in args.code}
    for pair in range(args.pairs):
        order = [0, 1] if pair % 2 == 0 else [1, 0]
        for which in order:
            code = args.code[which]
            out = turn(code, args.catalogue, copies[which])
            turns[code].append(out)
            print(f"pair {pair + 1} {code}: fit {out['wall_s']:.1f} s wall, {out['cpu_s']:.1f} s CPU, peak {out['peak_mb']:.0f} MB", flush=True)
            for at, message in out["steps"]:
                print(f"    {at:7.1f} s  {message}", flush=True)
    summary = {code: {key: statistics.median(r[key] for r in rows) for key in ("wall_s", "cpu_s", "peak_mb")} for code, rows in turns.items()}
    base, new = (summary[code] for code in args.code)
    ratios = {key: new[key] / base[key] for key in ("wall_s", "cpu_s", "peak_mb")}
    print(f"medians: baseline {base['wall_s']:.1f} s wall / {base['cpu_s']:.1f} s CPU / {base['peak_mb']:.0f} MB; "
          f"new {new['wall_s']:.1f} s / {new['cpu_s']:.1f} s / {new['peak_mb']:.0f} MB")
    print(f"new / baseline: wall {ratios['wall_s']:.2f} x, CPU {ratios['cpu_s']:.2f} x, peak memory {ratios['peak_mb']:.2f} x")
    lists = compare_lists(copies, args.sample)
    if "recall_of_exact" in lists:
        print(f"neighbour lists: {lists['same_lists']:,} of {lists['images']:,} the same; recall of the exact lists on "
              f"{lists['sample']:,} images: baseline {lists['recall_of_exact'][0]:.4f}, new {lists['recall_of_exact'][1]:.4f}")
    path = save("fit", {"catalogue": str(args.catalogue), "baseline": args.code[0], "new": args.code[1], "turns": turns,
                        "medians": summary, "ratios": ratios, "lists": lists})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
