"""Which failures to read a file pass by themselves, and which last until the file changes.

A file that is not a picture stays so until someone replaces it: reading it
again at every update would only cost time. A file that vanished while a
folder was being renamed, could not be read for its permissions, or sat on
a share that dropped for a moment is fine the next time: a catalogue must
read it again at the next update, whatever its size and date say.
"""

from __future__ import annotations

import errno

#: errno values that say "not now" rather than "never": moved, locked out, disk or network trouble, no memory.
TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOENT", "EACCES", "EPERM", "EIO", "ENXIO", "ETIMEDOUT", "ESTALE", "EAGAIN", "EINTR", "EBUSY", "ENOMEM",
        "ENFILE", "EMFILE", "ENETDOWN", "ENETUNREACH", "ENETRESET", "ECONNABORTED", "ECONNRESET", "EHOSTDOWN",
        "EHOSTUNREACH", "ENOLINK", "ECOMM", "EREMOTEIO", "ENOTCONN", "EDEADLK",
    )
    if hasattr(errno, name)
)

#: Words of the reasons older catalogues recorded for passing failures (before the kind was stored).
TRANSIENT_REASON_WORDS = (
    "does not exist", "permission denied", "disk reported an error", "not enough memory", "could not be decoded",
)


class PassingFailure(Exception):
    """A failure that says nothing about the file itself (a decoder thread that died, no memory left)."""


def is_transient(error: BaseException) -> bool:
    """True when `error`, or an error it was raised from, passes by itself (retry at the next update)."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 16:  # a cause chain is short; never loop on a cycle
        if isinstance(current, (MemoryError, PassingFailure)):
            return True
        if isinstance(current, OSError) and current.errno in TRANSIENT_ERRNOS:
            return True
        current = current.__cause__
        seen += 1
    return False


def reason_is_transient(reason: str) -> bool:
    """For records made before the kind of a failure was stored: judge by the words of its reason."""
    text = reason.lower()
    return any(words in text for words in TRANSIENT_REASON_WORDS)
