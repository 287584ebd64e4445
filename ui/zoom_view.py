"""Two pictures side by side with one zoom and one pan, to compare copies of a design detail by detail.

Each `ZoomView` shows its picture fitted to the view times a zoom factor; a
`ZoomPair` keeps the two in step: the same factor (relative to fit, so a
4000-pixel original and its 1000-pixel copy show the same part of the
design) and the same position (as a fraction of the scrollable range).
Wheel or +/- zoom, dragging pans, double-click or 0 fits again. Pictures
come from the window's thumbnail cache, decoded off the GUI thread.
"""

from __future__ import annotations

import logging

from PyQt5.QtCore import QObject, Qt, pyqtSignal
from PyQt5.QtGui import QPainter, QPixmap
from PyQt5.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

from . import style
from .thumbnails import ThumbnailCache

log = logging.getLogger(__name__)

#: Long side the pictures are decoded at for comparing (the cache's largest size).
DETAIL_PIXELS = 2048
ZOOM_STEP = 1.25
MAX_ZOOM = 16.0


class ZoomView(QGraphicsView):
    """One picture, fitted, zoomable and pannable; emits its zoom and scroll position as the user moves it."""

    zoom_changed = pyqtSignal(float)
    position_changed = pyqtSignal(float, float)  # fractions of the horizontal and vertical scroll ranges

    def __init__(self, cache: ThumbnailCache, parent: QWidget | None = None):
        super().__init__(parent)
        self._cache = cache
        self.path: str | None = None
        self.zoom = 1.0
        self._syncing = False
        self.setScene(QGraphicsScene(self))
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.SmoothTransformation)
        self.scene().addItem(self._item)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setRenderHint(QPainter.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setBackgroundBrush(style.IMAGE_BACKDROP)
        self.setMinimumSize(160, 160)
        self.message = ""
        cache.thumbnail_ready.connect(self._on_thumbnail_ready)
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            bar.valueChanged.connect(self._on_scrolled)

    def show_path(self, path: str | None) -> None:
        self.path = path
        self.message = ""
        self._item.setPixmap(QPixmap())
        if path is not None:
            self._take(self._cache.get(path, DETAIL_PIXELS, urgent=True))
        self._apply()

    def has_picture(self) -> bool:
        return not self._item.pixmap().isNull()

    def set_zoom(self, zoom: float) -> None:
        """Zoom relative to fit (1.0: the whole picture in view)."""
        zoom = max(1.0, min(MAX_ZOOM, zoom))
        if abs(zoom - self.zoom) > 1e-6:
            self.zoom = zoom
            self._apply()
            if not self._syncing:
                self.zoom_changed.emit(zoom)

    def set_position(self, x: float, y: float) -> None:
        self._syncing = True
        try:
            for bar, fraction in ((self.horizontalScrollBar(), x), (self.verticalScrollBar(), y)):
                bar.setValue(round(bar.minimum() + fraction * (bar.maximum() - bar.minimum())))
        finally:
            self._syncing = False

    def position(self) -> tuple[float, float]:
        out = []
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            span = bar.maximum() - bar.minimum()
            out.append((bar.value() - bar.minimum()) / span if span else 0.5)
        return out[0], out[1]

    def _take(self, thumbnail) -> None:
        if thumbnail is None:
            self.message = "Loading…"
        elif thumbnail.image is None:
            self.message = f"This picture cannot be shown:\n{thumbnail.error}"
        else:
            self._item.setPixmap(QPixmap.fromImage(thumbnail.image))
            self.scene().setSceneRect(self._item.boundingRect())
            self.message = ""
        self.viewport().update()

    def _on_thumbnail_ready(self, path: str) -> None:
        if path == self.path and not self.has_picture():
            self._take(self._cache.peek(path, DETAIL_PIXELS))
            self._apply()

    def _apply(self) -> None:
        """Scale = fit x zoom, keeping the centre."""
        if not self.has_picture():
            self.resetTransform()
            return
        rect = self._item.boundingRect()
        view = self.viewport().rect()
        fit = min(view.width() / max(1.0, rect.width()), view.height() / max(1.0, rect.height()))
        scale = fit * self.zoom
        centre = self.mapToScene(view.center())
        self.resetTransform()
        self.scale(scale, scale)
        self.centerOn(centre if self.zoom > 1.0 else rect.center())

    def _on_scrolled(self) -> None:
        if not self._syncing:
            self.position_changed.emit(*self.position())

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override: the wheel zooms, as in image viewers
        step = ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP
        self.set_zoom(self.zoom * step)
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.set_zoom(1.0)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._apply()

    def drawForeground(self, painter: QPainter, rect) -> None:  # noqa: N802 - Qt override
        if self.message:
            painter.save()
            painter.resetTransform()
            painter.setPen(style.TEXT_MUTED)
            painter.drawText(self.viewport().rect(), Qt.AlignCenter | Qt.TextWordWrap, self.message)
            painter.restore()


class ZoomPair(QObject):
    """Keeps two ZoomViews at one zoom and one position."""

    def __init__(self, left: ZoomView, right: ZoomView, parent: QObject | None = None):
        super().__init__(parent)
        self.views = (left, right)
        for view, other in ((left, right), (right, left)):
            view.zoom_changed.connect(lambda zoom, o=other, v=view: self._follow_zoom(v, o, zoom))
            view.position_changed.connect(lambda x, y, o=other: o.set_position(x, y))

    def _follow_zoom(self, view: ZoomView, other: ZoomView, zoom: float) -> None:
        other._syncing = True
        try:
            other.set_zoom(zoom)
        finally:
            other._syncing = False
        other.set_position(*view.position())

    def zoom_by(self, step: float) -> None:
        self.views[0].set_zoom(self.views[0].zoom * step)

    def fit(self) -> None:
        self.views[0].set_zoom(1.0)
