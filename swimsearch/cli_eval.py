"""`swimsearch eval`: a catalogue's retrieval quality on a labelled folder, beside exact cosine and
the earlier search (before issue 11, comparison.py), with and without the exclusion groups, and per label.

    swimsearch eval --catalogue CAT --labels LABELS.csv [--exclude-column sender_id] [--only-catalogue] [--json OUT] [--plot OUT.png]
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .cli_output import print_eval
from .comparison import METHODS, baseline_engine, compare, ratio
from .evaluation import EvalReport, evaluate
from .cli_catalogues import describe_location
from .export import atomic_output
from .inputs import read_labels, read_path_list
from .search import SearchEngine
from .terminal import TerminalProgress

log = logging.getLogger(__name__)


def add_arguments(p: Any) -> None:
    """The eval command's own options (the catalogue and the common ones are the CLI's)."""
    p.add_argument(
        "--labels", required=True, metavar="LABELS.csv",
        help="CSV with an image path column and a label column; relative paths are read from the CSV's own folder",
    )
    p.add_argument(
        "--queries", metavar="LISTFILE",
        help="only these images as queries (one path per line; relative ones from the current folder)",
    )
    p.add_argument("--path-column", help="column with the image path (default: path, else filename)")
    p.add_argument("--group-column", default="label", help="column whose equal values are relevant (default: %(default)s)")
    p.add_argument("--exclude-column", help="drop gallery images sharing this column with the query (e.g. sender_id)")
    p.add_argument("--filter-column", help="leave out rows where this column is false/0/no (e.g. usable)")
    p.add_argument("--keep-unlabelled", action="store_true", help="count catalogue images without a label as wrong answers")
    p.add_argument("--plot", metavar="OUT.png", help="draw the PR curve and precision by rank")
    p.add_argument("--title", help="the plot's title (default: the labels file's name and the number of queries)")
    p.add_argument("--json", metavar="OUT", help="write all figures as JSON ('-' for stdout)")
    p.add_argument("--mirror", action="store_true", help="also search the mirrored query")
    p.add_argument("--limit", type=int, default=0, help="use only the first N queries (quick look)")
    p.add_argument(
        "--baseline", action="store_true",
        help="evaluate the earlier search instead: without neighbour lists (the index fitted on the raw embeddings, made in memory)",
    )
    p.add_argument(
        "--only-catalogue", action="store_true",
        help="evaluate only the catalogue's own search (not beside exact cosine and the earlier search)",
    )


def run(args: Any, catalogue: Any, engine: SearchEngine) -> dict[str, EvalReport]:
    """Evaluate, print and write what `args` asks for; returns the reports by method name."""
    labels = read_labels(
        args.labels,
        path_column=args.path_column,
        label_column=args.group_column,
        exclude_column=args.exclude_column,
        filter_column=args.filter_column,
    )
    queries = read_path_list(args.queries) if args.queries else None
    bar = TerminalProgress()
    if args.baseline:
        engine = baseline_engine(engine)
    if args.baseline or args.only_catalogue or args.keep_unlabelled:
        name = METHODS[1] if args.baseline else METHODS[0]
        reports = {name: evaluate(engine, labels, queries, keep_unlabelled=args.keep_unlabelled, limit=args.limit,
                                  progress=lambda done, total: bar("eval", done, total))}
    else:
        reports = compare(engine, labels, queries, limit=args.limit, progress=bar)
    report = next(iter(reports.values()))
    figures = {"catalogue": describe_location(catalogue), "labels": str(args.labels), "exclude_column": args.exclude_column}
    print_reports(reports, args.exclude_column)
    if args.json:
        methods = {name: r.as_dict() for name, r in reports.items()}
        text = json.dumps({**figures, **report.as_dict(), "methods": methods}, indent=2)
        if args.json == "-":
            print(text)
        else:
            with atomic_output(args.json, encoding="utf-8") as fh:
                fh.write(text + "\n")
    if args.plot:
        from .plot import draw_quality_plot

        # the labels file's name, never its folder: a folder name says which machine ran it, not what was measured
        title = args.title or f"{Path(args.labels).name}: {report.quality.queries} queries"
        with atomic_output(args.plot, "wb") as fh:
            draw_quality_plot(report.quality, fh, title=title, protocol=plot_protocol(args.exclude_column))
        print(f"plot        {args.plot}")
    return reports


def plot_protocol(exclude_column: str | None) -> str:
    """Which matches the plotted figures count, in the words the text output uses ("excluding same sender_id")."""
    if exclude_column:
        return f"excluding same {exclude_column}: matches sharing the query's {exclude_column} are left out"
    return "counting every match (no --exclude-column)"


def print_reports(reports: dict[str, EvalReport], exclude_column: str | None) -> None:
    print_eval(next(iter(reports.values())))
    if len(reports) < 2:
        return
    across = f"excluding same {exclude_column}" if exclude_column else "all"
    within = f"including same {exclude_column}" if exclude_column else None
    print(f"\nmAP@10 {'':30s} {across:>24s}" + (f" {within:>24s}" if within else ""))
    for name, r in reports.items():
        line = f"  {name:36s} {r.quality.map10:.4f} ({ratio(reports, name):.3f} x)".ljust(62)
        if within and r.without_exclusions is not None:
            line += f" {r.without_exclusions.map10:.4f} ({ratio(reports, name, same_sender=True):.3f} x)"
        print(line)
    names = list(reports)
    labels = sorted(reports[names[0]].per_label)
    if labels:
        print(f"\nmAP@10 per label ({across}): " + ", ".join(f"{n}" for n in names))
        for label in labels:
            print(f"  {label:20s} " + "  ".join(f"{reports[n].per_label.get(label, float('nan')):.4f}" for n in names))
