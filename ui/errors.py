"""Turn exceptions into one plain sentence for the user (house style point 15).

Known failures (an unreadable image, a damaged or busy catalogue, a missing
model, a file that cannot be written) already carry a sentence meant for a
person; anything else is logged with its traceback and gets a generic message
that says where the details are.
"""

from __future__ import annotations

import logging
import os

from swimsearch.errors import CatalogueError
from swimsearch.images import ImageError
from swimsearch.model import ModelError

log = logging.getLogger(__name__)

#: Exceptions whose message is written for the user.
KNOWN_ERRORS = (ImageError, CatalogueError, ModelError, OSError)

#: Where the log file is, for the generic message (app.py sets it when it adds the file handler).
log_file: str | None = None


def plain_message(exc: BaseException, doing: str = "working") -> str:
    """One sentence for the user about `exc`; unknown errors are logged with their traceback.

    Args:
        exc: the exception.
        doing: what the app was doing, for the generic message ("searching").
    """
    if isinstance(exc, ImageError):
        return f"The image {os.path.basename(exc.path) or exc.path} cannot be read: {exc.reason}."
    if isinstance(exc, (CatalogueError, ModelError)):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"The file{where} cannot be used: {exc.strerror or exc}."
    log.error("unexpected error while %s", doing, exc_info=exc)
    details = f" The details are in the log file {log_file}." if log_file else " The details are in the log."
    return f"Something went wrong while {doing}.{details}"
