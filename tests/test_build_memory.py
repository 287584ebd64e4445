"""A build survives every hostile picture, within bounded memory, and records each one.

The seeded hostile files (tests/hostile_files.py: header bombs, banners 1 x
100000, pictures at the pixel limit, damaged and random files, hostile SVGs
and PDFs) are built into a catalogue by a real build (the real model, two
decoders) in a child process under an address-space limit. With room to
spare every file is added or recorded unreadable as the generator says;
under a limit so tight that large legal pictures run out of memory, the
build still finishes, records those as unreadable for a passing reason, and
reads them again at the next update.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest

import hostile_files
from helpers import REPO
from swimsearch.catalogue import Catalogue

BASE = r"""
import swimsearch.cli, swimsearch.graph  # everything a build imports (FAISS, SciPy, ...) counts in its address space
from swimsearch.model import Embedder, default_model_path
embedder = Embedder(default_model_path(), threads=1)
print(next(l for l in open("/proc/self/status") if l.startswith("VmSize:")).split()[1])
"""


def _base_kb() -> int:
    """Address space of a command-line process that has loaded the model (what a build starts from)."""
    done = subprocess.run([sys.executable, "-c", BASE], cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    return int(done.stdout.strip())


def run_build(folder, path, cap_mb: int) -> subprocess.CompletedProcess:
    """`swimsearch index` under an address-space limit of `cap_mb` above a loaded model."""
    limit = (_base_kb() + cap_mb * 1024) * 1024

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    # glibc reserves 64 MB of address space for each extra malloc arena it opens when
    # threads contend, which a loaded machine makes more likely: fix their number so
    # the limit measures what SwimSearch allocates, not how busy the machine is.
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    return subprocess.run(
        [sys.executable, "-m", "swimsearch.cli", "index", str(folder), "--catalogue", str(path), "--threads", "1",
         "--batch-size", "8", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=900, preexec_fn=limited, env=env,
    )


#: Room for a build of every hostile picture above a loaded model. Since the build also keeps regional vectors
#: (one network pass with the feature map as a second output) the peak sits near 3,000 MB above the model: the
#: hostile build passed and failed at 3,000 on the same commit (round 4). An unbounded decode of one of the
#: header bombs needs several times this, so the test still catches it.
ROOMY_MB = 3500


def build(folder, path, cap_mb: int) -> dict:
    done = run_build(folder, path, cap_mb)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    report = json.loads(done.stdout)
    with Catalogue.open(path) as catalogue:
        report["counts"] = catalogue.counts()
    return report


@pytest.mark.slow
def test_a_build_of_every_hostile_picture_stays_in_bounded_memory_and_records_each(tmp_path):
    folder = tmp_path / "hostile"
    written = hostile_files.write(folder)
    names = {v.name: v for v in written.values()}
    report = build(folder, tmp_path / "c.swimcat", cap_mb=ROOMY_MB)
    unreadable = dict(map(tuple, report["errors"]))
    assert report["added"] + report["unreadable"] == len(names)
    for name, variant in names.items():
        if variant.expect == "loads":
            assert name not in unreadable, (name, unreadable.get(name))
        elif variant.expect in ("refused", "fails"):
            assert name in unreadable, name
            if variant.expect == "refused":
                assert any(word in unreadable[name] for word in variant.words), (name, unreadable[name])
    assert not any("memory" in reason for reason in unreadable.values())  # room to spare: nothing ran out
    assert report["counts"]["searchable"] == report["added"]


@pytest.mark.slow
def test_pictures_that_run_out_of_memory_are_recorded_and_read_again_when_there_is_room(tmp_path):
    """A limit under which the largest legal pictures cannot be decoded (two at a time) but the build can go on.

    Lower limits end the build itself: then the command line says "there was
    not enough memory to finish" (or a native library gives up first), which
    is about the machine, not about a picture.
    """
    folder, path = tmp_path / "hostile", tmp_path / "c.swimcat"
    written = hostile_files.write(folder)
    for cap_mb in (1600, 1900, 2200):  # the build's own needs vary with the machine's load: find a limit it lives with
        done = run_build(folder, path, cap_mb)
        assert "Traceback" not in done.stderr and done.returncode in (0, 1), done.stderr[-3000:]
        if done.returncode == 0:
            break
    else:
        pytest.skip(f"this machine needs more than 2200 MB to build at all: {done.stderr.strip().splitlines()[-1]}")
    report = json.loads(done.stdout)
    short = {name for name, reason in report["errors"] if "memory" in reason}
    with Catalogue.open(path) as catalogue:
        assert catalogue.counts()["images"] == len(written)  # every file accounted for, the short ones too
    again = build(folder, path, cap_mb=ROOMY_MB)
    assert again["retried"] >= len(short)  # out of memory passes: read again, now with room
    with Catalogue.open(path) as catalogue:  # each was read again: loaded, or refused for what it is
        assert not [p for p, reason in catalogue.unreadable() if p in short and "memory" in reason]
