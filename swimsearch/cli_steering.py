"""The command line's steering: `query --together / --unlike / --folder`, and `swimsearch decisions`.

    swimsearch query --catalogue CAT IMAGE [IMAGE ...] [--together] [--unlike IMAGE ...] [--folder SUBFOLDER ...]
    swimsearch decisions --catalogue CAT [--csv OUT]

Without --together each IMAGE is a query of its own, as always; with it they
are one query (rocchio.py). Pictures named by --unlike are read once and
steer every query away from them. --folder narrows every query to subfolders
of the catalogue's folder.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, ContextManager, Iterator, Sequence

from .export import atomic_output, neutralise
from .rocchio import Example, Steering
from .terminal import shown
from .stores.base import CatalogueReader
from .stores.verdicts import DIFFERENT, SAME, Decision

if TYPE_CHECKING:  # the search (and the model behind it) loads only when a command needs it
    from .search import SearchEngine, SearchResult

log = logging.getLogger(__name__)

#: The columns of `swimsearch decisions --csv`.
DECISION_COLUMNS = ("verdict", "a", "b", "who", "when", "login")  # login: a team catalogue's server account
VERDICT_WORDS = {SAME: "same design", DIFFERENT: "not similar"}


class SteeringError(ValueError):
    """A steering argument that cannot be used as given (exit 2); the message is one plain sentence."""


def add_query_arguments(p: argparse.ArgumentParser) -> None:
    """--together, --unlike and --folder of `swimsearch query`."""
    p.add_argument("--together", action="store_true", help="search with all the IMAGEs as one query (several examples)")
    p.add_argument(
        "--unlike", metavar="IMAGE", nargs="+", action="extend", default=[],
        help="pictures the results should not look like ('not like this'); steers every query",
    )
    p.add_argument(
        "--folder", metavar="SUBFOLDER", action="append", default=[],
        help="only results in this subfolder of the catalogue's folder (repeat for several)",
    )


def add_decisions_command(
    sub: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    catalogue_help: str,
    open_catalogue: Callable[[argparse.Namespace], ContextManager[CatalogueReader]],
) -> None:
    """`swimsearch decisions`, opening its catalogue (from the parsed arguments) as the other commands do."""

    def run(args: argparse.Namespace) -> int:
        with open_catalogue(args) as reader:
            return cmd_decisions(args, reader)

    p = sub.add_parser("decisions", parents=[common], help="list the 'same design' / 'not similar' decisions of a catalogue")
    p.add_argument("--catalogue", required=True, help=catalogue_help)
    p.add_argument("--csv", metavar="OUT", help="also write them as CSV ('-': to stdout instead of the list)")
    p.set_defaults(run=run, parser=p)


@dataclass(frozen=True)
class QuerySteering:
    """What steers every query of one `swimsearch query` run."""

    together: bool
    unlike: tuple[Example, ...]
    folders: tuple[str, ...]

    @classmethod
    def read(cls, args: argparse.Namespace, engine: SearchEngine, reader: CatalogueReader) -> "QuerySteering":
        """Check --folder against the catalogue and embed the --unlike pictures (once).

        Raises:
            SteeringError: a folder that is not a subfolder of the catalogue's folder, or holds no image.
            ImageError: an --unlike picture cannot be read.
        """
        folders = tuple(_subfolder(f, reader) for f in args.folder)
        unlike = tuple(engine.example(str(Path(p).absolute()), mirror=engine.config.mirror) for p in args.unlike)
        return cls(bool(args.together), unlike, folders)

    def groups(self, images: Sequence[str]) -> Iterator[list[str]]:
        """The queries: each image alone, or all of them together.

        Raises:
            SteeringError: (before the first query) a picture is both searched with and
                named by --unlike: half-weighted, "not like" itself would only hide it.
        """
        # os.path.realpath, not Path.resolve: a symlink loop must reach the reader (which says so in a
        # sentence) rather than raise RuntimeError here
        unliked = {os.path.realpath(e.label) for e in self.unlike if e.label}
        both = next((p for p in images if os.path.realpath(p) in unliked), None)
        if both is not None:
            raise SteeringError(f"{both} is both a picture to search with and one named by --unlike: give it only once")
        if self.together:
            yield [str(Path(p).absolute()) for p in images]
        else:
            yield from ([str(Path(p).absolute())] for p in images)

    def search(self, engine: SearchEngine, group: list[str], *, top_n: int, min_score: float) -> SearchResult:
        """One query: embed its pictures, then search steered (ImageError if one cannot be read)."""
        started = time.perf_counter()
        like = tuple(engine.example(path) for path in group)
        embed_ms = (time.perf_counter() - started) * 1000
        return engine.search_examples(Steering(like, self.unlike, self.folders), top_n=top_n, min_score=min_score, embed_ms=embed_ms)

    def in_words(self) -> str:
        """The steering as the contact sheet and the CSV's sidecar say it ("" for none)."""
        words = []
        if self.together:
            words.append("the pictures searched together")
        if self.unlike:
            words.append(f"not like {len(self.unlike)} picture{'s' if len(self.unlike) > 1 else ''}")
        if self.folders:
            words.append("only in " + ", ".join(self.folders))
        return "; ".join(words)


def _subfolder(value: str, reader: CatalogueReader) -> str:
    """A --folder as the catalogue's relative subfolder: given relative to its folder, or as a path inside it."""
    root = reader.root.resolve()
    if Path(value).is_absolute():
        try:
            value = Path(value).resolve().relative_to(root).as_posix()
        except ValueError:
            raise SteeringError(f"--folder {value} is not inside the catalogue's folder {root}") from None
    folder = "/".join(part for part in value.replace("\\", "/").split("/") if part not in ("", "."))
    counts = reader.folder_counts()
    if folder not in counts:
        known = sorted(f for f in counts if f and "/" not in f)
        listed = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "") if known else "it has none"
        raise SteeringError(f"the catalogue's folder {root} has no subfolder {folder or value} with pictures (its subfolders: {listed})")
    return folder


# --- swimsearch decisions -------------------------------------------------------------


def cmd_decisions(args: argparse.Namespace, reader: CatalogueReader) -> int:
    decisions = reader.decisions()
    if args.csv and args.csv != "-":
        with atomic_output(args.csv, newline="", encoding="utf-8") as fh:
            write_decisions_csv(decisions, reader.root, fh)
        print(f"wrote {len(decisions)} decision{'' if len(decisions) == 1 else 's'} to {shown(args.csv)}", file=sys.stderr)
    if args.csv == "-":
        write_decisions_csv(decisions, reader.root, sys.stdout)
        return 0
    for d in decisions:
        print(f"{VERDICT_WORDS[d.verdict]:12s}  {shown(d.a_path)}  {shown(d.b_path)}  ({shown(who_in_words(d))}, {_when(d.at)})")
    if not decisions:
        print("no decisions yet: mark results 'Same design' or 'Not similar' in the window")
    return 0


def who_in_words(d: Decision) -> str:
    """Who decided: the name they gave, and the server login it was made with where that differs (a team catalogue)."""
    return d.who if not d.login or d.login == d.who else f"{d.who} (login {d.login})"


def write_decisions_csv(decisions: Sequence[Decision], root: Path, out: IO[str]) -> int:
    """One row per decision: verdict, the two files (absolute paths), who, when (ISO 8601, local time)."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(DECISION_COLUMNS)
    for d in decisions:
        a, b = (neutralise(os.path.join(root, *p.split("/"))) for p in (d.a_path, d.b_path))
        writer.writerow([d.verdict, a, b, neutralise(d.who), _when(d.at), neutralise(d.login or "")])
    return len(decisions)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")
