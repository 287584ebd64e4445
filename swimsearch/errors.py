"""Exceptions the engine raises on purpose; each message is one plain sentence for a user."""

from __future__ import annotations


class Cancelled(Exception):
    """Raised when `should_stop()` said stop; `report` tells what was kept."""

    def __init__(self, report=None):
        super().__init__("cancelled")
        self.report = report


class CatalogueError(Exception):
    """A catalogue file that cannot be used as asked: damaged, newer, missing, read-only."""


class CatalogueBusy(CatalogueError):
    """Another process is building or updating this catalogue right now."""


class IndexChanged(CatalogueError):
    """A shared catalogue's index was fitted again by someone else since it was read: encode the query again."""


class DamagedCatalogue(CatalogueError):
    """A catalogue whose content cannot be trusted: crafted, or damaged on disk. Nothing is read from it."""


class OtherFolder(CatalogueError):
    """A folder's catalogue file that describes another folder (copied along with its folder): not opened as this one's."""
