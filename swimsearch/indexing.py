"""Indexing a catalogue's embeddings: the vectors the index is fitted on, the fit, codes, buckets and graph.

With ``vectors="augmented"`` (the default, issue 11) each embedding is
prepared on a fixed centre (the model's reference mean from its calibration
file, so no vector moves when the catalogue grows), each image gets a list of
its k nearest other images (neighbours.py, kept in the store), and the index
is fitted on and encodes the *augmented* vectors: every image as a weighted
mean of itself and its listed neighbours. An update keeps it right: an added
image enters exactly the lists whose k-th cosine it beats, the lists that
named a removed image are searched again, and every image whose list changed
is encoded again (about five per added image). An update that finds the
added images' neighbours with the catalogue's own search (from `exact_below`
images up) reads only the vectors it needs from the store (`StoredVectors`),
not every image's. With ``vectors="embeddings"``
the index is fitted on the raw embeddings as before issue 11.

Whether to fit again is `refit_reason`, a pure function: an update keeps the
fit unless the catalogue has doubled or halved since, the index settings
changed, or the fit was made on a cancelled build that has now completed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from .calibration import shipped_calibration
from .config import INDEX_SETTINGS, EngineConfig
from .graph import next_graph
from .index import FittedIndex, IndexSnapshot, fit_index
from .neighbour_updates import update_lists
from .neighbours import NeighbourLists, ScoredFn, VectorTable, augmented, build_lists
from .searchers import Searcher, choose_searcher
from .stored_vectors import StoredVectors, prepared_table
from .stores.base import CatalogueWriter, FitState

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

#: An update that adds more images than this to a catalogue on the approximate
#: path makes every neighbour list again (a catalogue doubles before it refits).
RELIST_ABOVE = 20_000


def _quiet(phase: str, done: int, total: int) -> None:
    pass


def refit_reason(
    *, embedded: int, fit: FitState | None, wanted: Mapping[str, Any], complete: bool, force: bool = False
) -> str | None:
    """Why the index must be fitted again, or None to keep the fit (and only encode new images).

    Args:
        embedded: images with an embedding now (at least 2: fewer cannot be indexed).
        fit: the catalogue's current fit, if any.
        wanted: the index settings asked for (`INDEX_SETTINGS` of the config).
        complete: the build read every file (not cancelled).
        force: fit again whatever the state (new settings asked for explicitly).
    """
    if force:
        return "asked for"
    if fit is None:
        return "no fit yet"
    if fit.provisional and complete:
        return "the fit was made on a cancelled build"
    if embedded >= 2 * fit.count:
        return f"the catalogue has grown from {fit.count} to {embedded} images"
    if embedded * 2 <= fit.count:
        return f"the catalogue has shrunk from {fit.count} to {embedded} images"
    if dict(fit.settings) != dict(wanted):
        return "the index settings changed"
    return None


@dataclass
class _Plan:
    """What one indexing run writes."""

    fitted: FittedIndex
    refit: bool
    encode: np.ndarray | None  # ids to (re)encode; None: every embedded image
    recode: np.ndarray  # of those, the ids that have a code now (dropped first)
    chunks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]  # (ids, vectors the fit takes), in chunks
    lists: NeighbourLists | None = None  # neighbour lists to keep
    replace_lists: bool = False


def index_catalogue(
    writer: CatalogueWriter,
    config: EngineConfig,
    *,
    complete: bool = True,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> tuple[int, bool]:
    """Fit if needed (or `force`), then encode every image whose code is missing or out of date.

    Returns:
        (searchable images, whether the index was fitted again).
    """
    with writer.index_lock():  # one writer at a time decides on the fit and writes codes
        return _index(writer, config, complete=complete, progress=progress or _quiet, force=force)


def _index(writer: CatalogueWriter, config: EngineConfig, *, complete: bool, progress: ProgressFn, force: bool) -> tuple[int, bool]:
    embedded = writer.counts()["readable"]
    if embedded < 2:  # similarity is relative to the others: one image cannot be indexed
        writer.clear_index()
        return 0, False
    wanted = {name: getattr(config, name) for name in INDEX_SETTINGS}
    reason = refit_reason(embedded=embedded, fit=writer.fit_state(), wanted=wanted, complete=complete, force=force)
    fitted = None if reason is not None else writer.fitted()
    if reason is None and fitted is None:
        return writer.counts()["searchable"], False
    lists = writer.neighbour_lists() if fitted is not None and fitted.augmented else None
    if fitted is not None and fitted.augmented and not (lists is not None and len(lists)):
        reason = "the catalogue keeps no neighbour lists yet"
    # A store that finds candidates itself (a database server) needs no graph of ours.
    keep_graph = embedded >= config.graph_from and not writer.searches_itself
    previous: IndexSnapshot | None = None  # what was searchable: the graph to extend, the search for neighbours
    search: Searcher | None = None  # the catalogue's own search, where new images' neighbours are looked for
    if reason is None and (keep_graph or embedded >= config.exact_below):
        # A store that searches itself (a team catalogue's server) is asked; nothing is loaded.
        search = writer.own_searcher(config) if writer.searches_itself and not keep_graph else None
        if search is None:
            previous = writer.load_snapshot()
            search = None if previous is None else choose_searcher(previous, config.with_changes(exact_below=0))
    if reason is not None:
        log.info("fitting the index again: %s", reason)
        progress("index", 0, embedded)
        plan = _refit_plan(writer, config, embedded, provisional=not complete)
    else:
        assert fitted is not None
        plan = _update_plan(writer, config, fitted, lists, search)
        if plan.encode is not None and not len(plan.encode) and not _graph_needs_work(previous, keep_graph):
            return writer.counts()["searchable"], False
    _write(writer, plan, keep_graph, previous, embedded, progress)
    return writer.counts()["searchable"], plan.refit


def _write(
    writer: CatalogueWriter, plan: _Plan, keep_graph: bool, previous: IndexSnapshot | None, embedded: int, progress: ProgressFn
) -> None:
    """Save the fit (if new), the neighbour lists, codes, buckets and graph, in one transaction."""
    fitted = plan.fitted
    total = embedded if plan.encode is None else len(plan.encode)
    progress("index", 0, total)
    with writer.transaction():
        if plan.refit:
            writer.save_fit(fitted)
        elif len(plan.recode):
            writer.drop_codes(plan.recode)
        if plan.lists is not None:
            writer.write_neighbours(plan.lists, replace=plan.replace_lists)
        dim = fitted.rerank_basis.shape[1]
        all_ids, all_keys, all_vectors = [np.empty(0, np.int64)], [], [np.empty((0, dim), np.float16)]
        done = 0
        for ids, source in plan.chunks():
            codes = fitted.codes(source)
            vectors = fitted.vectors(source)
            writer.write_codes(ids, codes, vectors)
            all_ids.append(ids)
            all_keys.append(fitted.keys(codes))
            all_vectors.append(vectors.astype(np.float16))  # as the snapshot keeps them
            done += len(ids)
            progress("index", done, total)
        if all_keys:
            writer.write_buckets(np.concatenate(all_keys), np.concatenate(all_ids), merge=not plan.refit)
        if keep_graph:
            new_ids, new_vectors = np.concatenate(all_ids), np.concatenate(all_vectors)
            if previous is None or plan.refit:
                graph = next_graph(None, new_ids[:0], new_vectors[:0], new_ids, new_vectors)
            else:  # images encoded again keep no old node in a rebuilt graph
                kept = ~np.isin(previous.ids, plan.recode)
                graph = next_graph(previous.graph, previous.ids[kept], previous.vectors[kept], new_ids, new_vectors)
            writer.write_graph(graph)


def _graph_needs_work(snapshot: IndexSnapshot | None, keep_graph: bool) -> bool:
    """Whether an update that adds nothing must still (re)build the graph: a catalogue indexed
    before it kept one, or one that many removals left stale."""
    return keep_graph and snapshot is not None and (snapshot.graph is None or snapshot.graph.needs_rebuild(snapshot.ids))


# --- what a run encodes ------------------------------------------------------------------------


def _labels(config: EngineConfig, labels: list[str | None]) -> np.ndarray | None:
    if not config.folder_labels:
        return None
    names = [label or "" for label in labels]
    return np.unique(names, return_inverse=True)[1] if len(set(names)) >= 2 else None


def _refit_plan(writer: CatalogueWriter, config: EngineConfig, embedded: int, *, provisional: bool) -> _Plan:
    """Fit on a sample drawn by the store (path order, fixed seed: see `sample_positions`), encode everything."""
    sample = writer.fit_sample(config.fit_sample, config.seed)
    labels = _labels(config, sample.labels)
    log.info("fitting the %s hash layer on %d of %d images (%s)", config.hash_variant, len(sample.ids), embedded, config.vectors)
    if config.vectors == "embeddings":
        fitted = fit_index(sample.embeddings, config, labels=labels, count=embedded, provisional=provisional)
        return _Plan(fitted, True, None, np.empty(0, np.int64), lambda: writer.iter_embeddings(None))
    centre = reference_centre(writer.identity().model_sha256)
    if centre is None:  # a model without a calibration: centred on this catalogue, as before
        centre = sample.embeddings.mean(axis=0)
    table = prepared_table(writer, centre)
    lists = build_lists(table, config.augment_k, exact_below=config.exact_below)
    chunks = _augmented_chunks(table, lists, table.ids, config.augment_k, config.augment_alpha)
    vectors = augmented(table, lists, sample.ids, k=config.augment_k, alpha=config.augment_alpha)
    fitted = fit_index(vectors, config, labels=labels, count=embedded, provisional=provisional, centre=centre)
    return _Plan(fitted, True, None, np.empty(0, np.int64), chunks, lists, replace_lists=True)


def _update_plan(
    writer: CatalogueWriter, config: EngineConfig, fitted: FittedIndex, lists: NeighbourLists | None, search: Searcher | None
) -> _Plan:
    """Keep the fit: encode the new images, and (augmented) every image whose neighbour list they changed."""
    pending = writer.uncoded_ids()
    if not fitted.augmented or lists is None:
        return _Plan(fitted, False, pending, np.empty(0, np.int64), lambda: writer.iter_embeddings(pending.tolist()))
    assert fitted.centre is not None
    k, alpha = int(fitted.settings.get("augment_k", config.augment_k)), float(fitted.settings.get("augment_alpha", config.augment_alpha))
    table: VectorTable | StoredVectors
    candidates, scored = None, None
    if search is not None and len(embedded := writer.embedded_ids()) >= config.exact_below:
        if len(pending) > RELIST_ABOVE:
            table = prepared_table(writer, fitted.centre)
            relisted = build_lists(table, k, exact_below=config.exact_below)
            return _Plan(fitted, False, table.ids, np.setdiff1d(table.ids, pending), _augmented_chunks(table, relisted, table.ids, k, alpha),
                         relisted, replace_lists=True)
        # the catalogue's search names the candidates: only theirs and the changed lists' vectors are read
        candidates, scored = _own_search(search), _scored(search)
        # a search that names candidates without their cosines needs most vectors: then they are read in one pass
        read_all = None if scored is not None else (lambda: writer.iter_embeddings(None))
        table = StoredVectors(embedded, writer.embedding_matrix, fitted.centre, read_all=read_all)
    else:  # the exact search compares every image
        table = prepared_table(writer, fitted.centre)
    new_lists, changed = update_lists(lists, table, pending, candidates=candidates, scored=scored)
    if isinstance(table, StoredVectors):
        log.info("the update read %d of %d prepared vectors", table.read_count, len(table))
    if not len(changed):
        return _Plan(fitted, False, changed, changed, lambda: iter(()))
    log.info("%d new images changed the neighbour lists of %d images", len(pending), len(changed) - len(pending))
    return _Plan(fitted, False, changed, np.setdiff1d(changed, pending), _augmented_chunks(table, new_lists, changed, k, alpha),
                 new_lists.select(changed))


def _augmented_chunks(
    table: VectorTable | StoredVectors, lists: NeighbourLists, ids: np.ndarray, k: int, alpha: float, chunk: int = 8192
) -> Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]:
    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            yield part, augmented(table, lists, part, k=k, alpha=alpha)

    return chunks


def _own_search(searcher: Searcher) -> Callable[[np.ndarray, int], np.ndarray]:
    """The catalogue's own search (graph, LSH or the server's) as a candidate source for neighbour lists."""
    fitted = searcher.fitted

    def candidates(vectors: np.ndarray, depth: int) -> np.ndarray:
        codes, reduced = fitted.codes(vectors), fitted.vectors(vectors)
        out = np.full((len(vectors), depth), -1, np.int64)
        for i in range(len(vectors)):
            found = searcher.search(codes[i], reduced[i], depth).ids[:depth]
            out[i, : len(found)] = found
        return out

    return candidates


def _scored(searcher: Searcher) -> ScoredFn | None:
    """The search of a store that scores candidates where the embeddings are (a team catalogue's server), or None."""
    score = getattr(searcher, "scored_candidates", None)
    if score is None:
        return None
    fitted = searcher.fitted

    def scored(vectors: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        return score(vectors, fitted.vectors(vectors), depth)

    return scored


def reference_centre(model_sha256: str | None) -> np.ndarray | None:
    """The fixed centre of the model's calibration (None for a model shipped without one)."""
    calibration = shipped_calibration(model_sha256)
    return None if calibration is None or calibration.ranking_mean is None else calibration.ranking_mean
