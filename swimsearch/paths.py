"""Where the shipped data files (the model, the sample catalogue, icons) live.

One function answers for a checkout and for an installed package, so nothing
depends on the current working directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Set to a folder to use models/resources from there instead (for packagers).
DATA_ENV = "SWIMSEARCH_DATA"


def data_dir(name: str) -> Path:
    """The folder `name` ("models" or "resources") of this installation.

    Looks, in order, in $SWIMSEARCH_DATA/<name>, beside the package in a
    checkout (<repo>/<name>), then where `pip install` puts data files
    (<prefix>/share/swimsearch/<name>).
    """
    candidates = []
    if os.environ.get(DATA_ENV):
        candidates.append(Path(os.environ[DATA_ENV]) / name)
    candidates.append(Path(__file__).resolve().parent.parent / name)
    for prefix in (sys.prefix, sys.base_prefix, os.path.expanduser("~/.local")):
        candidates.append(Path(prefix) / "share" / "swimsearch" / name)
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise FileNotFoundError(
        f"cannot find the '{name}' folder of SwimSearch (looked in: {', '.join(map(str, candidates))})"
    )


def models_dir() -> Path:
    """The folder holding the ONNX trunk and its model card."""
    return data_dir("models")


def resources_dir() -> Path:
    """The folder holding the icon and the sample catalogue images."""
    return data_dir("resources")
