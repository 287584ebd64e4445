"""What the command line prints as text: build reports, match lists and quality figures.

Every file name goes through `terminal.shown`, so a name holding escape
sequences is printed escaped; the JSON and CSV outputs keep true names.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .build_report import BuildReport, as_dict
from .catalogue import Catalogue
from .cli_catalogues import describe_location
from .evaluation import EvalReport
from .export import percent
from .stores.verdicts import DIFFERENT, SAME
from .terminal import shown

if TYPE_CHECKING:  # the search module loads the model's runtime: only when a command searches
    from .search import SearchResult


def print_report(report: BuildReport, catalogue: Catalogue, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"catalogue": describe_location(catalogue), **as_dict(report)}, indent=2))
        return
    print(f"{shown(describe_location(catalogue))}: {report.summary()}")
    if report.added + report.updated:
        print(f"  {report.images_per_second:.1f} images/s, {report.seconds:.1f} s in all")
    for rel, reason in report.errors[:20]:
        print(f"  unreadable: {shown(rel)}: {reason}")
    for folder in report.unlisted_folders:
        print(f"  could not list the folder {shown(folder)}: its files were kept as they were")
    if len(report.errors) > 20:
        print(f"  ... and {len(report.errors) - 20} more unreadable files (swimsearch info --catalogue ... --unreadable)")


def print_result(result: SearchResult) -> None:
    print(f"{shown(result.query)}  ({result.embed_ms:.0f} ms embed, {result.search_ms:.0f} ms search, {result.method})")
    for m in result.matches:
        itself = result.is_example(m.image_id)
        flags = " ".join(
            f
            for f, on in (
                ("(the query)" if len(result.example_ids) < 2 else "(example)", itself),
                ("duplicate", m.duplicate and not itself),
                ("mirrored", m.mirrored),
                ("missing", m.missing),
                ("same design (decided)", m.decision == SAME),
                ("not similar (decided)", m.decision == DIFFERENT),
            )
            if on
        )
        # the one rounding rule of the window and the CSV (export.percent), and the score's band
        print(f"  {m.rank:3d}  {percent(m.score):3d}%  {m.band:12s}  {shown(m.path)}  {flags}".rstrip())


def print_eval(report: EvalReport) -> None:
    quality = report.quality
    print(f"queries     {quality.queries}  (catalogue {report.searchable_images} images, {report.method})")
    print(f"mAP@10      {quality.map10:.4f}")
    print(f"P@1         {quality.p1:.4f}")
    print(f"P@10        {quality.p10:.4f}")
    print(f"R@100       {quality.r100:.4f}")
    for name in ("embed_ms", "search_ms", "total_ms"):
        timing = report.timing(name)
        print(f"{name:11s} median {timing['median']:.1f}  p95 {timing['p95']:.1f}")


def filters_in_words(args: Any) -> str:
    """The query settings as the contact sheet and the CSV's sidecar say them."""
    words = f"the {args.top} best matches per query"
    if args.min_score is not None:
        words += f", at least {100 * args.min_score:g}% similar"  # as the window says it
    if args.mirror:
        words += "; mirrored designs matched"
    return words
