"""What the command line refuses before it starts, and how it words what goes wrong.

Numbers outside their range (nan and inf too, and negative values argparse
would take for options) and outputs that would write over a catalogue or a
picture, name another kind of file, or go into folders that do not exist are
each one plain sentence before any work is done. File names are printed escaped (`terminal.shown`), log lines too.
"""

from __future__ import annotations

import argparse
import copy
import errno
import logging
import os
from pathlib import Path

from .export import is_special, sidecar_path
from .formats import IMAGE_EXTENSIONS
from .safeopen import open_regular
from .sheet import SHEET_SUFFIXES
from .stores.sqlite_checks import SQLITE_MAGIC
from .terminal import shown

log = logging.getLogger(__name__)


class UsageError(Exception):
    """A bad argument found after parsing (exit 2)."""


def os_error_sentence(exc: OSError) -> str:
    """One sentence for a file the command line could not read or write."""
    name = exc.filename or "a file"
    if exc.errno == errno.ENOSPC:
        return f"The disk holding {name} is full: it was not written (an earlier file at that path is kept)."
    return f"{name}: {exc.strerror or exc}."


class ShownFormatter(logging.Formatter):
    """Log lines name files too: escaped like everything else printed."""

    def format(self, record: logging.LogRecord) -> str:
        record = copy.copy(record)
        record.msg, record.args = shown(record.getMessage()), None  # the traceback, if any, stays as it is
        return super().format(record)


#: Options that take a number, with the range a value must lie in (inclusive) and what it means.
NUMBERS = {
    "top": (1, None, "--top is the number of results per query: at least 1"),
    "min_score": (0.0, 1.0, "--min-score is the lowest similarity to list, as the percent shown: 0.5 or 50% keeps "
                            "the matches shown 50% or more (from 0 to 1, or 0% to 100%)"),
    "max_distance": (0, 64, "--max-distance is the number of pHash bits (of 64) that may differ: 0 to 64"),
    "threads": (0, 4096, "--threads is a number of threads: 0 (all cores) or more"),
    "batch_size": (1, 100_000, "--batch-size is a number of images: at least 1"),
    "limit": (0, None, "--limit is a number of queries: 0 (all) or more"),
}


#: Options that name a file to write: the suffixes its format takes, the format in words, and whether
#: '-' (the standard output) is taken. A name of another kind is refused before any work: `--csv B.jpg`
#: once wrote CSV rows into a picture, and `--csv .swimsearch.swimcat` over the catalogue.
OUTPUTS = {
    "csv": ((".csv",), "a CSV file, so its name ends in .csv", True),
    "json": ((".json",), "a JSON file, so its name ends in .json", True),
    "plot": ((".png",), "a PNG picture, so its name ends in .png", False),
    "sheet": (SHEET_SUFFIXES, "a contact sheet, so its name ends in .pdf or .html", False),
}


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output that would destroy something or that names the wrong kind of file.

    An existing catalogue or picture is never written over (whatever its name ends in), nor is a folder;
    the name must end in the format's suffix; its folder must exist. Writing over an earlier output of
    the same kind (a CSV, a JSON, a plot or sheet SwimSearch made) is what re-running a command does.
    A pipe or a device (`/dev/null`, `>(gzip > x.gz)`) is written into as it is: nothing is lost.
    """
    for name, (suffixes, kind, stdout_ok) in OUTPUTS.items():
        value = getattr(args, name, None)
        if not isinstance(value, str) or (value == "-" and stdout_ok):
            continue
        target = Path(value)
        if target.is_dir():
            raise UsageError(f"--{name} {value} is a folder; give a file name")
        if is_special(target):
            continue
        sidecar = [sidecar_path(target)] if name == "csv" and getattr(args, "command", None) == "query" else []
        for path in (target, *sidecar):
            what = _precious(path, name)
            if what:
                named = f"--{name} {value}" if path == target else f"The file {path.name} that --{name} {value} writes beside it"
                raise UsageError(f"{named} is {what}, which is never written over: give another file name")
        if target.suffix.lower() not in suffixes:
            raise UsageError(f"--{name} writes {kind}, not “{target.name}”")
        if not target.absolute().parent.is_dir():
            raise UsageError(f"the folder of --{name} {value} does not exist")


def _precious(path: Path, option: str) -> str | None:
    """What an existing file at `path` is, in words, when it is a catalogue or a picture (None otherwise).

    A PNG plot or a PDF sheet SwimSearch wrote before is not precious to its own option: writing it
    again is the point.
    """
    try:
        with open_regular(path) as fh:
            head = fh.read(64)
    except OSError:  # missing (the usual case), or unreadable: nothing this can destroy that it could read
        return None
    if head.startswith(SQLITE_MAGIC):
        return "a SwimSearch catalogue"
    if option == "plot" and _our_plot(path) or option == "sheet" and _our_sheet(path, head):
        return None
    if path.suffix.lower() in IMAGE_EXTENSIONS or head.startswith((b"%PDF-", b"%!PS")) or _identified(path):
        return "a picture"
    return None


def _identified(path: Path) -> bool:
    """Whether Pillow takes the file for a picture (its header only is read)."""
    from PIL import Image

    try:
        with Image.open(path):
            return True
    except Image.DecompressionBombError:
        return True
    except Exception:  # noqa: BLE001 - not a picture Pillow knows, whatever the reason
        return False


def _our_plot(path: Path) -> bool:
    """A PNG that `swimsearch eval --plot` drew (it says so in its text, or carries the plot's "Protocol")."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            text = image.info  # the text chunks before the pixels: nothing is decoded
            return image.format == "PNG" and (str(text.get("Software", "")).startswith("SwimSearch") or "Protocol" in text)
    except Exception:  # noqa: BLE001 - not a plot of ours
        return False


def _our_sheet(path: Path, head: bytes) -> bool:
    """An HTML sheet, or a PDF that SwimSearch made (its creator, near the end of the file, says so)."""
    if not head.startswith(b"%PDF-"):
        return path.suffix.lower() in (".html", ".htm")
    try:
        with open_regular(path) as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 16384))
            return b"/Creator (SwimSearch" in fh.read()
    except OSError:
        return False


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse numbers outside their range (nan and inf included) in one sentence."""
    for name, (low, high, words) in NUMBERS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if not (low <= value and (high is None or value <= high)):  # also false for nan
            raise UsageError(f"{words}, not {value:g}")


def similarity(text: str) -> float:
    """A --min-score value: a fraction ("0.5") or the percent people read ("50%") as a fraction."""
    text = text.strip()
    return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)


similarity.__name__ = "similarity"  # argparse's word for a value it cannot read: "invalid similarity value"


#: Options whose value may start with '-' though argparse would take it for an option:
#: '--region -0.1,0,0.5,0.5' then gets the box check's plain sentence, not "expected one argument".
NEGATIVE_OK = ("--region", "--colour-weight")


def join_number_values(argv: list[str]) -> list[str]:
    """'--min-score -inf' as '--min-score=-inf': argparse takes a value starting with '-' for an option."""
    options = {"--" + name.replace("_", "-") for name in NUMBERS} | set(NEGATIVE_OK)
    out: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in options:
            value = next(tokens, None)
            if value is None:
                out.append(token)
                break
            try:
                similarity(value.split(",")[0] if token == "--region" else value)  # a box: its first number
            except ValueError:
                out += [token, value]
                continue
            out.append(f"{token}={value}")
        else:
            out.append(token)
    return out


def other_model(catalogue, using, rebuild: str | None = None) -> str | None:
    """One sentence when `catalogue` was built with another model than `using` (an Embedder), else None.

    Names the catalogue's own model file when it ships (fp32 or int8), so the
    user can search with it, and `rebuild`, the command that rebuilds it with
    the one in use (None: it is being updated, so say that it is rebuilt); the
    two models' embeddings are never mixed in one catalogue.
    """
    from .model import describe_model, shipped_model_for

    built_name, built_sha = catalogue.identity().model_name, catalogue.identity().model_sha256
    if not built_sha or built_sha == using.sha256 or not catalogue.counts()["images"]:
        return None
    built, in_use = describe_model(built_name, built_sha), describe_model(using.name, using.sha256)
    own = shipped_model_for(built_sha)
    own_option = f"--model {shown(str(own))}" if own else "--model and the model file it was built with"
    if rebuild is None:
        return (f"This catalogue was built with {built}, so every picture is read again with {in_use} "
                f"(its own model: {own_option}).")
    return (f"This catalogue was built with {built}, not with {in_use} that is in use: search it with {own_option}, "
            f"or rebuild it with this one (every picture is read again): {rebuild}")
