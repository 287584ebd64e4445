"""Hand files to the desktop: open with the system viewer, show in the file manager."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from PyQt5.QtCore import QUrl
from PyQt5.QtGui import QDesktopServices

log = logging.getLogger(__name__)


def open_file(path: str) -> bool:
    """Open `path` with the system's viewer for its type."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def show_in_folder(path: str) -> bool:
    """Show `path` selected in the file manager (or at least open its folder)."""
    try:
        if sys.platform == "win32":
            subprocess.Popen(["explorer", "/select,", os.path.normpath(path)])  # noqa: S603, S607
            return True
        if sys.platform == "darwin":
            subprocess.Popen(["open", "-R", path])  # noqa: S603, S607
            return True
        if _freedesktop_show_items(path):
            return True
    except OSError:
        log.warning("cannot ask the file manager to show %s", path, exc_info=True)
    return QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path)))


def _freedesktop_show_items(path: str) -> bool:
    """The freedesktop.org FileManager1 D-Bus call that selects a file in the file manager."""
    try:
        from PyQt5.QtDBus import QDBusConnection, QDBusInterface
    except ImportError:
        return False
    bus = QDBusConnection.sessionBus()
    if not bus.isConnected():
        return False
    manager = QDBusInterface(
        "org.freedesktop.FileManager1", "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1", bus
    )
    if not manager.isValid():
        return False
    reply = manager.call("ShowItems", [QUrl.fromLocalFile(path).toString()], "")
    return not reply.errorMessage()
