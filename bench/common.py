"""Shared pieces of the benchmark scripts: paths, the machine, timing, JSON output.

Benchmarks are scripts, not tests: they print a table, write JSON under
bench/results/, and are run by hand (never in CI). Each compares against a
baseline measured in the same run, because these machines are shared and noisy.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import swimsearch  # noqa: E402,F401  (sets the BLAS thread count before NumPy loads)

CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing"
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work"  # catalogues the benchmarks build (git-ignored)


def machine() -> dict:
    """What the figures were measured on."""
    import numpy
    import onnxruntime

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
    }


def run_with_tree(tree: str, child: str, *args: str) -> dict:
    """Run `child` (Python source printing one JSON line whose "code" is swimsearch.__file__) in a fresh
    process with the code of source tree `tree` first on the import path; its last line, parsed."""
    root = str(Path(tree).resolve())
    done = subprocess.run(  # run in the tree: `python -c` puts the working folder first on the import path
        [sys.executable, "-c", child, *args], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": root}, cwd=tree,
    )
    if done.returncode:
        raise SystemExit(f"the turn for {tree} failed:\n{done.stderr.strip()}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if not out["code"].startswith(root):
        raise SystemExit(f"the turn for {tree} imported {out['code']}")
    return out


def median(values) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else float("nan")


class Timer:
    """Context manager: elapsed seconds in `.seconds`."""

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start


def save(name: str, payload: dict) -> Path:
    """Write bench/results/<name>.json with the machine description added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "when": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    return path


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A plain text table: columns are (key, header, format)."""
    header = "  ".join(f"{h:>{max(len(h), 8)}s}" if i else f"{h:<46s}" for i, (_, h, _) in enumerate(columns))
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = []
        for i, (key, head, fmt) in enumerate(columns):
            value = row.get(key, "")
            text = format(value, fmt) if isinstance(value, (int, float)) and fmt else str(value)
            cells.append(f"{text:<46s}" if i == 0 else f"{text:>{max(len(head), 8)}s}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def with_settings(config, text: str):
    """`config` with the changes of a `--settings` text, e.g. "expand_k=5,query_augment_k=0" (each as its field's type)."""
    if not text:
        return config
    changes = dict(item.split("=", 1) for item in text.split(","))
    return config.with_changes(**{k: type(getattr(config, k))(v) for k, v in changes.items()})
