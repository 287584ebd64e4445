"""Small widgets shared by the query panel and the preview: a picture view and an eliding label."""

from __future__ import annotations

import logging
import os
from typing import Sequence

from PyQt5.QtCore import QEvent, QRectF, QSize, QSizeF, Qt, pyqtSignal
from PyQt5.QtGui import QImage, QPainter, QPen
from PyQt5.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from . import style
from .thumbnails import Thumbnail, ThumbnailCache

log = logging.getLogger(__name__)


def fit_rect(size: QSize | QSizeF, bounds: QRectF) -> QRectF:
    """The largest rectangle of `size`'s aspect ratio centred in `bounds` (never enlarged past 2x)."""
    width, height = size.width(), size.height()
    if width <= 0 or height <= 0:
        return QRectF(bounds)
    scale = min(bounds.width() / width, bounds.height() / height)
    w, h = width * scale, height * scale
    return QRectF(bounds.x() + (bounds.width() - w) / 2, bounds.y() + (bounds.height() - h) / 2, w, h)


def draw_picture(painter: QPainter, image: QImage, bounds: QRectF) -> None:
    """Draw `image` scaled to fit `bounds`, smoothly, in logical pixels."""
    logical = QSizeF(image.width() / image.devicePixelRatio(), image.height() / image.devicePixelRatio())
    painter.save()
    painter.setRenderHint(QPainter.SmoothPixmapTransform)
    painter.drawImage(fit_rect(logical, bounds), image)
    painter.restore()


def human_size(size: int) -> str:
    """A file size in the units people read ("245 KB", "3.1 MB")."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1_000_000:.1f} MB"


def file_size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


#: The least height of a card's picture (PictureView).
MIN_PICTURE = 120


class PictureView(QWidget):
    """One picture, scaled to fit and decoded off the GUI thread; a placeholder until it is ready.

    Shows a file (through the thumbnail cache) or picture data given as a
    QImage (pasted images). `picture_ready` reports the file's own size once
    it is known.
    """

    picture_ready = pyqtSignal(object)  # Thumbnail

    def __init__(self, cache: ThumbnailCache, placeholder: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._cache = cache
        self._placeholder = placeholder
        self._path: str | None = None
        self._image: QImage | None = None
        self._missing = False
        self._dashed = False
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        # the side column scrolls rather than squash the query and the selected match below this (at 64 px, the
        # floor before round 13, a box could hardly be drawn on the query at 800 x 600: a reviewer)
        self.setMinimumSize(64, MIN_PICTURE)
        cache.thumbnail_ready.connect(self._on_thumbnail_ready)

    @property
    def path(self) -> str | None:
        return self._path

    def set_placeholder(self, text: str, *, dashed: bool = False) -> None:
        self._placeholder = text
        self._dashed = dashed
        self.update()

    def show_path(self, path: str, *, missing: bool = False) -> None:
        self._path, self._image, self._missing = path, None, missing
        self._dashed = False
        thumbnail = None if missing else self._cache.get(path, self._wanted_pixels(), urgent=True)
        if thumbnail is not None:
            self.picture_ready.emit(thumbnail)
        self.update()

    def show_image(self, image: QImage) -> None:
        self._path, self._image, self._missing = None, image, False
        self._dashed = False
        self.picture_ready.emit(Thumbnail(image, image.width(), image.height()))
        self.update()

    def clear(self) -> None:
        self._path, self._image, self._missing = None, None, False
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(280, 280)

    def _wanted_pixels(self) -> int:
        ratio = self.devicePixelRatioF()
        return int(max(self.width(), self.height(), 256) * ratio)

    def _current(self) -> Thumbnail | None:
        if self._image is not None:
            return Thumbnail(self._image, self._image.width(), self._image.height())
        if self._path is None or self._missing:
            return None
        return self._cache.get(self._path, self._wanted_pixels(), urgent=True)

    def picture_rect(self) -> QRectF | None:
        """Where the picture is drawn in this widget, or None while none is shown."""
        thumbnail = self._current()
        if thumbnail is None or thumbnail.image is None:
            return None
        image = thumbnail.image
        logical = QSizeF(image.width() / image.devicePixelRatio(), image.height() / image.devicePixelRatio())
        return fit_rect(logical, QRectF(self.rect()).adjusted(9, 9, -9, -9))

    def _on_thumbnail_ready(self, path: str) -> None:
        if path == self._path:
            thumbnail = self._cache.peek(path, self._wanted_pixels())
            if thumbnail is not None:
                self.picture_ready.emit(thumbnail)
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        bounds = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        painter.setPen(Qt.NoPen)
        painter.setBrush(style.IMAGE_BACKDROP)
        painter.drawRoundedRect(bounds, 8, 8)
        thumbnail = self._current()
        if thumbnail is not None and thumbnail.image is not None:
            draw_picture(painter, thumbnail.image, bounds.adjusted(8, 8, -8, -8))
            return
        if self._missing:
            text = "This file is missing\n(moved or deleted?)"
        elif thumbnail is not None:
            text = f"This picture cannot be shown:\n{thumbnail.error}"
        elif self._path is not None:
            text = "Loading…"
        else:
            text = self._placeholder
        if self._dashed:
            pen = QPen(style.BORDER_STRONG, 1.5, Qt.DashLine)
            painter.setPen(pen)
            painter.setBrush(Qt.NoBrush)
            painter.drawRoundedRect(bounds.adjusted(6, 6, -6, -6), 8, 8)
        painter.setPen(style.TEXT_MUTED)
        painter.drawText(bounds.adjusted(16, 16, -16, -16), Qt.AlignCenter | Qt.TextWordWrap, text)


class ElidedLabel(QLabel):
    """A one-line label that elides its text in the middle to fit, with the full text as tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None, mode: Qt.TextElideMode = Qt.ElideMiddle):
        super().__init__(parent)
        self._full = text
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    # The size hints follow the full text, never the elided one: otherwise
    # eliding changes the hint, the layout resizes the label, it elides again,
    # and a layout that squeezes it (the status bar) can ping-pong for ever.
    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        margins = self.contentsMargins()  # a style sheet's padding (the status bar's labels) is drawn inside
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 4 + margins.left() + margins.right(),
                     self._line(super().sizeHint().height()))

    def _line(self, height: int) -> int:
        """As tall empty as with text: QLabel hints an empty one a pixel lower (its line spacing, not its font's
        height), and a card's picture grew that much until the row was filled (a reviewer)."""
        margins = self.contentsMargins()
        return max(height, self.fontMetrics().height() + margins.top() + margins.bottom())

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if watched is self.widget() and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()  # the column's need changed: the splitter asks minimumSizeHint again
        return super().eventFilter(watched, event)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(10, self._line(super().minimumSizeHint().height()))  # a set minimumWidth() still wins

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(10, self.contentsRect().width() - 2)
        text = self.fontMetrics().elidedText(self._full, self._mode, width)
        if text != self.text():
            super().setText(text)


class HeaderBar(QWidget):
    """A title on the left and controls on the right, in one row, or two rows when the title would not fit.

    In two rows the title has the `beside_title` controls at its right and the other
    controls go below, so a narrow window (800 px) never clips a control's text.
    """

    def __init__(self, title: ElidedLabel, controls: list[QWidget | int], parent: QWidget | None = None, *,
                 beside_title: Sequence[QWidget] = ()):
        super().__init__(parent)
        self.title = title
        self._beside = list(beside_title)
        self._controls = list(controls)
        self._top = QHBoxLayout()
        self._top.setContentsMargins(0, 0, 0, 0)
        self._top.setSpacing(8)
        self._row = QHBoxLayout()
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(8)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.setSpacing(4)
        layout.addLayout(self._top)
        layout.addLayout(self._row)
        self._two_rows: bool | None = None
        self._arrange(two_rows=False)

    def set_title(self, text: str) -> None:
        self.title.set_full_text(text)
        self._rearrange()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._rearrange()

    def _rearrange(self) -> None:
        needed = self.title.fontMetrics().horizontalAdvance(self.title.full_text()) + 24
        controls = sum((item if isinstance(item, int) else item.sizeHint().width()) + self._row.spacing()
                       for item in [*self._beside, *self._controls])
        self._arrange(two_rows=self.width() - 12 < needed + controls)

    def _arrange(self, *, two_rows: bool) -> None:
        if two_rows == self._two_rows:
            return
        self._two_rows = two_rows
        for row in (self._top, self._row):
            while row.count():
                row.takeAt(0)  # only the places go: the widgets stay this bar's children
        if two_rows:
            top, rest = [self.title, *self._beside], [*self._controls]
            self._row.addStretch(1)  # the spacer pushes the controls right
        else:
            top, rest = [], [self.title, *self._beside, *self._controls]
        for row, items in ((self._top, top), (self._row, rest)):
            for item in items:
                if isinstance(item, int):
                    row.addSpacing(item)
                else:  # the title takes all the spare width
                    row.addWidget(item, 1 if item is self.title else 0)


class PictureCard(QFrame):
    """A card with a heading, a picture, its name and a details line (size in pixels and bytes).

    The query panel and the preview are both such cards; subclasses add
    their own rows to `layout`, and may show the picture with their own view (`picture_class`).
    """

    picture_class: type[PictureView] = PictureView
    occasional: Sequence[QWidget] = ()  # rows shown only now and then (`rows_height`)

    def __init__(self, heading: str, cache: ThumbnailCache, placeholder: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        title = QLabel(heading)
        title.setObjectName("heading")
        self.picture = self.picture_class(cache, placeholder)
        self.picture.picture_ready.connect(self._on_picture_ready)
        self.name_label = ElidedLabel()
        self.name_label.setObjectName("title")
        self.name_label.setTextInteractionFlags(Qt.NoTextInteraction)
        self.details_label = ElidedLabel(mode=Qt.ElideRight)  # one line, the full text as tooltip
        self.details_label.setObjectName("muted")
        self.details_label.setTextInteractionFlags(Qt.NoTextInteraction)
        self.layout = QVBoxLayout(self)
        self.layout.setContentsMargins(12, 8, 12, 10)
        self.layout.setSpacing(6)
        self.layout.addWidget(title)
        self.layout.addWidget(self.picture, 1)
        self.layout.addWidget(self.name_label)
        self._file_size: int | None = None
        self._dimensions = ""

    def details(self) -> str:
        return self.details_label.full_text()

    def _set_file(self, path: str | None, width: int | None = None, height: int | None = None) -> None:
        """Forget the previous picture's sizes; take the new file's size and, when known, its pixels."""
        self._file_size = file_size(path) if path else None
        self._dimensions = f"{width} × {height} px" if width and height else ""

    def _size_parts(self) -> list[str]:
        parts = [self._dimensions] if self._dimensions else []
        if self._file_size is not None:
            parts.append(human_size(self._file_size))
        return parts

    def _on_picture_ready(self, thumbnail: Thumbnail) -> None:
        if not self._dimensions and thumbnail.width and thumbnail.height:
            self._dimensions = f"{thumbnail.width} × {thumbnail.height} px"
            self._update_details()

    def _update_details(self) -> None:
        raise NotImplementedError

    def rows_height(self) -> int:
        """The card's least height less its picture's with every row shown, as with a picture (a query and its
        controls, a match and its buttons; not the `occasional` ones, such as badges). Asked before the card is first shown: rows hidden now are shown for
        the measure and hidden again, which nobody sees."""
        hidden = [w for w in self.findChildren(QWidget) if w.isHidden() and w not in self.occasional]
        for widget in hidden:
            widget.setVisible(True)
        self.layout.invalidate()
        height = self.layout.minimumSize().height() - self.picture.minimumSizeHint().expandedTo(self.picture.minimumSize()).height()
        for widget in hidden:
            widget.setVisible(False)
        self.layout.invalidate()
        return height

    def keep_rows_room(self) -> None:
        """Rows keep their room while hidden, so the picture is as tall with nothing shown yet as with a picture
        and its rows (before the first search the drop zone and the match area were 202 / 324 px at 1280 x 800,
        then jumped to 148 / 146: a reviewer)."""
        layouts = [self.layout]
        while layouts:  # the card's rows and those of its nested layouts; not what a row holds (badges close up)
            layout = layouts.pop()
            for item in (layout.itemAt(i) for i in range(layout.count())):
                widget = item.widget()
                if item.layout() is not None:
                    layouts.append(item.layout())
                elif widget is not None and widget is not self.picture and widget not in self.occasional:
                    policy = widget.sizePolicy()
                    policy.setRetainSizeWhenHidden(True)
                    widget.setSizePolicy(policy)


class CardSplitter(QSplitter):
    """Picture cards one above the other (the query, the selected match), their pictures equally tall.

    Split by size hints, the selected match's picture was 55 x 70 px under a query of 270 x 200 (a reviewer).
    The split follows the column's height alone, each card counted with all its rows (`rows_height`), never what
    a card shows now: a picture does not move when results arrive or a match is chosen (a box being drawn on
    the query stays under the hand). Once the user drags the handle, the first picture keeps its part of the two
    pictures' height (`share`, remembered by the window: a reviewer's split was lost at each start).
    """

    def __init__(self, cards: Sequence[PictureCard], parent: QWidget | None = None, *, share: float | None = None):
        super().__init__(Qt.Vertical, parent)
        self._rows = [card.rows_height() for card in cards]
        for card in cards:
            card.keep_rows_room()
            self.addWidget(card)
        self.share = share if share is not None and 0.05 <= share <= 0.95 and len(cards) == 2 else None
        self._laid: list[int] = []  # the sizes last set here
        self.splitterMoved.connect(self._on_moved)

    def _on_moved(self, *_) -> None:
        pictures = [max(0, size - rows) for size, rows in zip(self.sizes(), self._rows)]
        # a drag that moved nothing (both pictures at their least) leaves the share as it is (a reviewer, round 14)
        if len(pictures) == 2 and sum(pictures) > 0 and self.sizes() != self._laid:
            self.share = min(0.95, max(0.05, pictures[0] / sum(pictures)))
            self._laid = self.sizes()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.height() > 0:
            free = self.height() - self.handleWidth() * (self.count() - 1) - sum(self._rows)
            if self.share is None:
                pictures = [max(MIN_PICTURE, free // self.count())] * self.count()
            else:
                first = max(MIN_PICTURE, round(free * self.share))
                pictures = [first, max(MIN_PICTURE, free - first)]
            self.setSizes([rows + picture for rows, picture in zip(self._rows, pictures)])
            self._laid = self.sizes()


class ColumnScroll(QScrollArea):
    """A column that scrolls up and down when the window is too low for it, never squashing its controls.

    As wide as its widget needs (with room for the scroll bar), however that need changes while the
    window is open (the selected match's buttons appear when a match is chosen).
    """

    def __init__(self, widget: QWidget, *, min_width: int = 0, parent: QWidget | None = None):
        super().__init__(parent)
        widget.setMinimumWidth(min_width)
        self.setWidget(widget)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        # the scroll bar's room is kept when it is hidden: the column's pictures keep their width when it comes
        # and goes (the selected match's buttons made the column scroll at 800 x 600 and the query 14 px narrower)
        self.verticalScrollBar().rangeChanged.connect(self._keep_width)
        self._keep_width()

    def _keep_width(self, *_) -> None:
        bar = self.verticalScrollBar()
        self.setViewportMargins(0, 0, 0 if bar.maximum() > 0 else bar.sizeHint().width(), 0)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if watched is self.widget() and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()  # the column's need changed: the splitter asks minimumSizeHint again
        return super().eventFilter(watched, event)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        inner = self.widget().minimumSizeHint().expandedTo(self.widget().minimumSize())
        return QSize(inner.width() + self.verticalScrollBar().sizeHint().width(), 64)
