"""The query panel's steering controls (issue 12): a box drawn on the query picture, and the colour slider.

`BoxPicture` is the query's picture view: drag on the picture to draw a box
around a detail (a print, a strap, a neckline, a logo); when the mouse is
released the box is offered as fractions of the picture (`box_drawn`), and
the box the query on show is searched by is drawn over the picture, the rest
dimmed. A click without a drag still reaches the panel (it opens a file).

`ColourControl` is the "colour matters" slider, from *ignore colour* to
*match colour*; its middle ranks as the network sees it (swimsearch.colour).
"""

from __future__ import annotations

import logging

from PyQt5.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QPainter, QPainterPath, QPen
from PyQt5.QtWidgets import QHBoxLayout, QLabel, QSlider, QWidget

from swimsearch.regions import MIN_BOX

from . import style
from .queries import Box
from .thumbnails import ThumbnailCache
from .widgets import PictureView

log = logging.getLogger(__name__)

#: A drag shorter than this (pixels) is a click.
DRAG_DISTANCE = 6


class BoxPicture(PictureView):
    """A picture view on which a box can be drawn, and that shows the box a query is searched by."""

    box_drawn = pyqtSignal(object)  # (x, y, w, h) in fractions of the picture

    def __init__(self, cache: ThumbnailCache, placeholder: str = "", parent: QWidget | None = None):
        super().__init__(cache, placeholder, parent)
        self._box: Box | None = None
        self._drawing_enabled = False
        self._start: QPointF | None = None
        self._now: QPointF | None = None
        self.setMouseTracking(True)

    @property
    def box(self) -> Box | None:
        return self._box

    def set_box(self, box: Box | None) -> None:
        if box != self._box:
            self._box = box
            self.update()

    def set_drawing_enabled(self, enabled: bool) -> None:
        """Whether a drag draws a box (a query picture is shown and a catalogue is open)."""
        self._drawing_enabled = enabled
        if not enabled:
            self._start = self._now = None
            self.unsetCursor()

    def box_rect(self, box: Box) -> QRectF | None:
        """Where a box lies on screen, or None while no picture is shown."""
        shown = self.picture_rect()
        if shown is None:
            return None
        x, y, w, h = box
        return QRectF(shown.x() + x * shown.width(), shown.y() + y * shown.height(), w * shown.width(), h * shown.height())

    def _dragged_box(self) -> Box | None:
        """The box dragged so far, in fractions of the picture, clamped to it (None: too small, or no picture)."""
        shown = self.picture_rect()
        if shown is None or self._start is None or self._now is None:
            return None
        dragged = QRectF(self._start, self._now).normalized().intersected(shown)
        if dragged.width() < DRAG_DISTANCE or dragged.height() < DRAG_DISTANCE:
            return None
        box = (
            (dragged.x() - shown.x()) / shown.width(),
            (dragged.y() - shown.y()) / shown.height(),
            dragged.width() / shown.width(),
            dragged.height() / shown.height(),
        )
        return box if box[2] >= MIN_BOX and box[3] >= MIN_BOX else None

    # --- mouse ---------------------------------------------------------------------------

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        # A press in the margin around the picture starts a box too: a hand reaching for the
        # picture's edge starts just outside it, and the box is clamped to the picture anyway.
        # Without this the press fell through to the panel, whose release opens a file dialog.
        shown = self.picture_rect()
        if self._drawing_enabled and event.button() == Qt.LeftButton and shown is not None and self.rect().contains(event.pos()):
            self._start = self._now = QPointF(event.pos())
            event.accept()
            return
        event.ignore()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        shown = self.picture_rect()
        if self._drawing_enabled and shown is not None and shown.contains(event.pos()):
            self.setCursor(Qt.CrossCursor)
        else:
            self.unsetCursor()
        if self._start is not None:
            self._now = QPointF(event.pos())
            self.update()
            event.accept()
            return
        event.ignore()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._start is None:
            event.ignore()
            return
        self._now = QPointF(event.pos())
        moved = (self._now - self._start).manhattanLength() >= DRAG_DISTANCE
        box = self._dragged_box()
        self._start = self._now = None
        self.update()
        if not moved:
            event.ignore()  # a click: the panel opens a file
            return
        event.accept()
        if box is not None:
            self.box_drawn.emit(box)

    # --- drawing -------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        shown = self.picture_rect()
        if shown is None:
            return
        if self._start is not None and self._now is not None:
            rect = QRectF(self._start, self._now).normalized().intersected(shown)
        elif self._box is not None:
            rect = self.box_rect(self._box)
        else:
            return
        if rect is None or rect.isEmpty():
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        outside = QPainterPath()
        outside.addRect(shown)
        inside = QPainterPath()
        inside.addRect(rect)
        painter.fillPath(outside.subtracted(inside), QColor(0, 0, 0, 90))  # the rest of the picture, dimmed
        painter.setPen(QPen(style.ACCENT, 2))
        painter.setBrush(Qt.NoBrush)
        painter.drawRect(rect)


class ColourControl(QWidget):
    """ "Colour: ignore ——●—— match": how much colour matters, 0..1, the middle as the network sees it."""

    colour_changed = pyqtSignal(float)

    STEPS = 100

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, self.STEPS)
        self.slider.setValue(self.STEPS // 2)
        self.slider.setPageStep(self.STEPS // 4)
        self.slider.setTickPosition(QSlider.TicksBelow)
        self.slider.setTickInterval(self.STEPS // 2)
        self.slider.setAccessibleName("How much colour matters")
        self.setToolTip(
            "How much colour matters. Left: ignore colour (a design in another colourway ranks as high). "
            "Middle: as the network sees it. Right: match colour."
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        for widget in (QLabel("Colour:"), QLabel("ignore"), self.slider, QLabel("match")):
            layout.addWidget(widget, 1 if widget is self.slider else 0)
        self.slider.valueChanged.connect(self._on_value_changed)
        self.slider.sliderReleased.connect(self._emit)

    def colour(self) -> float:
        return self.slider.value() / self.STEPS

    def set_colour(self, colour: float) -> None:
        """Show a value without announcing it (the session already knows it)."""
        self.slider.blockSignals(True)
        self.slider.setValue(round(colour * self.STEPS))
        self.slider.blockSignals(False)

    def _on_value_changed(self, _value: int) -> None:
        if not self.slider.isSliderDown():  # while dragging, only the release counts: one search, not fifty
            self._emit()

    def _emit(self) -> None:
        self.colour_changed.emit(self.colour())
