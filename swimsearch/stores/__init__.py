"""Catalogue stores: where images, embeddings and the fitted index are kept.

`base` declares what every store offers (`CatalogueReader`, `CatalogueWriter`)
and the plain records they trade; `sqlite` is the store of one catalogue file.
Nothing outside this package writes SQL, and nothing in it imports the
search, the build or the user interface (an import-linter contract in
setup.cfg checks this).
"""

from .base import (
    CatalogueCounts,
    CatalogueIdentity,
    CatalogueReader,
    CatalogueWriter,
    Embeddings,
    FitSample,
    FitState,
    ImageRecord,
    ModelInfo,
    NewImage,
    ScanDiff,
)
from .sqlite import SqliteStore

__all__ = [
    "CatalogueCounts",
    "CatalogueIdentity",
    "CatalogueReader",
    "CatalogueWriter",
    "Embeddings",
    "FitSample",
    "FitState",
    "ImageRecord",
    "ModelInfo",
    "NewImage",
    "ScanDiff",
    "SqliteStore",
]
