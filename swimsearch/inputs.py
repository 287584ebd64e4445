"""The files a user hands the engine: lists of image paths and labelled image sets (CSV).

Both are read the same forgiving way (a byte order mark, Windows line ends)
and refused in one plain sentence that names the file, and the line where
that helps.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .safeopen import NotAFile, open_regular

log = logging.getLogger(__name__)


class InputError(ValueError):
    """A list or labels file that cannot be read as asked; the message is one plain sentence."""


def read_path_list(path: str | os.PathLike) -> list[str]:
    """The image paths in a list file, one per line, as written.

    Blank lines and lines starting with '#' are skipped and spaces around a
    path are dropped. A UTF-8 byte order mark (lists saved by Notepad start
    with one) and Windows line ends are fine. "-" reads the list from the
    standard input, and a pipe (`--queries <(ls *.jpg)`) is read to its end
    as the standard input is; a device named as the list is refused, and a
    named pipe nobody writes to is never waited on.

    Raises:
        InputError: the file cannot be read, or a line is not UTF-8 text.
    """
    try:
        if os.fspath(path) == "-":
            data = sys.stdin.buffer.read()
        else:
            with open_regular(path, pipe=True) as fh:
                data = fh.read()
                if not data and stat.S_ISFIFO(os.fstat(fh.fileno()).st_mode):
                    raise InputError(f"the list {path} is a pipe (FIFO) that nothing was written into")
    except NotAFile as exc:
        raise InputError(f"the list {path} is {exc.reason}") from exc
    except OSError as exc:
        raise InputError(f"cannot read the list {path}: {exc.strerror or exc}") from exc
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    paths = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise InputError(f"line {number} of the list {path} is not UTF-8 text (save the list as UTF-8)") from None
        if line and not line.startswith("#"):
            paths.append(line)
    return paths


@dataclass(frozen=True)
class Labels:
    """A labelled image set: absolute paths, labels, and an optional exclusion group."""

    paths: tuple[str, ...]
    labels: np.ndarray  # int codes, one per path
    groups: np.ndarray | None  # int codes of the exclusion column, or None
    names: tuple[str, ...]  # label names, indexed by the codes

    def gallery_mask(self, query: int) -> np.ndarray:
        """Gallery items query `query` may be compared with: not itself, not its group."""
        mask = np.ones(len(self.paths), dtype=bool)
        if self.groups is not None:
            mask &= self.groups != self.groups[query]
        mask[query] = False
        return mask

    def relevant_counts(self) -> np.ndarray:
        """How many relevant (same label, allowed) gallery items each query has."""
        counts = np.empty(len(self.paths), dtype=np.int64)
        for i in range(len(self.paths)):
            counts[i] = int(((self.labels == self.labels[i]) & self.gallery_mask(i)).sum())
        return counts


def read_labels(
    csv_path: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    path_column: str | None = None,
    label_column: str = "label",
    exclude_column: str | None = None,
    filter_column: str | None = None,
) -> Labels:
    """Read a CSV of image paths and labels.

    Args:
        csv_path: the CSV file (header row required).
        root: folder that relative paths are resolved against (default: the CSV's folder).
        path_column: column with the image path (default: 'path', else 'filename', else the first).
        label_column: column with the label.
        exclude_column: optional column; gallery items sharing it with the query are dropped
            (e.g. the clothing set's `sender_id`).
        filter_column: optional column; rows where it reads false/0/no are skipped
            (e.g. the clothing set's `usable`).

    Raises:
        InputError: the file cannot be read, is not UTF-8, or lacks a column asked for.
    """
    csv_path = Path(csv_path)
    root = Path(root) if root is not None else csv_path.parent
    try:
        with open_regular(csv_path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh:
            rows, path_column = _read_rows(csv_path, fh, path_column, label_column, exclude_column, filter_column)
    except NotAFile as exc:
        raise InputError(f"the labels {csv_path} are {exc.reason}") from exc
    except OSError as exc:
        raise InputError(f"cannot read the labels {csv_path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise InputError(f"the labels {csv_path} are not UTF-8 text (save the CSV as UTF-8)") from None
    paths = tuple(str((root / r[path_column]).resolve()) for r in rows)
    names, labels = np.unique([r[label_column] for r in rows], return_inverse=True)
    groups = None
    if exclude_column:
        _, groups = np.unique([r[exclude_column] for r in rows], return_inverse=True)
    return Labels(paths=paths, labels=labels, groups=groups, names=tuple(str(n) for n in names))


def _read_rows(csv_path, fh, path_column, label_column, exclude_column, filter_column) -> tuple[list[dict], str]:
    """The CSV's kept rows, and the path column it uses."""
    reader = csv.DictReader(fh, delimiter=_delimiter(fh))
    columns = reader.fieldnames or []
    if path_column is None:
        path_column = next((c for c in ("path", "filename", "file") if c in columns), columns[0] if columns else "")
    for needed in (path_column, label_column, exclude_column, filter_column):
        if needed and needed not in columns:
            raise InputError(f"{csv_path} has no column '{needed}' (columns: {', '.join(columns)})")
    rows = [r for r in reader if not filter_column or str(r[filter_column]).strip().lower() not in ("false", "0", "no", "")]
    return rows, path_column


def _delimiter(fh) -> str:
    """The header's field separator: a comma, else a semicolon or a tab when the header has one of those
    and no comma (Excel saves "CSV" with semicolons where the comma is the decimal mark; tab-separated
    exports). `fh` is left at its start."""
    header = fh.readline()
    fh.seek(0)
    if "," in header:
        return ","
    return next((d for d in (";", "\t") if d in header), ",")
