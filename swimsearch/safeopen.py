"""Opening a file a user named without waiting forever: pipes, devices and folders are refused at once.

`open("name")` on a named pipe (FIFO) waits until something writes to it,
and a device such as /dev/zero never ends. A catalogue, a list of queries or
a labels file named by mistake must give one plain sentence instead, so
files are opened without blocking and checked to be ordinary files before a
byte is read.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO


class NotAFile(OSError):
    """The path names something other than an ordinary file; `reason` says what, in words."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(errno.EINVAL, reason, os.fspath(path))
        self.reason = reason


def kind_of(mode: int) -> str | None:
    """What a non-regular file is, in words (None for an ordinary file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO), not a file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a file"
    return "not an ordinary file"


def open_regular(path: str | os.PathLike, *, pipe: bool = False) -> BinaryIO:
    """Open an ordinary file for reading in binary, without ever blocking.

    With `pipe`, a pipe is read as a stream too (`--queries <(ls *.jpg)`): to
    its end while a program writes into it, and as empty at once when none
    does (a named pipe nobody writes to is never waited on).

    Raises:
        NotAFile: it is a pipe (unless `pipe`), a device, a socket or a folder.
        OSError: it cannot be opened (missing, no permission...).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError as exc:
        raise NotAFile(path, "a folder, not a file") from exc
    try:
        mode = os.fstat(fd).st_mode
        reason = None if pipe and stat.S_ISFIFO(mode) else kind_of(mode)
        if reason is not None:
            raise NotAFile(path, reason)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # back to ordinary reads: a pipe with no writer reads as empty, not EAGAIN
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
