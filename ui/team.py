"""Team catalogues in the window: *Catalogue > Connect to team catalogue…* and *Map shared folder…*.

A team catalogue lives on a PostgreSQL server (`swimsearch.stores.postgres`).
The connect dialog asks for its address (remembered, without the password)
and the password (kept in memory for this session only; left empty, libpq
looks in PGPASSWORD and ~/.pgpass), and the name to record on the changes
this person makes. The shared folder the catalogue describes is mounted
differently on each computer: where it is here is remembered per catalogue
(settings "team/roots") and handed to the engine for every catalogue the
window opens, so thumbnails, Open and updates use this computer's path. When
it is not found, the window says so once per catalogue and session, and
*Map shared folder…* asks where it is.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from swimsearch.errors import CatalogueError
from swimsearch.stores.pg_address import TeamAddress, is_team_address, remember_root
from swimsearch.stores.pg_connection import USER_ENV, person_name
from swimsearch.stores.pg_schema import asks_for_password

from . import dialogs
from .locations import team_target
from .session_types import CatalogueState

log = logging.getLogger(__name__)

ADDRESS_HINT = "postgresql://USER@SERVER[:PORT]/DATABASE[?catalogue=NAME]"


@dataclass(frozen=True)
class Connection:
    """What the connect dialog was given."""

    address: str  # as typed (may hold a password)
    password: str
    person: str


class ConnectDialog(QDialog):
    """Address, password and name for a team catalogue; a malformed address is said in the dialog, which stays open."""

    def __init__(self, address: str, person: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Connect to a team catalogue")
        self.address_edit = QLineEdit(address)
        self.address_edit.setPlaceholderText(ADDRESS_HINT)
        self.address_edit.setMinimumWidth(460)
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.Password)
        self.password_edit.setPlaceholderText("not saved; empty: PGPASSWORD or ~/.pgpass")
        self.person_edit = QLineEdit(person)
        self.person_edit.setPlaceholderText(person_name() or "your name")
        form = QFormLayout()
        form.addRow("Address:", self.address_edit)
        form.addRow("Password:", self.password_edit)
        form.addRow("Your name on changes:", self.person_edit)
        intro = QLabel(
            "A catalogue the whole team shares, on a PostgreSQL server (ask whoever runs it for the address and an "
            "account). The address is remembered; the password only until SwimSearch closes."
        )
        intro.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setObjectName("dialogError")
        self.error_label.setWordWrap(True)
        self.error_label.setVisible(False)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Connect")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        (self.password_edit if address else self.address_edit).setFocus(Qt.OtherFocusReason)

    def accept(self) -> None:  # noqa: D102 - Qt override: refuse a malformed address in the dialog itself
        try:
            TeamAddress.parse(self.address_edit.text().strip())
        except CatalogueError as exc:
            self.error_label.setText(str(exc))
            self.error_label.setVisible(True)
            return
        super().accept()

    def connection(self) -> Connection:
        return Connection(self.address_edit.text().strip(), self.password_edit.text(), self.person_edit.text().strip())


def ask_connection(parent: QWidget, address: str, person: str) -> Connection | None:
    """Show the connect dialog (modal); None when cancelled. Tests replace this function."""
    dialog = ConnectDialog(address, person, parent)
    return dialog.connection() if dialog.exec_() == QDialog.Accepted else None


class TeamCatalogues:
    """The window's team-catalogue commands and the settings they keep (the window's `team`)."""

    def __init__(self, window: Any):  # the MainWindow (not imported: it imports this module)
        self._window = window
        self._told: set[str] = set()  # catalogues whose unreachable folder was said this session
        settings = window.settings
        for address, folder in settings["team/roots"].items():
            remember_root(address, folder)
        if settings["team/person"]:
            os.environ[USER_ENV] = settings["team/person"]
        # Queued: after the session has taken the failed catalogue off the screen, not in the middle of it.
        window.search.open_failed.connect(self.on_open_failed, Qt.QueuedConnection)

    def connect(self, address: str | None = None) -> None:
        """Catalogue > Connect to team catalogue…: ask, remember the address, open."""
        settings = self._window.settings
        asked = ask_connection(self._window, address or settings["team/last_address"], settings["team/person"])
        if asked is None:
            return
        try:
            target = team_target(asked.address, asked.password)
        except CatalogueError as exc:
            self._window.show_error(str(exc))
            return
        settings["team/last_address"] = target.address  # without the password
        settings["team/person"] = asked.person
        if asked.person:
            os.environ[USER_ENV] = asked.person
        else:
            os.environ.pop(USER_ENV, None)
        self._window.session.open(target)

    def on_open_failed(self, path: str, message: str) -> None:
        """A team catalogue opened without a password the server wants (the last one, at the start): ask for it."""
        if is_team_address(path) and asks_for_password(message):
            self.connect(path)

    def map_root(self) -> None:
        """Catalogue > Map shared folder…: where the open team catalogue's folder is on this computer."""
        window = self._window
        state: CatalogueState | None = window.session.catalogue
        if state is None or not state.team:
            return
        folder = dialogs.choose_folder(window, state.root, f"Where is the shared folder of “{state.name}” on this computer?")
        if not folder:
            return
        roots = dict(window.settings["team/roots"])
        roots[state.path] = folder
        window.settings["team/roots"] = roots
        remember_root(state.path, folder)
        self._told.discard(state.path)
        window.session.open(team_target(state.path))  # open again, at the new place

    def on_catalogue_ready(self, state: CatalogueState) -> None:
        """Say once per catalogue and session when its shared folder is not found here."""
        if state.team and state.root_note and state.path not in self._told:
            self._told.add(state.path)
            dialogs.show_error(self._window, state.root_note, "Shared folder not found")
