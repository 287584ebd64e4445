"""Subfolders in the catalogue file: which folders hold how many images, and the images under some of them.

`SqliteFolders` is a part of `SqliteStore` (a mixin over its `SqliteFile`).
Both answers come from the `images` table's path column and its unique
index: the images under a folder (tombstones left out) are one index range (`path >= 'f/' AND
path < 'f0'`, '0' being the character after '/'), so narrowing a search to a
season of a million-image catalogue costs a range scan, not a table scan.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from .sqlite_file import SqliteFile, plain_errors

log = logging.getLogger(__name__)


def clean_folder(folder: str) -> str:
    """A subfolder as the catalogue writes it: relative, '/'-separated, no leading or trailing '/' ("" is the root)."""
    parts = [part for part in folder.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(parts)


class SqliteFolders:
    """The subfolder part of `SqliteStore` (reader: `folder_counts`, `ids_in_folders`)."""

    file: SqliteFile
    path: Path

    @plain_errors
    def folder_counts(self) -> dict[str, int]:
        # rtrim(path, <every character of path but '/'>) cuts the file name, leaving "dir/sub/" (or "").
        rows = self.file.conn.execute(
            "SELECT rtrim(path, replace(path, '/', '')) AS dir, count(*) FROM images WHERE error IS NULL AND gone IS NULL GROUP BY dir"
        )
        counts: Counter[str] = Counter()
        for folder, count in rows:
            parts = folder.rstrip("/").split("/") if folder else []
            for depth in range(len(parts) + 1):
                counts["/".join(parts[:depth])] += count
        return dict(sorted(counts.items()))

    @plain_errors
    def ids_in_folders(self, folders: Sequence[str]) -> np.ndarray:
        found: list[int] = []
        for folder in {clean_folder(f) for f in folders}:
            if not folder:
                found.extend(r[0] for r in self.file.conn.execute("SELECT id FROM images WHERE gone IS NULL"))
                continue
            found.extend(
                r[0] for r in self.file.conn.execute("SELECT id FROM images WHERE path >= ? AND path < ? AND gone IS NULL", (folder + "/", folder + "0"))
            )
        return np.unique(np.asarray(found, dtype=np.int64))
