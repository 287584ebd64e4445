"""Load files one by one in forked children and report each child's peak memory.

    python tests/memory_probe.py [--cap-mb 1500] [--reference] [--size 224] FILE...

Prints one JSON line per file: {"file", "outcome" ("loads", "error", "crash"
or "killed"), "reason", "peak_mb", "seconds"}. peak_mb is the child's peak
resident memory above what it shared with the parent when forked (libraries
and the interpreter are loaded before the first fork), so it is the memory
that loading the file cost. Each child runs under an address-space limit of
`--cap-mb` above its size at the fork (RLIMIT_AS), so a loader that tries to
allocate 21 GB fails there instead of taking the machine down. `--reference`
loads with the loader as it was before memory was bounded
(tests/reference_loader.py), for before/after figures. Linux only (fork,
/proc, ru_maxrss in KB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def probe(path: str, load, cap_mb: int, size: int) -> dict:
    """Load `path` in a forked child; the child's outcome and peak memory above the fork."""
    base_kb = _status_kb("VmRSS")
    limit = (_status_kb("VmSize") + cap_mb * 1024) * 1024
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        started = time.perf_counter()
        try:
            load(path, size)
            result = {"outcome": "loads"}
        except BaseException as exc:  # noqa: BLE001 - reported, not hidden
            reason = getattr(exc, "reason", None)
            result = {"outcome": "error" if reason is not None else "crash", "reason": reason or repr(exc)[:300]}
        result["seconds"] = round(time.perf_counter() - started, 3)
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status, usage = os.wait4(pid, 0)
    if chunks:
        result = json.loads(b"".join(chunks))
    else:
        result = {"outcome": "killed", "reason": f"child ended with status {status}"}
    result["file"] = path
    result["peak_mb"] = round(max(0, usage.ru_maxrss - base_kb) / 1024, 1)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--cap-mb", type=int, default=1500)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--reference", action="store_true", help="the loader before memory was bounded")
    args = parser.parse_args(argv)
    if args.reference:
        from reference_loader import load_image
    else:
        from swimsearch.images import load_image
        from swimsearch import formats

        formats.register_plugins()
        import pypdfium2  # noqa: F401 - loaded before the forks, like the interpreter
        import resvg_py  # noqa: F401
    for path in args.files:
        print(json.dumps(probe(path, load_image, args.cap_mb, args.size)), flush=True)


if __name__ == "__main__":
    main()
