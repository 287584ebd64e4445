"""SwimSearch desktop application: `python app.py [FOLDER_OR_CATALOGUE]`.

Only wiring lives here: arguments, logging, the QApplication (with its
high-DPI attributes), paths, and the main window. With no argument the window
opens the last catalogue, or on a first run the sample catalogue that ships in
`resources/` (built on first use in the per-user data folder). A folder opens
its catalogue, building it if there is none; a `.swimcat` file opens that
catalogue.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from typing import Sequence

import swimsearch  # noqa: F401 - sets the engine's thread environment before NumPy loads
from swimsearch import locations


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="swimsearch-gui", description="Find similar designs in an image catalogue.")
    parser.add_argument("path", nargs="?", metavar="FOLDER_OR_CATALOGUE", help="folder of designs or .swimcat file to open")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the app does on the terminal")
    return parser.parse_known_args(argv)[0]  # Qt's own options (-platform, ...) pass through


def configure_logging(verbose: bool) -> str | None:
    """Warnings (everything with -v) on stderr, and a rotating log file in the user's data folder."""
    from ui import errors
    from ui.locations import user_data_dir

    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    try:
        path = user_data_dir() / "swimsearch.log"
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    except OSError as exc:
        logging.getLogger(__name__).warning("no log file: %s", exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(handler)
    errors.log_file = str(path)
    return str(path)


def set_application_names() -> None:
    """Qt names the per-user data folder from these; the command line finds it by the same names."""
    from PyQt5.QtCore import QCoreApplication

    QCoreApplication.setOrganizationName(locations.ORGANISATION_NAME)
    QCoreApplication.setApplicationName(locations.APPLICATION_NAME)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else [sys.argv[0], *argv])
    args = parse_args(argv[1:])

    from PyQt5.QtCore import QCoreApplication, Qt
    from PyQt5.QtGui import QGuiApplication
    from PyQt5.QtWidgets import QApplication

    # Crisp on high-DPI screens: scale by the screen's factor (fractional too), sharp pixmaps.
    QCoreApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
    QCoreApplication.setAttribute(Qt.AA_UseHighDpiPixmaps, True)
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    set_application_names()
    app = QApplication(argv)
    app.setApplicationDisplayName("SwimSearch")
    app.setDesktopFileName("swimsearch")

    from ui.main_window import MainWindow
    from ui.settings import Settings
    from ui.style import app_icon, apply_app_style

    log_path = configure_logging(args.verbose)
    logging.getLogger(__name__).info("SwimSearch starting; log file %s", log_path)
    apply_app_style(app)
    app.setWindowIcon(app_icon())
    window = MainWindow(Settings())
    window.show()
    window.open_start(args.path)
    return app.exec_()


if __name__ == "__main__":
    sys.exit(main())
