"""What the command line prints as text: build reports, match lists and quality figures.

Every file name goes through `terminal.shown`, so a name holding escape
sequences is printed escaped; the JSON and CSV outputs keep true names.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime
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


def print_info(info: dict[str, Any]) -> None:
    """`swimsearch info` as text: what the catalogue holds, who changed it last, and what an update must finish."""
    fitted = info["fitted"] or {}
    print(f"catalogue   {shown(info['catalogue'])}")
    print(f"folder      {shown(info['root'])}{'' if info['root_exists'] else '  (missing!)'}")
    print(f"images      {info['images']} ({info['readable']} readable, {info['unreadable']} unreadable, {info['searchable']} searchable)")
    if info["model"]:
        print(f"model       {shown(str(info['model']))} ({(info['model_sha256'] or '')[:12]})")
    else:  # nothing embedded yet: an empty folder, or a copy stopped before its end
        print("model       none yet (nothing indexed)")
    if fitted:
        s = fitted.get("settings", {})
        print(
            f"index       {shown(str(fitted['variant']))} hash layer, {s.get('bits')}-bit spherical codes, "
            f"{s.get('lsh_tables')} LSH tables x {s.get('lsh_key_bits')} bits, fitted on {fitted['count']} images"
            + (" (provisional: build was cancelled)" if fitted.get("provisional") else "")
        )
    pending = unfinished(info)
    if pending:
        print(f"unfinished  {pending}")
    team = info.get("team")
    if team:
        print(f"server      {team['server']}, database {team['database']}, pgvector {team['pgvector']}")
        print(f"you         {team['person']} (login {team['login']}, {team['access']})")
        if team["recorded_root"] != info["root"]:
            print(f"indexed as  {team['recorded_root']} (on the computer that indexed it)")
        for change in team["recent_changes"]:
            print(f"changed     {change_in_words(change)}")
    cache = info.get("search_cache")
    if cache:
        size = "" if not cache["bytes"] else f", {in_bytes(cache['bytes'])}"
        print(f"cache       {shown(cache['path'])}{size}: {cache['state']}")
    for item in info.get("unreadable_files", []):
        print(f"unreadable  {shown(item['path'])}: {shown(item['reason'])}")
    if "checked" in info:
        # Sound is not finished: a check of a half-updated catalogue says both.
        print(f"check       {'records sound' if pending else 'ok'}: {'; '.join(info['checked'])}")


def in_bytes(count: int) -> str:
    """A file's size in words: 8.8 GB, 2.3 MB, 12 KB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{max(1, round(count / 1e3))} KB"


def unfinished(info: dict[str, Any]) -> str:
    """What an interrupted (or running) update left to do, and that the next update finishes it ("" for nothing)."""
    waiting = info["readable"] - info["searchable"]
    provisional = bool((info["fitted"] or {}).get("provisional"))
    if info["readable"] < 2 or (waiting <= 0 and not provisional):
        return ""
    what = (f"{waiting} of {info['readable']} readable images are not searchable yet" if waiting > 0
            else "the index was fitted on part of the images only")
    command = f"swimsearch index {shlex.quote(shown(info['root']))} --catalogue {shlex.quote(shown(info['catalogue']))}"
    return f"{what} (an update was interrupted, or is running now); the next update finishes it: {command}"


#: A team catalogue's change-log actions in words (the count follows).
CHANGE_WORDS = {
    "add": "added or re-read {images} files",
    "remove": "removed {images} files",
    "restore": "found {images} files again (moved or back)",
    "gone": "noted {images} files gone from the folder",
    "clear": "emptied the index",
    "fit": "fitted the index on {count} images",
}


def change_in_words(change: dict[str, Any]) -> str:
    """One line of a team catalogue's change log as a sentence: when, who (and their login), what."""
    try:
        when = datetime.fromisoformat(change["at"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        when = str(change["at"])
    who = change["person"] if change["person"] == change["login"] else f"{change['person']} (login {change['login']})"
    detail = {k: v for k, v in (change.get("detail") or {}).items() if v is not None}
    try:
        what = CHANGE_WORDS[change["action"]].format(**detail)
    except (KeyError, IndexError):
        what = " ".join([str(change["action"]), *(f"{k} {v}" for k, v in detail.items())])
    if change["action"] == "add":
        if detail.get("unreadable"):
            what += f", {detail['unreadable']} of them unreadable"
        if detail.get("first"):
            what += f" (first {shown(str(detail['first']))})"
    if change["action"] == "fit" and detail.get("provisional"):
        what += " (provisional: that update was interrupted)"
    return f"{when}  {shown(who)} {what}"


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
