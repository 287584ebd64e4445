"""The query command's steering options (issue 12): search by a detail (--region) and how much colour matters.

    swimsearch query --catalogue CAT IMAGE --region X,Y,W,H      # designs that hold this detail anywhere
    swimsearch query --catalogue CAT IMAGE --colour-weight 0     # ignore colour: other colourways rank as high
    swimsearch query --catalogue CAT IMAGE --colour-weight 1     # match colour
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import TYPE_CHECKING

from .colour import DEFAULT_WEIGHT, ColourMix
from .regions import Box

if TYPE_CHECKING:  # the search is imported when a query runs, not for --help
    from .cli_steering import QuerySteering
    from .search import SearchEngine, SearchResult

log = logging.getLogger(__name__)


def region_box(text: str) -> Box:
    """--region's value: four fractions of the picture; a bad one is a plain usage error."""
    try:
        return Box.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def colour_weight(text: str) -> float:
    """--colour-weight's value: a number from 0 to 1."""
    try:
        return ColourMix(float(text)).weight
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the colour weight is a number from 0 (ignore colour) to 1 (match colour), not {text!r}"
        ) from None


def add_steering_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add --region and --colour-weight to the query command's parser (returned)."""
    parser.add_argument(
        "--region", metavar="X,Y,W,H", type=region_box,
        help="search by the detail in this box of each IMAGE (fractions of its width and height from its top left, "
        "like 0.3,0.2,0.4,0.3): designs that hold it anywhere rank first",
    )
    parser.add_argument(
        "--colour-weight", metavar="W", type=colour_weight, default=DEFAULT_WEIGHT,
        help="how much colour matters, from 0 (ignore colour: a design in another colourway ranks as high) "
        "to 1 (match colour); default %(default)s, as the network sees it",
    )
    return parser


def steering_in_words(args: argparse.Namespace) -> str:
    """The steering options as the contact sheet and the CSV's sidecar say them ("" when none is used)."""
    words = f"; by the detail {args.region.text()} of the picture" if args.region is not None else ""
    if args.colour_weight != DEFAULT_WEIGHT:
        words += f"; colour weight {args.colour_weight:g} (0 ignores colour, 1 matches it)"
    return words


class SteeredQueries:
    """The query command's searches as the options ask (by a detail, or the whole pictures, steered as
    cli_steering.py reads; with the colour weight), each note a result carries said once on stderr.

    A search by a detail takes one picture: with --together or --unlike it is a usage error; --folder
    narrows it as it narrows a whole-picture search.
    The colour control of a query of several pictures (--together) reads the first one's colours.
    """

    def __init__(self, engine: "SearchEngine", steering: "QuerySteering", args: argparse.Namespace):
        from .cli_steering import SteeringError

        self.engine, self.steering, self.args = engine, steering, args
        self._said: set[str] = set()
        if args.region is not None and (steering.together or steering.unlike):
            raise SteeringError("--region searches by a detail of one picture at a time: it cannot be used with "
                                "--together or --unlike")

    def run(self, group: list[str]) -> "SearchResult":
        from .rocchio import Steering
        from .steering import colour_query

        args, mix = self.args, ColourMix(self.args.colour_weight)
        min_score = -1.0 if args.min_score is None else args.min_score  # None: no minimum given
        if args.region is not None:
            result = self.engine.search_detail(group[0], args.region, top_n=args.top, min_score=min_score, colour=mix,
                                               folders=self.steering.folders)
        else:
            started = time.perf_counter()
            like = tuple(self.engine.example(path) for path in group)
            colour = colour_query(self.engine.reader, self.engine.embedder, group[0], mix)
            embed_ms = (time.perf_counter() - started) * 1000
            steering = Steering(like, self.steering.unlike, self.steering.folders)
            result = self.engine.search_examples(steering, top_n=args.top, min_score=min_score, embed_ms=embed_ms, colour=colour)
        if result.note and result.note not in self._said:
            self._said.add(result.note)
            print(f"swimsearch: note: {result.note}", file=sys.stderr)
        return result
