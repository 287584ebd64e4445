"""The open-design dialog with a preview of the picture under the cursor, so a design is found by its look.

Qt's own (non-native) file dialog, with a picture and its size beside the
file list. The picture is decoded off the GUI thread by the window's
thumbnail cache, so a folder of 12-megapixel photos scrolls without a stall.
"""

from __future__ import annotations

import logging
import os

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QFileDialog, QLabel, QVBoxLayout, QWidget

from swimsearch.images import is_image_path

from .thumbnails import Thumbnail, ThumbnailCache
from .widgets import PictureView, file_size, human_size

log = logging.getLogger(__name__)

NO_PREVIEW = "Select a picture to see it here"


class ImageFileDialog(QFileDialog):
    """Choose one picture file, with a preview of the selected one."""

    def __init__(self, parent: QWidget | None, title: str, folder: str, name_filter: str, cache: ThumbnailCache):
        super().__init__(parent, title, folder, name_filter)
        self.setObjectName("imageFileDialog")
        self.setOption(QFileDialog.DontUseNativeDialog, True)  # a native dialog cannot take the preview
        self.setFileMode(QFileDialog.ExistingFile)
        self.preview = PictureView(cache, NO_PREVIEW)
        self.preview.setFixedSize(240, 240)
        self.details = QLabel()
        self.details.setObjectName("muted")
        self.details.setAlignment(Qt.AlignHCenter)
        self.details.setWordWrap(True)
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(8, 0, 0, 0)
        column.addWidget(self.preview)
        column.addWidget(self.details)
        column.addStretch(1)
        grid = self.layout()  # Qt's dialog is a QGridLayout: the preview takes a column of its own on the right
        grid.addWidget(side, 0, grid.columnCount(), grid.rowCount(), 1)
        self.resize(max(self.width(), 900), max(self.height(), 520))
        self.currentChanged.connect(self.show_preview)
        self.preview.picture_ready.connect(self._on_picture_ready)

    def show_preview(self, path: str) -> None:
        """Preview `path` when it is a picture file; otherwise say why there is nothing to see."""
        if path and os.path.isfile(path) and is_image_path(path):
            self.details.setText("")
            self.preview.show_path(path)
        else:
            self.preview.clear()
            self.details.setText("")

    def _on_picture_ready(self, thumbnail: Thumbnail) -> None:
        parts = [f"{thumbnail.width} × {thumbnail.height} px"] if thumbnail.width and thumbnail.height else []
        size = file_size(self.preview.path) if self.preview.path else None
        if size is not None:
            parts.append(human_size(size))
        self.details.setText("  ·  ".join(parts))
