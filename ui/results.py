"""The results grid: a list model of matches, a delegate that paints cards, and the icon-mode view.

The engine is asked once per query for a generous list (`MAX_RESULTS`); the
Top-N and minimum-similarity controls filter that list here, instantly, with
no new search. Thumbnails come from the cache; the delegate paints a
placeholder until they are decoded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from PyQt5.QtCore import QAbstractListModel, QModelIndex, QPoint, QPointF, QRectF, QSize, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PyQt5.QtWidgets import QApplication, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from swimsearch.search import Match, SearchResult

from . import style
from .formatting import percent, similarity_text, similarity_words
from .session_types import Filters
from .thumbnails import ThumbnailCache
from .widgets import draw_picture

log = logging.getLogger(__name__)

#: The "Mirrored" badge is shown only on real matches: on unrelated designs
#: whether the flipped query scored a little higher is noise, not news.
MIRRORED_BADGE_FROM = 0.5

MATCH_ROLE = Qt.UserRole + 1
IS_QUERY_ROLE = Qt.UserRole + 2
SEVERAL_ROLE = Qt.UserRole + 3  # the result is for several designs searched together

#: A decision's badge: its words and colour.
DECISION_BADGES = {"same": ("Same design", style.SAME_DESIGN_BADGE), "different": ("Not similar", style.NOT_SIMILAR_BADGE)}


class ResultsModel(QAbstractListModel):
    """The matches of the current query that pass the Top-N and minimum-similarity filters."""

    filter_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._result: SearchResult | None = None
        self._visible: tuple[Match, ...] = ()
        self._filters = Filters()
        self._rows_by_path: dict[str, list[int]] = {}

    @property
    def result(self) -> SearchResult | None:
        return self._result

    @property
    def filters(self) -> Filters:
        return self._filters

    def show(self, result: SearchResult | None, filters: Filters) -> None:
        """Show `result` cut by `filters` (one reset, only when something changed)."""
        if result is not self._result or filters != self._filters:
            self._result, self._filters = result, filters
            self._refilter()

    def visible_matches(self) -> tuple[Match, ...]:
        return self._visible

    def visible_result(self) -> SearchResult | None:
        """The current result cut to what the grid shows (for export and the clipboard)."""
        return None if self._result is None else replace(self._result, matches=self._visible)

    def hidden_below_minimum(self) -> int:
        """Matches within the Top-N that the minimum similarity hides."""
        return 0 if self._result is None else self._filters.hidden_below_minimum(self._result.matches)

    def match_at(self, row: int) -> Match | None:
        return self._visible[row] if 0 <= row < len(self._visible) else None

    def is_query(self, match: Match) -> bool:
        """Whether `match` is (one of) the picture(s) searched with."""
        return self._result is not None and self._result.is_example(match.image_id)

    def several_examples(self) -> bool:
        return self._result is not None and len(self._result.example_ids) > 1

    def refresh_path(self, path: str) -> None:
        """Repaint the rows showing `path` (its thumbnail is ready)."""
        for row in self._rows_by_path.get(path, ()):
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.DecorationRole])

    def _refilter(self) -> None:
        self.beginResetModel()
        matches = () if self._result is None else self._result.matches
        self._visible = self._filters.visible(matches)
        self._rows_by_path = {}
        for row, m in enumerate(self._visible):
            self._rows_by_path.setdefault(m.path, []).append(row)
        self.endResetModel()
        self.filter_changed.emit()

    # --- Qt model interface -----------------------------------------------------------

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self._visible)

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole):
        match = self.match_at(index.row()) if index.isValid() else None
        if match is None:
            return None
        if role == Qt.DisplayRole:
            return match.name
        if role == MATCH_ROLE:
            return match
        if role == IS_QUERY_ROLE:
            return self.is_query(match)
        if role == SEVERAL_ROLE:
            return self.several_examples()
        if role in (Qt.ToolTipRole, Qt.AccessibleTextRole):
            # a decision is in the similarity words already ("36% · marked same design")
            flags = [f for f, on in (("duplicate", match.duplicate), ("mirrored", match.mirrored), ("file missing", match.missing)) if on]
            extra = f" ({', '.join(flags)})" if flags else ""
            return f"{match.name}: {similarity_words(match)}{extra}\n{match.path}"
        return None


@dataclass(frozen=True)
class Badge:
    """A pill on a result card: its words, where it goes, and its look."""

    text: str
    rect: QRectF
    font: QFont
    background: QColor
    foreground: QColor


class ResultDelegate(QStyledItemDelegate):
    """Paints one match as a card: thumbnail, score badge, duplicate mark, file name."""

    PAD = 8
    GAP = 12  # between cards

    def __init__(self, cache: ThumbnailCache, thumb_size: int, parent=None):
        super().__init__(parent)
        self.cache = cache
        self.thumb_size = thumb_size

    def card_size(self, font: QFont) -> QSize:
        text_height = QFontMetrics(font).height()
        return QSize(self.thumb_size + 2 * self.PAD, self.thumb_size + 2 * self.PAD + 6 + text_height)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:  # noqa: N802 - Qt override
        return self.card_size(option.font)

    def geometry(self, cell: QRectF, font: QFont) -> tuple[QRectF, QRectF]:
        """(card, picture frame) of a grid cell."""
        size = self.card_size(font)
        card = QRectF(cell.x() + (cell.width() - size.width()) / 2, cell.y() + self.GAP / 2, size.width(), size.height())
        return card, QRectF(card.x() + self.PAD, card.y() + self.PAD, self.thumb_size, self.thumb_size)

    def badges_of(self, index: QModelIndex, cell: QRectF, font: QFont) -> list[Badge]:
        """The badges the card of `index` in grid cell `cell` shows (what `paint` draws)."""
        card, frame = self.geometry(cell, font)
        return self.badge_layout(index.data(MATCH_ROLE), bool(index.data(IS_QUERY_ROLE)), frame, card, font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        match: Match = index.data(MATCH_ROLE)
        if match is None:
            return
        is_query = bool(index.data(IS_QUERY_ROLE))
        card, frame = self.geometry(QRectF(option.rect), option.font)
        selected = bool(option.state & QStyle.State_Selected)
        hovered = bool(option.state & QStyle.State_MouseOver)
        painter.save()
        painter.setRenderHint(QPainter.Antialiasing)

        # the card
        painter.setBrush(style.ACCENT_SOFT if selected else style.PANEL)
        border = style.ACCENT if selected else (style.BORDER_STRONG if hovered else style.BORDER)
        painter.setPen(QPen(border, 2 if selected else 1))
        painter.drawRoundedRect(card.adjusted(0.5, 0.5, -0.5, -0.5), 10, 10)

        # the picture
        painter.setPen(Qt.NoPen)
        painter.setBrush(style.IMAGE_BACKDROP)
        painter.drawRoundedRect(frame, 6, 6)
        self._paint_picture(painter, match, frame, option)

        for badge in self.badge_layout(match, is_query, frame, card, option.font):
            style.draw_badge(painter, badge.rect.x(), badge.rect.y(), badge.text, badge.font, badge.background, badge.foreground)

        # the file name
        text_rect = QRectF(card.x() + self.PAD, frame.bottom() + 6, self.thumb_size, QFontMetrics(option.font).height())
        several = bool(index.data(SEVERAL_ROLE))
        name = (f"Example: {match.name}" if several else "This design (query)") if is_query else match.name
        painter.setFont(option.font)
        painter.setPen(style.TEXT if selected else style.TEXT_MUTED)
        elided = QFontMetrics(option.font).elidedText(name, Qt.ElideMiddle, int(text_rect.width()))
        painter.drawText(text_rect, Qt.AlignHCenter | Qt.AlignVCenter, elided)
        painter.restore()

    def badge_layout(self, match: Match, is_query: bool, frame: QRectF, card: QRectF, font: QFont) -> list[Badge]:
        """Where a card's badges go: never on top of each other, never beyond the card.

        The score at the top left (a long one, "100% · same design" on a small card, as two
        pills, one under the other; on the smallest, the percentage alone), Duplicate at the top right, the decision at the bottom
        right, Mirrored at the bottom left; a badge that would cover another moves a row inwards.
        """
        small = style.badge_font(font)
        score_colour = style.ACCENT if is_query else style.SCORE_BADGE
        inner = frame.adjusted(6, 6, -6, -6)
        # the band beside the percentage: inside a band the list follows the ranking, so a later
        # match may read a few points higher; the band says they are equals
        score = similarity_text(match, decided=False)  # a decided match: its decision badge says the rest
        room = card.right() - 4 - inner.x()  # a badge may reach into the card's margin, never beyond it
        parts = [score]
        if style.badge_size(score, small).width() > room and " · " in score:
            parts = score.split(" · ", 1)
            # the smallest cards: the percentage alone (the band is in the tooltip and the preview)
            parts = parts[:1] + [p for p in parts[1:] if style.badge_size(p, small).width() <= room]
        top: list[Badge] = []
        for text in parts:
            y = top[-1].rect.bottom() + 3 if top else inner.y()
            top.append(Badge(text, QRectF(QPointF(inner.x(), y), style.badge_size(text, small)), small, score_colour, style.PANEL))
        if match.duplicate and not is_query:
            self._place(top, inner, Badge("Duplicate", QRectF(), small, style.DUPLICATE_BADGE, style.DUPLICATE_TEXT), top=True)
        bottom: list[Badge] = []
        if match.decision in DECISION_BADGES and not is_query:
            words, colour = DECISION_BADGES[match.decision]
            self._place(bottom, inner, Badge(words, QRectF(), small, colour, style.PANEL), top=False)
        if match.mirrored and match.score >= MIRRORED_BADGE_FROM and not is_query:
            plain = style.badge_font(font, bold=False)
            self._place(bottom, inner, Badge("Mirrored", QRectF(), plain, style.MIRRORED_BADGE, style.TEXT), top=False, left=True)
        return top + bottom

    @staticmethod
    def _place(placed: list[Badge], inner: QRectF, badge: Badge, *, top: bool, left: bool = False) -> None:
        """Put `badge` in a corner of `inner` (top or bottom, right unless `left`), a row inwards
        while it would cover one of `placed` (which it joins)."""
        size = style.badge_size(badge.text, badge.font)
        x = inner.x() if left else inner.right() - size.width()
        rect = QRectF(x, inner.y() if top else inner.bottom() - size.height(), size.width(), size.height())
        while any(rect.intersects(other.rect.adjusted(-3, -3, 3, 3)) for other in placed):
            rect.translate(0, (size.height() + 4) * (1 if top else -1))
        placed.append(replace(badge, rect=rect))

    def _paint_picture(self, painter: QPainter, match: Match, frame: QRectF, option: QStyleOptionViewItem) -> None:
        if match.missing:
            self._paint_note(painter, frame, "File missing", option)
            return
        pixels = int(self.thumb_size * painter.device().devicePixelRatioF())
        thumbnail = self.cache.get(match.path, pixels)
        if thumbnail is None:
            return  # still decoding: the empty backdrop is the placeholder
        if thumbnail.image is None:
            self._paint_note(painter, frame, "Cannot show\nthis picture", option)
            return
        draw_picture(painter, thumbnail.image, frame.adjusted(2, 2, -2, -2))

    @staticmethod
    def _paint_note(painter: QPainter, frame: QRectF, text: str, option: QStyleOptionViewItem) -> None:
        painter.save()
        painter.setPen(QPen(style.BORDER_STRONG, 1.2, Qt.DashLine))
        painter.setBrush(Qt.NoBrush)
        painter.drawRoundedRect(frame.adjusted(8, 8, -8, -8), 6, 6)
        painter.setPen(style.TEXT_MUTED)
        painter.setFont(option.font)
        painter.drawText(frame, Qt.AlignCenter | Qt.TextWordWrap, text)
        painter.restore()


class ResultsView(QListView):
    """Icon-mode grid of match cards, with a message when there is nothing to show.

    A click selects at once and searches from the result after the
    double-click interval, so a double-click opens the file instead of
    searching; Enter searches at once. Ctrl- or Shift-click selects several
    results without searching (then Ctrl+Enter, or the context menu, searches
    with them all: ui/steer_results.py).
    """

    search_requested = pyqtSignal(object)  # Match
    open_requested = pyqtSignal(object)  # Match
    context_menu_requested = pyqtSignal(object, QPoint)  # Match, global position

    def __init__(self, cache: ThumbnailCache, thumb_size: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("results")
        self.setViewMode(QListView.IconMode)
        self.setMovement(QListView.Static)
        self.setResizeMode(QListView.Adjust)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QListView.ExtendedSelection)
        self.setDragEnabled(False)
        self.setAcceptDrops(False)
        self.setMouseTracking(True)
        self.setSpacing(0)
        self.setVerticalScrollMode(QListView.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setContextMenuPolicy(Qt.CustomContextMenu)
        self.setMinimumWidth(260)
        self.delegate = ResultDelegate(cache, thumb_size, self)
        self.setItemDelegate(self.delegate)
        self.empty_title = ""
        self.empty_text = ""
        self._click_timer = QTimer(self)
        self._click_timer.setSingleShot(True)
        self._click_timer.timeout.connect(self._on_click_timer)
        self._clicked: Match | None = None
        self.clicked.connect(self._on_clicked)
        self.doubleClicked.connect(self._on_double_clicked)
        self.customContextMenuRequested.connect(self._on_context_menu)

    def set_thumb_size(self, size: int) -> None:
        self.delegate.thumb_size = size
        self._update_grid()
        self.viewport().update()

    def set_empty_text(self, title: str, text: str = "") -> None:
        """What the grid says when it has nothing to show: a title line and a hint below it."""
        self.empty_title, self.empty_text = title, text
        self.viewport().update()

    def current_match(self) -> Match | None:
        index = self.currentIndex()
        return index.data(MATCH_ROLE) if index.isValid() else None

    def selected_matches(self) -> tuple[Match, ...]:
        """The selected results in grid order."""
        rows = sorted(index.row() for index in self.selectionModel().selectedIndexes())
        return tuple(m for m in (self.model().match_at(row) for row in rows) if m is not None)

    def _update_grid(self, width: int | None = None) -> None:
        """Spread the columns over the whole width, so the grid has no ragged right edge."""
        card = self.delegate.card_size(self.font())
        # Always leave room for the scroll bar, so columns do not jump when it appears.
        width = (width if width is not None else self.width()) - 2 * self.frameWidth()
        width -= self.style().pixelMetric(QStyle.PM_ScrollBarExtent) + 2
        cell = card.width() + ResultDelegate.GAP
        columns = max(1, width // cell)
        self.setGridSize(QSize(max(cell, width // columns), card.height() + ResultDelegate.GAP))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._update_grid(event.size().width())
        super().resizeEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            match = self.current_match()
            if match is not None:
                self.search_requested.emit(match)
                return
        super().keyPressEvent(event)

    def _on_clicked(self, index: QModelIndex) -> None:
        if QApplication.keyboardModifiers() & (Qt.ControlModifier | Qt.ShiftModifier):
            self._click_timer.stop()  # choosing several designs, not searching yet
            self._clicked = None
            return
        self._clicked = index.data(MATCH_ROLE)
        self._click_timer.start(QApplication.doubleClickInterval())

    def _on_click_timer(self) -> None:
        match, self._clicked = self._clicked, None
        if match is not None:
            self.search_requested.emit(match)

    def _on_double_clicked(self, index: QModelIndex) -> None:
        self._click_timer.stop()
        match = index.data(MATCH_ROLE)
        if match is not None:
            self.open_requested.emit(match)

    def _on_context_menu(self, pos: QPoint) -> None:
        index = self.indexAt(pos)
        match = index.data(MATCH_ROLE) if index.isValid() else None
        if match is not None:
            if not self.selectionModel().isSelected(index):  # a right-click outside the selection chooses anew
                self.setCurrentIndex(index)
            self.context_menu_requested.emit(match, self.viewport().mapToGlobal(pos))

    def cancel_pending_click(self) -> None:
        self._click_timer.stop()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if self.model() is None or self.model().rowCount() > 0 or not (self.empty_title or self.empty_text):
            return
        painter = QPainter(self.viewport())
        area = QRectF(self.viewport().rect()).adjusted(40, 40, -40, -40)
        title_font = QFont(self.font())
        title_font.setBold(True)
        title_font.setPointSizeF(self.font().pointSizeF() * 1.3)
        flags = Qt.AlignHCenter | Qt.TextWordWrap
        painter.setFont(self.font())
        text_rect = painter.boundingRect(area, flags, self.empty_text) if self.empty_text else QRectF()
        painter.setFont(title_font)
        title_rect = painter.boundingRect(area, flags, self.empty_title) if self.empty_title else QRectF()
        top = area.center().y() - (title_rect.height() + 10 + text_rect.height()) / 2
        painter.setPen(style.TEXT)
        painter.drawText(QRectF(area.x(), top, area.width(), title_rect.height()), flags, self.empty_title)
        painter.setFont(self.font())
        painter.setPen(style.TEXT_MUTED)
        painter.drawText(QRectF(area.x(), top + title_rect.height() + 10, area.width(), text_rect.height()), flags, self.empty_text)
