"""Match lists and duplicate groups out of the app: CSV for spreadsheets and audits, text for the clipboard.

Every file is written atomically (`atomic_output`). A match list's CSV holds
per-match facts only; the catalogue, the model and the time, the same on
every row, go once into a small JSON sidecar beside it (a comment block
would break spreadsheets, and a 64-character hash on every row buries the
columns people read).

Cells are written so that a spreadsheet never runs them: any text cell that
starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) gets a
leading apostrophe, the neutralisation OWASP recommends against CSV injection.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import stat
import tempfile
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from . import __version__
from .calibration import whole_percent
from .search import Match, SearchResult

if TYPE_CHECKING:
    from .duplicates import DuplicateGroup

log = logging.getLogger(__name__)

#: The columns of an exported match list, each with what it holds (the README and every
#: sidecar file repeat these words). The first four are the interface others rely on;
#: what is the same on every row (catalogue, model, time) is in the sidecar, once.
COLUMN_DOCS: dict[str, str] = {
    "query": "the query picture: its absolute path, or what it was (\"pasted image\")",
    "rank": "1 for the best match, 2 for the next, ...",
    "path": "the matching file, absolute path",
    "score": (
        "the similarity of the two pictures from 0 to 1 in full precision (the query itself 1.0), calibrated for the "
        "model so the same pair scores the same in every catalogue (a model without a calibration: cosine of "
        "embeddings centred on the catalogue, -1 to 1)"
    ),
    "similarity": "the score in whole percent as the window shows it (nearest; only the query itself reads 100)",
    "band": (
        "the score's band: same design (re-exports, crops, recolours, mirror images, small rotations of one "
        "picture), very similar, similar or unrelated; the list reads band by band, by the ranking inside a band"
    ),
    "file_name": "the matching file's name",
    "folder": "its folder relative to the catalogue's folder (empty: the catalogue's folder itself)",
    "width": "its width in pixels",
    "height": "its height in pixels",
    "duplicate": "yes when it is an identical or near-identical copy of the query (perceptual hash)",
    "mirrored": "yes when it matched the query flipped left to right better than the query itself",
    "missing": "yes when the file was no longer on disk when the list was made",
    "decision": "'same design' or 'not similar' when a person marked this match and the query so (the catalogue "
    "remembers it: same design is pinned near the top, not similar goes to the end of the list), else empty",
}
COLUMNS = tuple(COLUMN_DOCS)
#: A decision as the CSV says it.
DECISION_WORDS = {"same": "same design", "different": "not similar"}

#: The columns of an exported list of duplicate groups: one row per file.
DUPLICATE_COLUMNS = ("group", "path", "group_size", "max_phash_distance")
DUPLICATE_COLUMN_DOCS: dict[str, str] = {
    "group": "the group's number, from 1 (largest groups first)",
    "path": "a file of the group, absolute path",
    "group_size": "how many files the group holds",
    "max_phash_distance": "the most perceptual-hash bits (of 64) that differ between two files of the group",
    "keep": "(exported from the window's duplicate review only) yes for the copy it keeps, no for the others",
}

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: Permission bits new files get (read once: os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def neutralise(text: str) -> str:
    """Text a spreadsheet shows as text, never evaluates as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def percent(score: float) -> int:
    """The similarity a user sees, in whole percent (`calibration.whole_percent`: nearest, never 100
    unless the picture itself, below 0 shown as 0).

    The one rounding rule of the window, the Copy list, the CSV and the contact sheet.
    """
    return whole_percent(score * 100.0)


#: The words of a match a person decided: the decision wins over the score's band (a design pinned
#: as the same may score 36 %, and "36% · unrelated" on a card marked "Same design" contradicts it).
DECIDED_WORDS = {"same": "marked same design", "different": "marked not similar"}


def similarity_text(match: Match, *, sep: str = " · ", decided: bool = True) -> str:
    """A match's similarity as people read it: "92% · same design" (just "92%" without a calibration).

    A decided match reads its decision instead of its band, "36% · marked same design", or just
    "36%" with `decided=False` (where a badge beside it already says the decision).
    """
    words = DECIDED_WORDS.get(match.decision or "") or match.band
    if match.decision in DECIDED_WORDS and not decided:
        words = ""
    return f"{percent(match.score)}%" + (f"{sep}{words}" if words else "")


@contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w", **open_args: Any) -> Iterator[IO[Any]]:
    """Write `path` through a temporary file in the same folder, renamed over it only when complete.

    A reader never sees half a file, and a failed or interrupted write leaves
    the previous file (if any) as it was. OSError names `path`, never the
    temporary file. A device or a named pipe (`--csv /dev/null`, a FIFO another
    program reads) is written into as it is: renaming over it would replace it
    with an ordinary file (for root, /dev/null itself).
    """
    path = Path(path)
    if is_special(path):
        with open(path, mode, **open_args) as fh:
            yield fh
        return
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes it private; the result is an ordinary file
        with os.fdopen(fd, mode, **open_args) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(temporary)
        if exc.filename in (None, temporary):  # a failed write (a full disk) names no file, the renaming over a
            raise OSError(exc.errno, exc.strerror, str(path)) from exc  # folder the temporary: name the one asked for
        raise
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def is_special(path: str | os.PathLike) -> bool:
    """Whether `path` is something other than a file or a folder (a device, a named pipe, a socket)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def sidecar_path(csv_path: str | os.PathLike) -> Path:
    """Where the identity of an exported list goes: matches.csv -> matches.about.json."""
    path = Path(csv_path)
    stem = path.name[: -len(path.suffix)] if path.suffix.lower() == ".csv" else path.name
    return path.with_name(f"{stem}.about.json")


def rows(results: Iterable[SearchResult]) -> Iterator[dict]:
    """One dict per match, values already formatted and neutralised."""
    for result in results:
        for m in result.matches:
            folder = os.path.dirname(m.relpath)
            yield {
                "query": neutralise(result.query),
                "rank": m.rank,
                "path": neutralise(m.path),
                "score": repr(float(m.score)),
                "similarity": percent(m.score),
                "band": m.band,
                "file_name": neutralise(m.name),
                "folder": neutralise(folder),
                "width": "" if m.width is None else m.width,
                "height": "" if m.height is None else m.height,
                "duplicate": "yes" if m.duplicate else "no",
                "mirrored": "yes" if m.mirrored else "no",
                "missing": "yes" if m.missing else "no",
                "decision": DECISION_WORDS.get(m.decision or "", ""),
            }


def write_csv(
    results: Iterable[SearchResult],
    out: str | os.PathLike | IO[str],
    *,
    catalogue: str,
    model: str,
    model_sha256: str,
    filters: str = "",
) -> int:
    """Write match lists as UTF-8 CSV with a header row; returns the number of rows.

    Written to a path, the file appears complete or not at all, and a sidecar
    (`sidecar_path`) records once what is the same for every row: the
    catalogue, the model and its sha256, the time, the filters in words and
    what each column means. A stream gets the rows only.
    """
    results = list(results)
    if isinstance(out, (str, os.PathLike)):
        with atomic_output(out, newline="", encoding="utf-8") as fh:
            count = write_csv(results, fh, catalogue=catalogue, model=model, model_sha256=model_sha256)
        if is_special(out):  # rows sent to a device or a pipe: no sidecar beside it (e.g. /dev/null.about.json)
            return count
        about = {
            "written_by": f"SwimSearch {__version__}",
            "exported_at": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
            "csv": Path(out).name,
            "catalogue": catalogue,
            "model": model,
            "model_sha256": model_sha256,
            "queries": len(results),
            "rows": count,
            "filters": filters,
            "columns": COLUMN_DOCS,
        }
        with atomic_output(sidecar_path(out), encoding="utf-8") as fh:
            fh.write(json.dumps(about, indent=2, ensure_ascii=False) + "\n")
        return count
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows(results):
        writer.writerow(row)
        count += 1
    return count


def write_duplicates_csv(
    groups: Iterable[DuplicateGroup], out: str | os.PathLike | IO[str], *, keepers: Sequence[str] | None = None
) -> int:
    """Write groups of near-identical files as UTF-8 CSV, one row per file, groups numbered from 1.

    Args:
        keepers: the path to keep in each group (the duplicate review's choice);
            given, a last column `keep` says yes for it and no for the others.

    Returns the number of rows.
    """
    if isinstance(out, (str, os.PathLike)):
        with atomic_output(out, newline="", encoding="utf-8") as fh:
            return write_duplicates_csv(groups, fh, keepers=keepers)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(DUPLICATE_COLUMNS + (("keep",) if keepers is not None else ()))
    count = 0
    for number, group in enumerate(groups, start=1):
        for path in group.paths:
            row = [number, neutralise(path), len(group.paths), group.max_phash_distance]
            if keepers is not None:
                row.append("yes" if path == keepers[number - 1] else "no")
            writer.writerow(row)
            count += 1
    return count


def as_text(result: SearchResult) -> str:
    """Tab-separated lines (rank, score %, duplicate, path) for pasting into a mail or a sheet."""
    buffer = io.StringIO()
    buffer.write(f"Query\t{result.query}\n")
    buffer.write("Rank\tSimilarity\tBand\tDuplicate\tPath\n")
    for m in result.matches:
        buffer.write(f"{m.rank}\t{percent(m.score)}%\t{m.band}\t{'duplicate' if m.duplicate else ''}\t{neutralise(m.path)}\n")
    return buffer.getvalue()
