"""The query panel: a drop target for designs, a click to choose a file, and the query on show.

Takes image files dragged from a file manager (several at once: one search
with them all), picture data dragged from a browser or pasted from the
clipboard, and (as a convenience) a folder or a catalogue file, which opens
that catalogue. It shows the query picture with its file name and size, and
how the search is steered ("with 2 more designs, not like 1 design"); a box
dragged on the picture searches by that detail, and the colour slider says
how much colour matters (ui/steering.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from PyQt5.QtCore import QMimeData, Qt, QUrl, pyqtSignal
from PyQt5.QtGui import QImage
from PyQt5.QtWidgets import QWidget
from PIL import Image

from swimsearch.catalogue import CATALOGUE_SUFFIX
from swimsearch.images import is_image_path

from .formatting import READABLE
from .queries import Query
from .steering import BoxPicture, ColourControl
from .thumbnails import ThumbnailCache
from .widgets import PictureCard

log = logging.getLogger(__name__)

EMPTY_TEXT = "Drop a design here,\nor click to choose a file\n\nCtrl+V pastes a picture"


@dataclass(frozen=True)
class Dropped:
    """What a drop or a paste holds: kind "file", "files", "picture", "catalogue" or "refused"."""

    kind: str
    path: str = ""
    paths: tuple[str, ...] = ()  # "files": several image files
    image: QImage | None = None
    label: str = ""
    message: str = ""
    note: str = ""  # "files": which dropped files were left out, and why


def left_out_note(names: list[str]) -> str:
    """One sentence on the dropped files that are not pictures, so that none is left out silently."""
    if len(names) == 1:
        what = f"{names[0]} is not a picture"
    elif len(names) <= 3:
        what = f"{', '.join(names[:-1])} and {names[-1]} are not pictures"
    else:
        what = f"{', '.join(names[:2])} and {len(names) - 2} more files are not pictures"
    return f"{what}: left out."  # what the others searched is the search's to say (one may not be readable either)


def read_mime(mime: QMimeData) -> Dropped:
    """Find the query in dropped or pasted data: a local image file first, then picture data."""
    refused = ""
    web_name = ""
    files: list[str] = []
    left_out: list[str] = []
    for url in mime.urls() if mime.hasUrls() else []:
        if url.isLocalFile():
            path = url.toLocalFile()
            if not files and (os.path.isdir(path) or path.endswith(CATALOGUE_SUFFIX)):
                return Dropped("catalogue", path=path)
            if is_image_path(path):
                files.append(path)
            else:
                refused = f"{os.path.basename(path)} is not a picture SwimSearch can read ({READABLE})."
                left_out.append(os.path.basename(path.rstrip(os.sep)) or path)
        elif not web_name:
            web_name = os.path.basename(url.path()) or url.host()
    if len(files) == 1 and not left_out:
        return Dropped("file", path=files[0])
    if files:
        return Dropped("files", paths=tuple(files), note=left_out_note(left_out) if left_out else "")
    image = picture_data(mime)
    if image is not None:
        label = f"{web_name} (dropped picture)" if web_name else "Pasted picture"
        return Dropped("picture", image=image, label=label)
    if refused:
        return Dropped("refused", message=refused)
    if web_name:
        return Dropped(
            "refused",
            message="SwimSearch works offline and cannot fetch pictures from the web: "
            "save the picture to your computer first, then drop the file.",
        )
    return Dropped("refused", message="There is no picture in what was dropped or pasted.")


def picture_data(mime: QMimeData) -> QImage | None:
    """Picture data in a drop or paste (a browser drag or a copied picture), or None."""
    if mime.hasImage():
        data = mime.imageData()
        image = data if isinstance(data, QImage) else QImage(data) if data is not None else QImage()
        if not image.isNull():
            return image
    for name in mime.formats():
        if name.startswith("image/"):
            image = QImage.fromData(mime.data(name))
            if not image.isNull():
                return image
    return None


def to_pil(image: QImage) -> Image.Image:
    """A QImage as an RGBA PIL image (a copy; transparency is kept for the engine to flatten)."""
    rgba = image.convertToFormat(QImage.Format_RGBA8888)
    pointer = rgba.constBits()
    pointer.setsize(rgba.sizeInBytes())
    return Image.frombuffer(
        "RGBA", (rgba.width(), rgba.height()), bytes(pointer), "raw", "RGBA", rgba.bytesPerLine(), 1
    ).copy()


class QueryPanel(PictureCard):
    """The drop target that shows the current query."""

    picture_class = BoxPicture

    browse_requested = pyqtSignal()
    detail_drawn = pyqtSignal(object)  # (x, y, w, h) fractions of the query picture
    colour_changed = pyqtSignal(float)  # how much colour matters, 0..1
    file_dropped = pyqtSignal(str)
    files_dropped = pyqtSignal(object, str)  # tuple of paths: search with them together; what was left out
    picture_dropped = pyqtSignal(object, str)  # QImage, label
    catalogue_dropped = pyqtSignal(str)
    drop_refused = pyqtSignal(str)

    def __init__(self, cache: ThumbnailCache, parent: QWidget | None = None):
        super().__init__("QUERY", cache, EMPTY_TEXT, parent)
        self.setAcceptDrops(True)
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip("Drop a design here, click to choose a file, or paste a picture (Ctrl+V)")
        self.layout.addWidget(self.details_label)
        self.colour_control = ColourControl()
        self.layout.addWidget(self.colour_control)
        self.picture.box_drawn.connect(self.detail_drawn)
        self.colour_control.colour_changed.connect(self.colour_changed)
        self._status = ""
        self._query: Query | None = None
        self.show_nothing()

    # --- what is shown ----------------------------------------------------------

    def show_query(self, query: Query | None, status: str = "") -> None:
        """Show a query (it shows itself: `Query.show_on`), or the empty drop target for None."""
        if query is not self._query:
            self._query = query
            if query is None:
                self.show_nothing()
            else:
                query.show_on(self)
        self.picture.set_box(query.box if query is not None else None)
        note = query.note() if query is not None else ""
        self.set_status("  ·  ".join(part for part in (note, status) if part))

    def show_steering(self, *, can_draw_box: bool, colour: float) -> None:
        """Whether a box can be drawn on the picture, and where the colour slider stands."""
        self.picture.set_drawing_enabled(can_draw_box)
        self.setToolTip(
            "Drag a box on the picture to search by that detail (Esc: the whole picture again); "
            "click to choose another file, or drop or paste a picture"
            if can_draw_box else "Drop a design here, click to choose a file, or paste a picture (Ctrl+V)"
        )
        self.colour_control.set_colour(colour)

    def show_nothing(self) -> None:
        self.picture.clear()
        self.picture.set_placeholder(EMPTY_TEXT, dashed=True)
        self.name_label.set_full_text("")
        self._set_file(None)
        self._status = ""
        self.details_label.set_full_text("")
        self.name_label.hide()
        self.details_label.hide()

    def show_file(self, path: str) -> None:
        self._set_file(path)
        self.name_label.set_full_text(os.path.basename(path))
        self.name_label.setToolTip(path)
        self.name_label.show()
        self.details_label.show()
        self.picture.show_path(path, missing=not os.path.exists(path))
        self._update_details()

    def show_picture(self, image: QImage, label: str) -> None:
        self._set_file(None)
        self.name_label.set_full_text(label)
        self.name_label.show()
        self.details_label.show()
        self.picture.show_image(image)
        self._update_details()

    def set_status(self, text: str) -> None:
        """A short state after the size ("searching…", "cannot be searched")."""
        self._status = text
        self._update_details()

    def _update_details(self) -> None:
        parts = self._size_parts() + ([self._status] if self._status else [])
        self.details_label.set_full_text("  ·  ".join(parts))

    # --- drops and clicks -----------------------------------------------------------

    def take(self, mime: QMimeData, *, refuse: bool = True) -> bool:
        """Act on dropped or pasted data; True when it held something usable.

        Args:
            refuse: say why unusable data was refused (drop_refused); a paste
                of text only needs a quiet note, which the caller gives.
        """
        dropped = read_mime(mime)
        if dropped.kind == "file":
            self.file_dropped.emit(dropped.path)
        elif dropped.kind == "files":
            self.files_dropped.emit(dropped.paths, dropped.note)
        elif dropped.kind == "picture":
            self.picture_dropped.emit(dropped.image, dropped.label)
        elif dropped.kind == "catalogue":
            self.catalogue_dropped.emit(dropped.path)
        else:
            if refuse:
                self.drop_refused.emit(dropped.message)
            return False
        return True

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage() or any(f.startswith("image/") for f in mime.formats()):
            event.acceptProposedAction()
            self._set_drag_highlight(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._set_drag_highlight(False)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._set_drag_highlight(False)
        if self.take(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.LeftButton and self.rect().contains(event.pos()):
            self.browse_requested.emit()
        super().mouseReleaseEvent(event)

    def _set_drag_highlight(self, on: bool) -> None:
        self.setProperty("dragging", on)
        self.style().unpolish(self)
        self.style().polish(self)
        self.update()


def file_url_mime(*paths: str) -> QMimeData:
    """Mime data holding local files, as a file manager drags them."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(os.path.abspath(path)) for path in paths])
    return mime
