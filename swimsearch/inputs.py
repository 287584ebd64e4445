"""The files a user hands the engine: lists of image paths.

Read the forgiving way (a byte order mark, Windows line ends, comments) and
refused in one plain sentence that names the file and the line.
"""

from __future__ import annotations

import codecs
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class InputError(ValueError):
    """A list or labels file that cannot be read as asked; the message is one plain sentence."""


def read_path_list(path: str | os.PathLike) -> list[str]:
    """The image paths in a list file, one per line, as written.

    Blank lines and lines starting with '#' are skipped and spaces around a
    path are dropped. A UTF-8 byte order mark (lists saved by Notepad start
    with one) and Windows line ends are fine.

    Raises:
        InputError: the file cannot be read, or a line is not UTF-8 text.
    """
    try:
        data = Path(path).read_bytes()
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
