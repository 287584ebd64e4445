"""Thumbnails decoded off the GUI thread, kept in an LRU cache.

Painting code asks `ThumbnailCache.get(path, side)`: a cached picture comes
back at once; otherwise the decode is queued on a small QThreadPool and
`thumbnail_ready(path)` tells the views to repaint when it is done. Pictures
are decoded by the engine's `load_picture` (same EXIF rotation, transparency
and JPEG draft as the index) into QImages, which, unlike QPixmaps, may be made
outside the GUI thread.
"""

from __future__ import annotations

import bisect
import logging
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from PyQt5 import sip
from PyQt5.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal
from PyQt5.QtGui import QImage

from swimsearch.images import ImageError, load_picture

from .workers import Outbox

log = logging.getLogger(__name__)

#: Sizes pictures are decoded at; a request is served by the next size up, so
#: a few zoom steps share one decode.
SIDES = (128, 192, 256, 384, 512, 768, 1024, 2048)  # 2048: comparing copies detail by detail


@dataclass(frozen=True)
class Thumbnail:
    """A decoded picture (None when the file cannot be shown) and the file's own size."""

    image: QImage | None
    width: int | None = None
    height: int | None = None
    error: str | None = None

    @property
    def nbytes(self) -> int:
        return 0 if self.image is None else self.image.sizeInBytes()


def side_for(pixels: int) -> int:
    """The decode size that serves a request for `pixels` on the long side."""
    return SIDES[min(bisect.bisect_left(SIDES, pixels), len(SIDES) - 1)]


def decode(path: str, side: int) -> Thumbnail:
    """Decode one file into a Thumbnail (any thread)."""
    try:
        picture, (width, height) = load_picture(path, side)
    except ImageError as exc:
        return Thumbnail(None, error=exc.reason)
    except Exception:  # noqa: BLE001 - a thumbnail must never take the window down
        log.exception("cannot make a thumbnail of %s", path)
        return Thumbnail(None, error="the picture cannot be shown")
    return Thumbnail(to_qimage(picture), width, height)


def to_qimage(picture) -> QImage:
    """An RGB PIL image as a QImage that owns its pixels."""
    rgb = picture if picture.mode == "RGB" else picture.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format_RGB888).copy()


_caches: "weakref.WeakSet[ThumbnailCache]" = weakref.WeakSet()


def busy_caches() -> list["ThumbnailCache"]:
    """Caches whose decoder threads are still working (tests check none outlives them)."""
    return [c for c in list(_caches) if c.active_threads > 0]


class _Relay(Outbox):
    """Carries finished decodes from pool threads to the GUI thread."""

    decoded = pyqtSignal(object, object)  # (path, side), Thumbnail


class _DecodeTask(QRunnable):
    def __init__(self, key: tuple[str, int], relay: _Relay):
        super().__init__()
        self.key = key
        self.relay = relay

    def run(self) -> None:
        self.relay.post("decoded", self.key, decode(*self.key))


class ThumbnailCache(QObject):
    """An LRU cache of decoded pictures with a background decoder pool.

    Args:
        budget_bytes: memory the cached pictures may take.
        threads: decoder threads.
    """

    thumbnail_ready = pyqtSignal(str)  # path

    def __init__(self, budget_bytes: int = 160 << 20, threads: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self._budget = budget_bytes
        self._cache: OrderedDict[tuple[str, int], Thumbnail] = OrderedDict()
        self._bytes = 0
        self._pending: set[tuple[str, int]] = set()
        self._relay = _Relay(self)
        self._relay.decoded.connect(self._on_decoded)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._closed = False
        _caches.add(self)

    def get(self, path: str, pixels: int, *, urgent: bool = False) -> Thumbnail | None:
        """The picture of `path` for `pixels` on the long side, or None while it is being decoded."""
        side = side_for(pixels)
        found = self.peek(path, pixels)
        if found is not None:
            return found
        key = (path, side)
        if key not in self._pending and not self._closed:
            self._pending.add(key)
            self._pool.start(_DecodeTask(key, self._relay), 1 if urgent else 0)
        return None

    def peek(self, path: str, pixels: int) -> Thumbnail | None:
        """A cached picture at least as large as needed (or a failure), without queueing a decode."""
        side = side_for(pixels)
        for candidate in SIDES[SIDES.index(side) :]:
            found = self._cache.get((path, candidate))
            if found is not None:
                self._cache.move_to_end((path, candidate))
                return found
        return None

    def drop_queued(self) -> None:
        """Forget decodes not started yet (the results they were for are gone)."""
        self._pool.clear()
        self._pending.clear()

    def shutdown(self) -> None:
        """Stop decoding and wait for the pool threads (closing the window)."""
        self._closed = True
        self._pool.clear()
        self._pool.waitForDone()
        self._pending.clear()

    @property
    def active_threads(self) -> int:
        return 0 if sip.isdeleted(self._pool) else self._pool.activeThreadCount()

    def __len__(self) -> int:
        return len(self._cache)

    def _on_decoded(self, key: tuple[str, int], thumbnail: Thumbnail) -> None:
        self._pending.discard(key)
        if self._closed:
            return
        previous = self._cache.pop(key, None)
        if previous is not None:
            self._bytes -= previous.nbytes
        self._cache[key] = thumbnail
        self._bytes += thumbnail.nbytes
        while self._bytes > self._budget and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._bytes -= evicted.nbytes
        self.thumbnail_ready.emit(key[0])
