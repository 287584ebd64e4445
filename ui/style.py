"""The look of the app: one calm palette, one stylesheet, the icon, and badge painting.

Every colour lives here, so the grid, the preview and the query panel agree.
"""

from __future__ import annotations

import logging

from PyQt5.QtCore import QRectF, QSizeF, Qt
from PyQt5.QtGui import QColor, QFont, QFontMetrics, QIcon, QPainter, QPalette
from PyQt5.QtWidgets import QApplication

from .locations import icon_path

log = logging.getLogger(__name__)

WINDOW = QColor("#f3f4f6")
PANEL = QColor("#ffffff")
BORDER = QColor("#dfe3e8")
BORDER_STRONG = QColor("#b8c0ca")
TEXT = QColor("#1f2328")
TEXT_MUTED = QColor("#5f6b78")
IMAGE_BACKDROP = QColor("#eceff3")
ACCENT = QColor("#1f6fb2")
ACCENT_SOFT = QColor("#e3effa")
SCORE_BADGE = QColor(22, 27, 34, 215)
DUPLICATE_BADGE = QColor("#f2b134")
DUPLICATE_TEXT = QColor("#3b2a00")
MIRRORED_BADGE = QColor(255, 255, 255, 225)
SAME_DESIGN_BADGE = QColor("#2e8540")  # a decision: the same design (pinned)
NOT_SIMILAR_BADGE = QColor("#8a94a0")  # a decision: not similar (moved to the end)

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)

STYLESHEET = f"""
QMainWindow, QDialog {{ background: {WINDOW.name()}; }}
QToolBar {{
    background: {PANEL.name()};
    border: none;
    border-bottom: 1px solid {BORDER.name()};
    spacing: 2px;
    padding: 4px 6px;
}}
QToolBar QToolButton {{ padding: 4px 6px; border-radius: 6px; color: {TEXT.name()}; }}
QToolBar QToolButton:hover {{ background: {ACCENT_SOFT.name()}; }}
QToolBar QToolButton:disabled {{ color: #a4adb7; }}
QToolBar::separator {{ background: {BORDER.name()}; width: 1px; margin: 6px 4px; }}
QStatusBar {{ background: {PANEL.name()}; border-top: 1px solid {BORDER.name()}; color: {TEXT_MUTED.name()}; }}
QStatusBar::item {{ border: none; }}
QStatusBar QLabel {{ color: {TEXT_MUTED.name()}; padding: 0 6px; }}
QPushButton#statusLink {{ background: transparent; border: none; padding: 0 6px; color: {ACCENT.name()};
                          text-decoration: underline; }}
QFrame#card {{ background: {PANEL.name()}; border: 1px solid {BORDER.name()}; border-radius: 10px; }}
QFrame#card[dragging="true"] {{ background: {ACCENT_SOFT.name()}; border: 2px dashed {ACCENT.name()}; }}
QLabel#heading {{ color: {TEXT_MUTED.name()}; font-weight: bold; letter-spacing: 1px; }}
QLabel#title {{ color: {TEXT.name()}; font-weight: bold; }}
QLabel#muted {{ color: {TEXT_MUTED.name()}; }}
QLabel#score {{ color: {TEXT.name()}; font-weight: bold; }}
QLabel#duplicate {{
    background: {DUPLICATE_BADGE.name()}; color: {DUPLICATE_TEXT.name()};
    border-radius: 8px; padding: 1px 8px; font-weight: bold;
}}
QLabel#mirrored {{
    background: {IMAGE_BACKDROP.name()}; color: {TEXT.name()}; border: 1px solid {BORDER.name()};
    border-radius: 8px; padding: 0px 8px;
}}
QWidget#filterBar {{ background: transparent; }}
QListView#results {{ background: {WINDOW.name()}; border: none; }}
QSplitter::handle {{ background: transparent; }}
QPushButton {{
    background: {PANEL.name()}; border: 1px solid {BORDER_STRONG.name()}; border-radius: 6px;
    padding: 4px 12px; color: {TEXT.name()};
}}
QPushButton:hover {{ border-color: {ACCENT.name()}; }}
QPushButton:pressed {{ background: {ACCENT_SOFT.name()}; }}
QPushButton:disabled {{ color: #a4adb7; border-color: {BORDER.name()}; }}
QPushButton#primary {{ background: {ACCENT.name()}; border-color: {ACCENT.name()}; color: #ffffff; font-weight: bold; }}
QPushButton#primary:hover {{ background: #195d96; }}
QPushButton#primary:disabled {{ background: {IMAGE_BACKDROP.name()}; border-color: {BORDER.name()}; color: #a4adb7; }}
QSpinBox {{ padding: 2px 4px; }}
QProgressBar {{
    border: 1px solid {BORDER.name()}; border-radius: 4px; background: {IMAGE_BACKDROP.name()};
    max-height: 8px; min-height: 8px;
}}
QProgressBar::chunk {{ background: {ACCENT.name()}; border-radius: 3px; }}
"""


def apply_app_style(app: QApplication) -> None:
    """Fusion with a light palette and the app's stylesheet, the same on every platform."""
    app.setStyle("Fusion")
    palette = app.palette()
    palette.setColor(QPalette.Window, WINDOW)
    palette.setColor(QPalette.Base, PANEL)
    palette.setColor(QPalette.AlternateBase, WINDOW)
    palette.setColor(QPalette.Text, TEXT)
    palette.setColor(QPalette.WindowText, TEXT)
    palette.setColor(QPalette.ButtonText, TEXT)
    palette.setColor(QPalette.Button, PANEL)
    palette.setColor(QPalette.Highlight, ACCENT)
    palette.setColor(QPalette.HighlightedText, QColor("#ffffff"))
    palette.setColor(QPalette.ToolTipBase, PANEL)
    palette.setColor(QPalette.ToolTipText, TEXT)
    app.setPalette(palette)
    app.setStyleSheet(STYLESHEET)


def app_icon() -> QIcon:
    """The application icon, from the PNGs rendered by tools/make_icon.py."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = icon_path(size)
        if path.is_file():
            icon.addFile(str(path))
    if icon.isNull():
        log.warning("the application icon is missing from the resources folder")
    return icon


def badge_font(base: QFont, *, bold: bool = True, scale: float = 0.92) -> QFont:
    font = QFont(base)
    font.setBold(bold)
    if font.pointSizeF() > 0:
        font.setPointSizeF(max(7.0, font.pointSizeF() * scale))
    return font


def badge_size(text: str, font: QFont) -> QSizeF:
    """The size `draw_badge` gives a pill with `text`."""
    metrics = QFontMetrics(font)
    return QSizeF(metrics.horizontalAdvance(text) + 14, metrics.height() + 4)


def draw_badge(
    painter: QPainter, x: float, y: float, text: str, font: QFont, background: QColor, foreground: QColor,
    *, align_right: bool = False, align_bottom: bool = False,
) -> QRectF:
    """A rounded pill with `text`, its top-left (or top-right/bottom) corner at (x, y)."""
    size = badge_size(text, font)
    width, height = size.width(), size.height()
    rect = QRectF(x - width if align_right else x, y - height if align_bottom else y, width, height)
    painter.save()
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(Qt.NoPen)
    painter.setBrush(background)
    painter.drawRoundedRect(rect, height / 2, height / 2)
    painter.setFont(font)
    painter.setPen(foreground)
    painter.drawText(rect, Qt.AlignCenter, text)
    painter.restore()
    return rect
