"""The rules every store shares for what a scan changes: generated catalogues and scans, each file's fate known.

A seeded generator makes a catalogue state (files in nested folders, some
failed for a passing reason, some tombstones) and a scan that applies one
event to each file: untouched, touched (new time), replaced by a picture of
the same size and time, deleted, moved elsewhere, failed-before, or back
after being gone. `diff_scan` must classify every file as the event says.
"""

from __future__ import annotations

import random

import pytest

from swimsearch.images import FoundFile
from swimsearch.stores.changes import (
    GUARD_MIN,
    GUARD_SUBFOLDER,
    TOMBSTONE_SECONDS,
    KnownFile,
    diff_scan,
    expired_tombstones,
    removal_held,
)

EVENTS = ("untouched", "touched", "edited", "replaced", "deleted", "moved", "retry", "back", "still_gone", "unfingerprinted")


def _state(seed: int):
    """(known, found, fingerprints of found files, expected fate by path) for one generated case."""
    rng = random.Random(seed)
    folders = ["", "a/", "a/b/", "c/", "deep/er/still/"]
    count = rng.randint(1, 60)
    known, found, prints, fate = {}, [], {}, {}
    sizes = rng.sample(range(1000, 10**6), count + 5)  # distinct sizes: moves are found by size and content
    for n in range(count):
        path = f"{rng.choice(folders)}f{n:03d}.{rng.choice(['png', 'jpg', 'tif'])}"
        size, mtime, fp = sizes[n], 1.7e9 + rng.random() * 1e6, rng.getrandbits(63)
        event = rng.choice(EVENTS)
        k = KnownFile(n + 1, size, mtime, fp)
        if event == "retry":
            k = KnownFile(n + 1, size, mtime, None, retry=True)
        elif event in ("back", "still_gone"):
            k = KnownFile(n + 1, size, mtime, fp, gone=1.6e9)
        elif event == "unfingerprinted":
            k = KnownFile(n + 1, size, mtime, None)
        known[path] = k
        fate[path] = event
        if event in ("deleted", "still_gone"):
            continue
        if event == "moved":
            new = f"moved/{rng.choice(folders)}m{n:03d}.png"
            found.append(FoundFile(new, size, mtime + rng.random()))  # a move may change the time, not the content
            prints[new] = fp
            fate[new] = ("moved-to", path)
            continue
        if event in ("touched", "edited"):  # a new time: the same content (`cp -r`), or an edit of the same size
            found.append(FoundFile(path, size, mtime + 1.0))
            prints[path] = fp if event == "touched" else rng.getrandbits(63)
        else:
            found.append(FoundFile(path, size, mtime))
            prints[path] = rng.getrandbits(63) if event == "replaced" else fp
    for n in range(rng.randint(0, 5)):  # new files
        path = f"{rng.choice(folders)}new{n}.png"
        found.append(FoundFile(path, sizes[count + n], 1.8e9))
        prints[path] = rng.getrandbits(63)
        fate[path] = "new"
    rng.shuffle(found)
    return known, found, prints, fate


@pytest.mark.parametrize("seed", range(300))
def test_every_file_of_a_generated_scan_gets_its_fate(seed):
    known, found, prints, fate = _state(seed)
    asked = []

    def fingerprints(files):
        asked.extend(f.relpath for f in files)
        return [prints[f.relpath] for f in files]

    diff = diff_scan(found, known, fingerprints)
    todo = {f.relpath for f in diff.todo}
    restored = {r.file.relpath: r for r in diff.restored}
    gone = {path for path, _ in diff.gone}
    for path, event in fate.items():
        if event in ("untouched", "unfingerprinted"):
            assert path not in todo and path not in gone
        elif event == "touched" and not path.endswith(".tif"):  # a compressed picture: the fingerprint vouches
            assert path not in todo and restored[path].image_id == known[path].image_id
            assert restored[path].file.mtime == known[path].mtime + 1.0  # the record takes the new time
        elif event in ("touched", "edited"):  # an uncompressed TIFF's middle can change unseen: read again
            assert path in todo and path in diff.changed
        elif event == "replaced":  # same size and time: only the fingerprint tells
            assert path in todo and path in diff.changed
        elif event == "deleted":
            assert path in gone
        elif event == "moved":
            assert path not in gone  # found again elsewhere: not removed ...
        elif isinstance(event, tuple):  # moved here: not read again, the record follows the file
            assert path not in todo and restored[path].image_id == known[event[1]].image_id
        elif event == "retry":
            assert path in todo and path in diff.retried
        elif event == "back":
            assert path not in todo and restored[path].image_id == known[path].image_id
        elif event == "still_gone":
            assert path not in gone and path not in todo  # already a tombstone
        elif event == "new":
            assert path in todo and path not in diff.changed
    unfingerprinted = {p for p, e in fate.items() if e == "unfingerprinted"}
    assert unfingerprinted <= set(restored)  # a record from before fingerprints gets one, without a read
    retimed = sum(e == "touched" and not p.endswith(".tif") for p, e in fate.items())
    assert diff.unchanged == sum(e in ("untouched", "unfingerprinted") for e in fate.values()) + retimed
    assert diff.retimed == retimed
    assert diff.moved == sum(e == "moved" for e in fate.values())
    assert diff.came_back == sum(e == "back" for e in fate.values())
    new_files = {p for p, e in fate.items() if e == "new"}
    assert not new_files & set(asked)  # new files of a size nothing lost are never opened twice


def test_without_fingerprints_size_and_time_decide_as_before():
    known = {"a.png": KnownFile(1, 10, 5.0, 123), "b.png": KnownFile(2, 10, 5.0, 456)}
    diff = diff_scan([FoundFile("a.png", 10, 5.0), FoundFile("b.png", 11, 5.0)], known)
    assert [f.relpath for f in diff.todo] == ["b.png"] and diff.unchanged == 1 and diff.changed == {"b.png"}


def test_a_file_with_a_new_time_that_cannot_be_fingerprinted_just_now_is_read_again():
    known = {"a.png": KnownFile(1, 10, 5.0, 123)}
    diff = diff_scan([FoundFile("a.png", 10, 6.0)], known, lambda files: [None] * len(files))
    assert [f.relpath for f in diff.todo] == ["a.png"] and diff.changed == {"a.png"}


def test_a_file_that_cannot_be_fingerprinted_just_now_keeps_its_record():
    known = {"a.png": KnownFile(1, 10, 5.0, 123)}
    diff = diff_scan([FoundFile("a.png", 10, 5.0)], known, lambda files: [None] * len(files))
    assert not diff.todo and diff.unchanged == 1


def test_files_in_a_folder_that_could_not_be_listed_are_kept():
    known = {f"locked/{n}.png": KnownFile(n + 1, 10 + n, 5.0, n) for n in range(30)}
    known["open/x.png"] = KnownFile(99, 1, 5.0, 1)
    diff = diff_scan([FoundFile("open/x.png", 1, 5.0)], known, lambda files: [1] * len(files), unlisted=("locked",))
    assert not diff.gone and diff.unseen == 30


def test_tombstones_expire_unless_they_came_back():
    now = 2e9
    known = {
        "old.png": KnownFile(1, 1, 1.0, 1, gone=now - TOMBSTONE_SECONDS - 1),
        "back.png": KnownFile(2, 2, 1.0, 2, gone=now - TOMBSTONE_SECONDS - 1),
        "recent.png": KnownFile(3, 3, 1.0, 3, gone=now - 60),
    }
    diff = diff_scan([FoundFile("back.png", 2, 1.0)], known, lambda files: [2] * len(files))
    assert expired_tombstones(known, diff, now) == [1]


def _tree(seed: int):
    """A generated catalogue: files spread over nested subfolders of random sizes."""
    rng = random.Random(seed)
    known = {}
    n = 0
    for folder in range(rng.randint(1, 8)):
        name = "/".join(f"f{folder}-{depth}" for depth in range(rng.randint(1, 3)))
        for _ in range(rng.randint(1, 60)):
            n += 1
            known[f"{name}/{n}.png"] = KnownFile(n, n, 1.0, n)
    for _ in range(rng.randint(0, 30)):
        n += 1
        known[f"{n}.png"] = KnownFile(n, n, 1.0, n)
    return rng, known


@pytest.mark.parametrize("seed", range(120))
def test_removal_guard_holds_a_half_mounted_folder_and_lets_small_deletions_through(seed):
    rng, known = _tree(seed)
    paths = sorted(known)
    kind = rng.choice(["few", "share", "subfolder"])
    if kind == "few":  # a person deleting a few files
        lost = set(rng.sample(paths, min(len(paths) - 1, rng.randint(0, GUARD_MIN - 1))))
    elif kind == "share":  # a share mounted half-way
        lost = set(rng.sample(paths, min(len(paths), max(GUARD_MIN, int(len(paths) * rng.uniform(0.3, 1.0))))))
    else:  # one subfolder missing (its mount point empty)
        folders = sorted({p.split("/")[0] for p in paths if "/" in p})
        folder = rng.choice(folders)
        lost = {p for p in paths if p.startswith(folder + "/")}
    found = [FoundFile(p, known[p].size, known[p].mtime) for p in paths if p not in lost]
    diff = diff_scan(found, known, lambda files: [known[f.relpath].fingerprint for f in files])
    reason = removal_held(diff, known, found)
    live = len(known)
    expected = (len(lost) >= GUARD_MIN and len(lost) > 0.25 * live) or (kind == "subfolder" and len(lost) >= GUARD_SUBFOLDER)
    assert (reason is not None) == expected, (kind, len(lost), live, reason)
    if reason:
        assert f"{len(lost):,} of the catalogue's {live:,} files are gone" in reason
        held = diff.holding_removals()
        assert not held.gone and held.unseen == len(lost)
