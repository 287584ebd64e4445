"""The window's status bar: a long message is shortened to the room it has, never drawn over the catalogue's name.

QStatusBar draws a message from its left edge, cut off wherever the first
permanent item begins: at 800 px a long message ("Exported 30 matches to
/home/…/matches.csv") stopped mid-word against the catalogue's name, over the
search times. Here the message is elided in the middle (its start and its
file name stay readable), the whole of it in the bar's tooltip, and the
catalogue's name takes at most `NAME_SHARE` of the bar, elided in the middle
too (its design count stays).
"""

from __future__ import annotations

from PyQt5.QtCore import QEvent, QRect, Qt
from PyQt5.QtGui import QPainter
from PyQt5.QtWidgets import QMainWindow, QSizePolicy, QStatusBar, QStyle, QStyleOption, QToolTip, QWidget

from .widgets import ElidedLabel

#: The largest part of the bar the catalogue's name may take; a message has the rest.
NAME_SHARE = 0.45
#: Room between the end of a message and the first item to its right (px).
GAP = 12


class StatusBar(QStatusBar):
    """A status bar whose temporary message is elided to fit beside its permanent items."""

    @classmethod
    def install(cls, window: QMainWindow) -> "StatusBar":
        """A new status bar, with its size grip, made `window`'s."""
        bar = cls()
        bar.setSizeGripEnabled(True)
        window.setStatusBar(bar)
        return bar

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self._capped: list[QWidget] = []
        self.messageChanged.connect(lambda _message: self.update())

    def addPermanentWidget(self, widget: QWidget, stretch: int = 0, capped: bool = False) -> None:  # noqa: N802 - Qt name
        """As QStatusBar's; `capped`: the widget takes at most NAME_SHARE of the bar (it elides itself)."""
        super().addPermanentWidget(widget, stretch)
        self._permanent.append(widget)
        if capped:
            self._capped.append(widget)
            self._cap()

    def message_rect(self) -> QRect:
        """Where a message is drawn: from the left edge to the first visible permanent item, less a gap."""
        right = self.width() - 12  # QStatusBar's own margin for its size grip
        for widget in self._permanent:
            if widget.isVisible():
                right = min(right, widget.x() - GAP)
                break
        return QRect(6, 0, max(0, right - 6), self.height())

    def shown_message(self) -> str:
        """The message as it is drawn (elided to `message_rect`)."""
        return self.fontMetrics().elidedText(self.currentMessage(), Qt.ElideMiddle, self.message_rect().width())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._cap()

    def _cap(self) -> None:
        for widget in self._capped:
            widget.setMaximumWidth(max(160, int(self.width() * NAME_SHARE)))

    def event(self, event) -> bool:
        if event.type() == QEvent.ToolTip:
            message = self.currentMessage()
            if message and self.message_rect().contains(event.pos()) and self.shown_message() != message:
                QToolTip.showText(event.globalPos(), message, self)
                return True
        return super().event(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if not self.currentMessage():
            super().paintEvent(event)
            return
        # QStatusBar's painting, with the message elided to its room instead of cut off under the next item
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        self.style().drawPrimitive(QStyle.PE_PanelStatusBar, option, painter, self)
        for widget in self._permanent:
            if widget.isVisible():
                frame = QStyleOption()
                frame.rect = widget.geometry().adjusted(-2, -1, 2, 1)
                frame.palette = self.palette()
                frame.state = QStyle.State_None
                self.style().drawPrimitive(QStyle.PE_FrameStatusBarItem, frame, painter, widget)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(self.message_rect(), Qt.AlignLeading | Qt.AlignVCenter | Qt.TextSingleLine, self.shown_message())


def name_label() -> ElidedLabel:
    """The catalogue's name and count: as wide as its text up to its share of the bar (`capped`), elided in
    the middle beyond (the design count at its end stays)."""
    label = ElidedLabel()
    label.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Preferred)
    return label
