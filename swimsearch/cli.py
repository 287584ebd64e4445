"""`swimsearch`: the command line, sharing the engine with the desktop app.

    swimsearch index FOLDER [--catalogue CAT] [--root PATH]
    swimsearch query --catalogue CAT [--top N] [--min-score S] [--region X,Y,W,H] [--colour-weight W] [--csv OUT] [--sheet OUT.pdf|.html] (IMAGE... | --queries LISTFILE)
    swimsearch info --catalogue CAT
    swimsearch duplicates --catalogue CAT [--csv OUT]
    swimsearch decisions --catalogue CAT [--csv OUT]
    swimsearch eval --catalogue CAT --labels LABELS.csv [--queries LISTFILE] [--baseline] [--json OUT] [--plot OUT.png]
    swimsearch copy --catalogue CAT --to NEW [--replace-empty]

--catalogue takes the catalogue file, its folder (its catalogue is found
where the window puts it too: inside the folder, or in the per-user data
folder when the folder is read-only or on a network drive), or a team
catalogue: postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?catalogue=NAME]
(cli_catalogues.py; --root PATH says where its shared folder is here).

Known failures print one plain line on stderr and exit 1; bad arguments exit 2;
a build stopped with Ctrl-C keeps what it committed and exits 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from .cli_steer import SteeredQueries, add_steering_options, steering_in_words
from .cli_steering import QuerySteering, SteeringError, add_decisions_command, add_query_arguments
from . import __version__
from .cli_catalogues import (
    copy, describe_location, new_catalogue_file, open_existing, open_for_index, refuse_other_model, remove_new_catalogue,
    search_cache_info,
)
from .config import EngineConfig
from .errors import Cancelled, CatalogueError
from .evaluation import EvaluationError
from .folderscan import nothing_read
from .export import write_csv, write_duplicates_csv
from .images import ImageError
from .inputs import InputError, read_path_list
from .model import Embedder, ModelError, default_model_path
from .cli_checks import (
    ShownFormatter,
    UsageError,
    check_numbers,
    check_outputs,
    other_model,
    join_number_values,
    similarity,
    os_error_sentence,
)
from .cli_output import filters_in_words, print_info, print_report, print_result
from .sheet import SheetError
from .terminal import StopOnInterrupt, TerminalProgress, shown

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


def _config(args) -> EngineConfig:
    changes = {}
    for name in ("threads", "batch_size"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if getattr(args, "variant", None):
        changes["hash_variant"] = args.variant
    if getattr(args, "folder_labels", None) is not None:
        changes["folder_labels"] = args.folder_labels
    if getattr(args, "mirror", False):
        changes["mirror"] = True
    return EngineConfig().with_changes(**changes)


def _embedder(config: EngineConfig, model: str | None) -> Embedder:
    return Embedder(Path(model) if model else default_model_path(), threads=config.threads or None)


# --- commands -------------------------------------------------------------------


def cmd_index(args) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    config = _config(args)
    embedder = _embedder(config, args.model)
    made = new_catalogue_file(folder, args.catalogue)
    with open_for_index(folder, args.catalogue, args.root) as catalogue, StopOnInterrupt() as stop:
        # choices not named again keep what the catalogue was fitted with
        unnamed = [name for name, given in (("hash_variant", args.variant), ("folder_labels", args.folder_labels)) if given is None]
        config = catalogue.with_fit_choices(config, unnamed)
        whole = folder.resolve() == catalogue.root.resolve()  # a folder inside it keeps the model (or is refused)
        if whole and (switching := other_model(catalogue, embedder)):
            print(f"swimsearch: {switching}", file=sys.stderr)
        try:
            report = catalogue.update(
                embedder, config, progress=TerminalProgress(), should_stop=stop, folder=folder,
                allow_removal=args.allow_removal,
            )
            code = EXIT_OK
        except Cancelled as exc:
            report, code = exc.report, EXIT_CANCELLED
        if made is None or not report.read_nothing:
            print_report(report, catalogue, args.json)
    if made is not None and report.read_nothing:  # as a folder without pictures: refused, and nothing left in it
        remove_new_catalogue(made)
        raise nothing_read(folder, report.errors, report.skipped)
    if report.held:
        named = f" --catalogue {shown(describe_location(catalogue))}" if args.catalogue else ""
        print(
            f"swimsearch: {report.held_reason}. They were kept in the catalogue. If they really were deleted, "
            f"update again with: swimsearch index {shown(str(folder))}{named} --allow-removal",
            file=sys.stderr,
        )
        return EXIT_FAILED if code == EXIT_OK else code
    return code


def cmd_query(args) -> int:
    from .search import SearchEngine

    images = list(args.images) + (read_path_list(args.queries) if args.queries else [])
    if not images and len(args.unlike) > 1:  # --unlike takes every name after it: the IMAGEs went with it
        raise UsageError(
            f"--unlike took all of {', '.join(shown(str(p)) for p in args.unlike)} as pictures not to be like, "
            "leaving no IMAGE to search with: put the IMAGEs before --unlike"
        )
    if not images:
        raise UsageError("give at least one IMAGE or --queries LISTFILE" + (" to search with" if args.unlike else ""))
    config = _config(args)
    embedder = _embedder(config, args.model)
    failures = 0
    results = []
    with open_existing(args.catalogue, args.root) as catalogue:
        refuse_other_model(catalogue, embedder, args.model)
        engine = SearchEngine(catalogue, embedder, config)
        steering = QuerySteering.read(args, engine, catalogue)
        queries = SteeredQueries(engine, steering, args)  # --region, --colour-weight; notes said once
        for group in steering.groups(images):
            try:
                result = queries.run(group)
            except ImageError as exc:
                failures += 1
                print(f"swimsearch: cannot read {shown(exc.path)}: {exc.reason}", file=sys.stderr)
                continue
            results.append(result)
            if not args.csv:
                print_result(result)
        filters = "; ".join(filter(None, (filters_in_words(args) + steering_in_words(args), steering.in_words())))
        if args.csv and failures and not results:  # a CSV of the last meeting is not overwritten by a header
            where = "no CSV written" if args.csv == "-" else f"{shown(args.csv)} not written"
            print(f"swimsearch: {where}: no query could be searched", file=sys.stderr)
        elif args.csv:
            identity = dict(catalogue=describe_location(catalogue), model=embedder.name, model_sha256=embedder.sha256)
            if args.csv == "-":
                write_csv(results, sys.stdout, **identity)
            else:
                count = write_csv(results, args.csv, **identity, filters=filters)
                print(f"wrote {count} rows for {len(results)} queries to {args.csv}", file=sys.stderr)
        if args.sheet and results:
            from .sheet import SheetInfo, SheetQuery, write_sheet

            info = SheetInfo(catalogue.name, str(catalogue.root), embedder.name, filters)
            count = write_sheet(args.sheet, [SheetQuery(r) for r in results], info)
            print(f"wrote a contact sheet of {count} matches for {len(results)} queries to {args.sheet}", file=sys.stderr)
    if failures and args.together and len(images) > 1:  # one query: an unreadable picture stops it, none is dropped
        print(f"swimsearch: no search was made with the {len(images)} pictures together: "
              "leave out the one that cannot be read and search again", file=sys.stderr)
        return EXIT_FAILED
    if failures:
        print(f"swimsearch: {failures} of {len(images)} queries failed" if len(images) > 1 else "swimsearch: the query failed",
              file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_info(args) -> int:
    with open_existing(args.catalogue, args.root) as catalogue:
        info = catalogue.info()
        if args.unreadable:
            info["unreadable_files"] = [{"path": p, "reason": r} for p, r in catalogue.unreadable()]
        if args.check:
            info["checked"] = catalogue.check()  # damage raises: one sentence, exit 1
        cache = search_cache_info(catalogue, _config(args), info["searchable"])
        if cache is not None:
            info["search_cache"] = cache
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print_info(info)
    return EXIT_OK


def cmd_duplicates(args) -> int:
    from .duplicates import find_duplicate_groups
    from .search import SearchEngine

    config = _config(args)
    with open_existing(args.catalogue, args.root) as catalogue:
        engine = SearchEngine(catalogue, None, config)
        groups = find_duplicate_groups(engine, max_distance=args.max_distance)
    if args.csv == "-":  # the rows only, to stdout, as `query --csv -` and `decisions --csv -` do
        write_duplicates_csv(groups, sys.stdout)
        return EXIT_OK
    if args.csv:
        count = write_duplicates_csv(groups, args.csv)
        print(f"wrote {count} rows for {len(groups)} groups to {shown(args.csv)}", file=sys.stderr)
    for n, group in enumerate(groups, start=1):
        print(f"group {n}: {len(group.paths)} files (pHash distance <= {group.max_phash_distance})")
        for path in group.paths:
            print(f"  {shown(path)}")
    if not groups:
        print("no near-identical files found")
    return EXIT_OK


def cmd_eval(args) -> int:
    from . import cli_eval
    from .search import SearchEngine

    config = _config(args)
    embedder = _embedder(config, args.model)
    with open_existing(args.catalogue, args.root) as catalogue:
        cli_eval.run(args, catalogue, SearchEngine(catalogue, embedder, config))
    return EXIT_OK


def cmd_copy(args) -> int:
    target, report = copy(args.catalogue, args.to, args.root, replace_empty=args.replace_empty)
    with target:
        print(f"{shown(describe_location(target))}: {report.summary()} ({report.seconds:.1f} s)")
    return EXIT_OK


# --- entry point -----------------------------------------------------------------


CATALOGUE_HELP = "the catalogue file, or the folder it was built from, or a team catalogue postgresql://USER@HOST/DB?catalogue=NAME"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swimsearch", description="Find similar designs in an image catalogue.")
    parser.add_argument("--version", action="version", version=f"swimsearch {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    common.add_argument("--model", help="ONNX trunk to use (default: the one that ships)")
    common.add_argument("--threads", type=int, help="onnxruntime threads (default: all cores)")
    common.add_argument("--root", metavar="PATH",
                        help="a team catalogue's shared folder as this computer mounts it (default: where it was indexed)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", parents=[common], help="build or update a catalogue from a folder")
    p.add_argument("folder", help="folder of images (searched recursively)")
    p.add_argument(
        "--catalogue", help="catalogue file or team catalogue postgresql://USER@HOST/DB?catalogue=NAME "
        "(default: FOLDER/.swimsearch.swimcat, or a per-user file if FOLDER is read-only or on a network drive)"
    )
    p.add_argument("--variant", choices=("pca", "laplacian"), help="hash layer variant (default: pca, or what the catalogue was fitted with)")
    p.add_argument(
        "--folder-labels", action=argparse.BooleanOptionalAction, default=None,
        help="use subfolder names as labels for the hash layer (kept by later updates until --no-folder-labels)",
    )
    p.add_argument("--batch-size", type=int, help="images per committed batch")
    p.add_argument(
        "--allow-removal", action="store_true",
        help="remove files that are gone even when many are gone at once (otherwise kept: an unmounted share?)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=cmd_index, parser=p)

    p = sub.add_parser("query", parents=[common], help="rank the catalogue against one or many images")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="picture files to search with (any number)")
    p.add_argument("--catalogue", required=True, help=CATALOGUE_HELP)
    p.add_argument("--queries", metavar="LISTFILE", help="file with one image path per line")
    p.add_argument("--top", type=int, default=10, help="results per query (default: %(default)s)")
    p.add_argument("--min-score", type=similarity, default=None, metavar="S",
                   help="list only matches shown at least this similar: 0.5 or 50%% (the percent shown, as the window's minimum)")
    p.add_argument(
        "--csv", metavar="OUT", help="write the match lists as CSV ('-' for stdout), with OUT's .about.json sidecar"
    )
    p.add_argument(
        "--sheet", metavar="OUT", help="write a contact sheet (OUT.pdf or OUT.html): one file, a section per query"
    )
    p.add_argument("--mirror", action="store_true", help="also search the mirrored image (mirror-invariant search)")
    add_query_arguments(p)
    add_steering_options(p).set_defaults(run=cmd_query, parser=p)

    p = sub.add_parser("info", parents=[common], help="what a catalogue holds")
    p.add_argument("--catalogue", required=True, help=CATALOGUE_HELP)
    p.add_argument("--unreadable", action="store_true", help="list the unreadable files and why")
    p.add_argument("--check", action="store_true", help="verify every checksum and record of the catalogue (slower)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_info, parser=p)

    p = sub.add_parser("duplicates", parents=[common], help="list groups of near-identical files")
    p.add_argument("--catalogue", required=True, help=CATALOGUE_HELP)
    p.add_argument("--max-distance", type=int, help="pHash bits that may differ (default: 6)")
    p.add_argument("--csv", metavar="OUT", help="also write the groups as CSV ('-': to stdout instead of the list)")
    p.set_defaults(run=cmd_duplicates, parser=p)
    add_decisions_command(sub, common, CATALOGUE_HELP, lambda args: open_existing(args.catalogue, args.root))

    p = sub.add_parser("eval", parents=[common], help="retrieval quality and timings on a labelled folder")
    p.add_argument("--catalogue", required=True, help=CATALOGUE_HELP)
    from .cli_eval import add_arguments

    add_arguments(p)
    p.set_defaults(run=cmd_eval, parser=p)

    p = sub.add_parser("copy", parents=[common], help="copy a catalogue into a new one: a file into a team catalogue, or back")
    p.add_argument("--catalogue", required=True, help=CATALOGUE_HELP + " (the one to copy)")
    p.add_argument("--to", required=True, metavar="NEW", help="the new catalogue: a .swimcat file or postgresql://...")
    p.add_argument("--replace-empty", action="store_true",
                   help="NEW is a team catalogue with nothing in it (a copy stopped before its end): remove it and copy into it")
    p.set_defaults(run=cmd_copy, parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_number_values(list(sys.argv[1:] if argv is None else argv)))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ShownFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    try:
        check_numbers(args)
        check_outputs(args)
        return args.run(args)
    except (UsageError, InputError, SheetError, SteeringError) as exc:
        args.parser.print_usage(sys.stderr)  # the command's own usage, not the list of commands
        print(f"swimsearch: error: {shown(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (CatalogueError, ModelError, EvaluationError) as exc:
        print(f"swimsearch: {shown(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except ImageError as exc:
        print(f"swimsearch: cannot read {shown(exc.path)}: {exc.reason}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("swimsearch: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except MemoryError:
        print("swimsearch: there was not enough memory to finish; what was saved before is kept.", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # writing an output (CSV, JSON, plot) or reading a file named on the command line
        print(f"swimsearch: {shown(os_error_sentence(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except Exception:  # noqa: BLE001 - the last line of defence: say so plainly, keep the traceback
        log.exception("unexpected error")
        print("swimsearch: an unexpected error occurred (details above); please report it.", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
