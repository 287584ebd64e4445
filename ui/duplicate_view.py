"""The duplicate review window: the groups on the left, two copies side by side on the right, moves below.

A view of `ui.duplicates.DuplicateReview`, which holds the groups, the
keepers and the undo list (so closing this window loses nothing). Its
commands are declared in `REVIEW_ACTIONS`, the same way as the main
window's, so Help ▸ Keyboard shortcuts lists them too.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QFont
from PyQt5.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from swimsearch.export import write_duplicates_csv
from swimsearch.tidy import KEEP_IN_FOLDER, KEEP_LARGEST, KEEP_OLDEST, Member

from . import dialogs
from .actions import ActionSpec, create_actions
from .duplicates import TIERS, DuplicateReview
from .errors import plain_message
from .formatting import count_of
from .widgets import ElidedLabel, human_size
from .zoom_view import ZOOM_STEP, ZoomPair, ZoomView

log = logging.getLogger(__name__)

A = ActionSpec
#: The review's commands (shown by Help ▸ Keyboard shortcuts under "Duplicate review").
REVIEW_ACTIONS: tuple[ActionSpec, ...] = (
    A("move_group", "Move the others of this group…", "move_group", ("Ctrl+M",),
      "Move every copy of the selected group but the one kept to a folder you choose", "Move others…"),
    A("move_all", "Move the others of every group…", "move_all", ("Ctrl+Shift+M",),
      "Move every copy but the one kept, in every group of near-identical files, to a folder you choose",
      "Move all others…"),
    A("undo_move", "Undo move", "review.undo", ("Ctrl+Z",), "Move the files of the last move back where they were"),
    A("keep_right", "Keep the right-hand copy", "keep_right", ("K",), "Keep the copy on the right instead",
      "Keep this one"),
    A("zoom_in_pair", "Zoom in", "pair.zoom_by", ("+", "="), "Zoom both pictures in (or the mouse wheel)", "+",
      args=(ZOOM_STEP,)),
    A("zoom_out_pair", "Zoom out", "pair.zoom_by", ("-",), "Zoom both pictures out (or the mouse wheel)", "−",
      args=(1 / ZOOM_STEP,)),
    A("fit_pair", "Fit", "pair.fit", ("0",), "Show the whole pictures (or double-click one)"),
    A("export_groups", "Export groups as CSV…", "export_csv", ("Ctrl+E",), "Save the groups and the copies kept",
      "Export CSV…"),
    A("find_again", "Find again", "review.find", ("F5",), "Look for near-identical files again"),
)

KEEP_RULES = ((KEEP_LARGEST, "Largest picture, then oldest"), (KEEP_OLDEST, "Oldest file"),
              (KEEP_IN_FOLDER, "In a preferred folder…"))
GROUP_ROLE, MEMBER_ROLE = Qt.UserRole + 1, Qt.UserRole + 2
LOOK_ALIKES = ("Similarity in the same-design band: a crop, recolour, mirror image or rotation of one picture, "
               "or a different but very alike garment. Look before moving: Move others… (Ctrl+M) moves this "
               "group only.")


def describe(m: Member) -> str:
    """Pixels, bytes and date of one copy, as the captions say them."""
    parts = [f"{m.width} × {m.height} px"] if m.width and m.height else []
    if m.size is not None:
        parts.append(human_size(m.size))
    if m.mtime is not None:
        parts.append(datetime.fromtimestamp(m.mtime).strftime("%d %b %Y %H:%M"))
    return "  ·  ".join(parts) or "file missing"


class Side(QWidget):
    """One side of the comparison: a caption, the zoomable picture and its details."""

    def __init__(self, cache, heading: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.heading = QLabel(heading)
        self.heading.setObjectName("heading")
        self.view = ZoomView(cache)
        self.name = ElidedLabel()
        self.name.setObjectName("title")
        self.details = ElidedLabel(mode=Qt.ElideRight)
        self.details.setObjectName("muted")
        self.folder = ElidedLabel()
        self.folder.setObjectName("muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.heading, self.view, self.name, self.details, self.folder):
            layout.addWidget(widget, 1 if widget is self.view else 0)

    def show_member(self, m: Member | None) -> None:
        self.view.show_path(m.path if m is not None else None)
        self.name.set_full_text(os.path.basename(m.path) if m else "")
        self.details.set_full_text(describe(m) if m else "")
        self.folder.set_full_text(os.path.dirname(m.path) if m else "")


class DuplicateReviewDialog(QDialog):
    """Review groups of near-identical files, keep one copy of each and move the others aside."""

    def __init__(self, review: DuplicateReview, window):
        super().__init__(window, Qt.Window)
        self.setObjectName("duplicateReview")
        self.setAttribute(Qt.WA_DeleteOnClose)
        self.review, self._window = review, window
        self.setMinimumSize(760, 520)
        self.tier_box = QComboBox()
        for tier in TIERS:
            self.tier_box.addItem(tier.name)
            item = self.tier_box.model().item(self.tier_box.count() - 1)
            item.setEnabled(tier.available)
            item.setToolTip(tier.why_not or tier.name)
        self.tier_box.setCurrentIndex(review.tier)
        self.tier_box.currentIndexChanged.connect(review.set_tier)
        self.rule_box = QComboBox()
        for key, text in KEEP_RULES:
            self.rule_box.addItem(text, key)
        self.rule_box.setCurrentIndex(max(0, self.rule_box.findData(window.settings["duplicates/keep_rule"])))
        self.rule_box.setToolTip("Which copy of each group stays where it is")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(120)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(review.cancel)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["File", ""])  # sizes, dates and folders are in the captions and tooltips
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.Stretch)
        self.tree.setColumnWidth(1, 54)
        self.tree.setMinimumWidth(220)
        self.left, self.right = Side(window.cache, "KEPT"), Side(window.cache, "MOVED ASIDE")
        self.pair = ZoomPair(self.left.view, self.right.view, self)
        self.command = create_actions(self, REVIEW_ACTIONS)
        self._move_all_tip = self.command["move_all"].toolTip()
        self.keep_button = _tool(self.command["keep_right"])
        zoom_row = QHBoxLayout()
        for name in ("zoom_out_pair", "fit_pair", "zoom_in_pair"):
            zoom_row.addWidget(_tool(self.command[name]))
        hint = QLabel("Wheel: zoom · drag: pan")
        hint.setObjectName("muted")
        zoom_row.addWidget(hint, 1)
        zoom_row.addWidget(self.keep_button)
        compare = QWidget()
        grid = QGridLayout(compare)
        grid.setContentsMargins(6, 0, 0, 0)
        grid.addWidget(self.left, 0, 0)
        grid.addWidget(self.right, 0, 1)
        grid.addLayout(zoom_row, 1, 0, 1, 2)
        groups = QWidget()
        column = QVBoxLayout(groups)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.status)
        column.addWidget(self.tree, 1)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(groups)
        splitter.addWidget(compare)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([280, 620])

        top = QHBoxLayout()
        for widget in (QLabel("Groups:"), self.tier_box, QLabel("Keep:"), self.rule_box):
            top.addWidget(widget)
        top.addStretch(1)
        for widget in (self.progress, self.cancel_button, _tool(self.command["find_again"])):
            top.addWidget(widget)
        bottom = QHBoxLayout()
        for name in ("move_group", "move_all", "undo_move", "export_groups"):
            bottom.addWidget(_tool(self.command[name]))
        self.note = ElidedLabel(mode=Qt.ElideRight)
        bottom.addWidget(self.note, 1)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)

        self.rule_box.activated.connect(self._on_rule_chosen)
        self.tree.currentItemChanged.connect(lambda *_: self._show_current())
        self.tree.itemDoubleClicked.connect(self._on_double_clicked)
        review.groups_changed.connect(self._fill)
        review.progress_changed.connect(self._on_progress)
        review.busy_changed.connect(self._on_busy)
        review.note.connect(self.note.set_full_text)
        review.failed.connect(lambda message: dialogs.show_error(self, message))
        geometry = window.settings["window/duplicates_geometry"]
        if not (geometry and self.restoreGeometry(geometry)):
            self.resize(1100, 700)
        self._fill()
        self._on_busy(review.busy)

    # --- showing the groups ----------------------------------------------------------------

    def _fill(self) -> None:
        review = self.review
        state = self._window.session.catalogue
        name = state.name if state else ""
        self.setWindowTitle(f"Duplicate review — {name}" if name else "Duplicate review")
        wanted = self._current_group()
        self.tree.clear()
        bold = QFont(self.tree.font())
        bold.setBold(True)
        for g, (group, keeper) in enumerate(zip(review.groups, review.keepers)):
            if review.bulk:
                top = QTreeWidgetItem([f"Group {g + 1}: {len(group.members)} copies", ""])
                top.setToolTip(0, f"At most {group.max_phash_distance} of 64 perceptual-hash bits differ between them")
            else:
                top = QTreeWidgetItem([f"Group {g + 1}: {len(group.members)} look-alikes to check", ""])
                top.setToolTip(0, LOOK_ALIKES)
            top.setData(0, GROUP_ROLE, g)
            for i, m in enumerate(group.members):
                row = QTreeWidgetItem([os.path.basename(m.path), "keep" if i == keeper else "move"])
                row.setData(0, GROUP_ROLE, g)
                row.setData(0, MEMBER_ROLE, i)
                row.setToolTip(0, f"{m.path}\n{describe(m)}")
                if i == keeper:
                    for column in range(2):
                        row.setFont(column, bold)
                top.addChild(row)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)
        if review.groups:
            g = min(wanted if wanted is not None else 0, len(review.groups) - 1)
            self.tree.setCurrentItem(self.tree.topLevelItem(g))
        self._update_status()
        self._show_current()

    def _update_status(self) -> None:
        review = self.review
        if review.busy:
            return
        if review.catalogue_path is None:
            self.status.setText(f"Not looked for yet: Find again (F5) looks for {TIERS[review.tier].name.lower()}.")
        elif not review.groups:
            what = "near-identical files" if review.tier == 0 else "pictures of one design"
            self.status.setText(f"No {what} in this catalogue.")
        elif review.bulk:
            self.status.setText(
                f"{count_of(len(review.groups), 'group')}: {count_of(review.movable(), 'copy', 'copies')} can be "
                "moved aside"
            )
        else:
            self.status.setText(
                f"{count_of(len(review.groups), 'group')} of look-alikes to check, one at a time: they may be "
                "different garments. Move others… (Ctrl+M) moves the others of the group shown."
            )
        has_groups = bool(review.groups) and not review.busy
        for name in ("move_group", "move_all", "export_groups", "keep_right"):
            self.command[name].setEnabled(has_groups)
        # look-alikes are never moved all at once: only the group the user is looking at
        self.command["move_all"].setEnabled(has_groups and review.bulk)
        self.command["move_all"].setToolTip(
            self._move_all_tip if review.bulk else
            "Groups of one design are look-alikes, not copies: check each group and move its others with "
            "Move others… (Ctrl+M)"
        )
        self.keep_button.setEnabled(has_groups)
        self.command["undo_move"].setEnabled(review.can_undo())
        self.command["find_again"].setEnabled(not review.busy)

    def _current_group(self) -> int | None:
        item = self.tree.currentItem()
        return None if item is None else item.data(0, GROUP_ROLE)

    def shown_pair(self) -> tuple[int, int] | None:
        """(group, member) on the right-hand side, or None."""
        item = self.tree.currentItem()
        if item is None or not self.review.groups:
            return None
        g = item.data(0, GROUP_ROLE)
        keeper = self.review.keepers[g]
        chosen = item.data(0, MEMBER_ROLE)
        if chosen is None or chosen == keeper:
            chosen = next(i for i in range(len(self.review.groups[g].members)) if i != keeper)
        return g, chosen

    def _show_current(self) -> None:
        shown = self.shown_pair()
        if shown is None:
            self.left.show_member(None)
            self.right.show_member(None)
            return
        g, other = shown
        members = self.review.groups[g].members
        self.left.show_member(members[self.review.keepers[g]])
        self.right.show_member(members[other])

    # --- commands --------------------------------------------------------------------------

    def keep_right(self) -> None:
        shown = self.shown_pair()
        if shown is not None:
            self.review.set_keeper(*shown)

    def _on_double_clicked(self, item: QTreeWidgetItem) -> None:
        index = item.data(0, MEMBER_ROLE)
        if index is not None:
            self.review.set_keeper(item.data(0, GROUP_ROLE), index)

    def _on_rule_chosen(self) -> None:
        rule = self.rule_box.currentData()
        settings = self._window.settings
        if rule == KEEP_IN_FOLDER:
            folder = dialogs.choose_folder(self, settings["duplicates/preferred_folder"] or self._root(),
                                           "The folder whose copies are kept")
            if not folder:
                self.rule_box.setCurrentIndex(max(0, self.rule_box.findData(settings["duplicates/keep_rule"])))
                return
            settings["duplicates/preferred_folder"] = folder
        settings["duplicates/keep_rule"] = rule
        self.review.choose_keepers()

    def move_group(self) -> None:
        g = self._current_group()
        if g is not None:
            self._move([g])

    def move_all(self) -> None:
        if not self.review.bulk:  # the shortcut of a disabled action does not fire; say why if called anyway
            self.note.set_full_text("Groups of one design are moved one group at a time: Move others… (Ctrl+M).")
            return
        count = self.review.movable()  # near-identical files only: the bulk tier's groups
        if count and dialogs.confirm(
            self, f"Move {count_of(count, 'near-identical file')} to a folder you choose? The copy kept in each of "
            f"the {count_of(len(self.review.groups), 'group')} stays where it is; Undo move (Ctrl+Z) puts them back."
        ):
            self._move(None)

    def _move(self, groups: list[int] | None) -> None:
        settings = self._window.settings
        start = settings["duplicates/destination"] or os.path.dirname(self._root())
        destination = dialogs.choose_folder(self, start, "Move the other copies to")
        if not destination:
            return
        refusal = self.review.move_others(destination, groups)
        if refusal:
            dialogs.show_error(self, refusal)
        else:
            settings["duplicates/destination"] = destination

    def export_csv(self) -> None:
        review = self.review
        settings = self._window.settings
        suggested = os.path.join(settings["dialogs/export_folder"] or os.path.expanduser("~"), "duplicates.csv")
        path = dialogs.choose_csv_path(self, suggested)
        if not path:
            return
        settings["dialogs/export_folder"] = os.path.dirname(path)
        keepers = [g.members[k].path for g, k in zip(review.groups, review.keepers)]
        try:
            count = write_duplicates_csv(review.groups, path, keepers=keepers)
        except Exception as exc:  # noqa: BLE001 - disk full, permission denied, ...: tell the user
            dialogs.show_error(self, plain_message(exc, "exporting the groups"))
            return
        self.note.set_full_text(f"Exported {count_of(count, 'file')} in {count_of(len(review.groups), 'group')} to {path}")

    def _root(self) -> str:
        state = self._window.session.catalogue
        return state.root if state else os.path.expanduser("~")

    # --- progress ----------------------------------------------------------------------------

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total or 0)
        self.progress.setValue(done)
        self.status.setText(f"Looking for near-identical files… {done:,} of {total:,}" if total else
                                  "Looking for near-identical files…")

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self._update_status()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._window.settings["window/duplicates_geometry"] = bytes(self.saveGeometry())
        super().closeEvent(event)


def _tool(action) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonTextOnly)
    return button
