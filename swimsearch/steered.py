"""The steered search (issue 12): several examples, "not like this", folders and decisions, around ranking.py's steps.

`rank_steered` is `SearchEngine.search_examples`' ranking. One example with
nothing unliked, no folder and no ranking adapted to decisions runs
ranking.py's `find_candidates` as the plain search does; otherwise the
candidates come from the steered query (rocchio.py, narrow.py), ranked by
it, the examples first and the unliked ones out. Either way
`score_and_order` gives the scores a user reads (against the nearest
example) and the bands, then a person's decisions pin "same design" next
to the examples and send "not similar" to the end (decisions.py).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from .augment import unit_rows
from .decisions import Adapter, among, arrange, tiers as decision_tiers
from .narrow import narrowed_ids, steered_candidates
from .phash_index import UNKNOWN
from .colour import COLOUR_POOL
from .ranking import IDENTICAL, RESCORE_MARGIN, Candidates, Steer, find_candidates, score_and_order, shown_at_least
from .rocchio import Steering
from .searchers import Searcher
from .spherical import spherical_hamming
from .stores.verdicts import SAME

log = logging.getLogger(__name__)

def rank_steered(
    engine: Any, searcher: Searcher, steering: Steering, top_n: int, min_score: float, colour: Any = None
) -> tuple[tuple[Any, ...], Candidates]:
    """The matches of a steered search (the engine's `Match`es, in order) and its candidates.

    `colour` (steering.ColourSteer) steers both ranking steps; the hue turns of
    *ignore colour* join a one-example search only (a combined query has none).
    """
    like_ids, unlike_ids = set(steering.like_ids), set(steering.unlike_ids)
    verdicts = engine.decisions.verdicts(like_ids)
    stored_as = np.dtype(engine._identity.embedding_dtype)
    # Round the query as the catalogue stores embeddings, so that a
    # byte-identical copy scores exactly as high as the stored original.
    rows = [np.asarray(e.embeddings).astype(stored_as).astype(np.float32) for e in steering.like]
    queries = rows[0] if len(rows) == 1 else np.concatenate(rows)
    mirror_row = np.concatenate([np.arange(len(r)) == 1 for r in rows])
    row_example = np.concatenate([np.full(len(r), n) for n, r in enumerate(rows)])  # colour's extra rows: the first example
    first = steering.like[0]
    one_picture = len(steering.like) == 1 and not steering.unlike and not steering.folders
    adapter = engine.decisions.adapter
    pool = top_n
    if colour is not None:
        queries = colour.rows(queries, turns=len(steering.like) == 1)
        mirror_row = np.concatenate([mirror_row, np.zeros(len(queries) - len(mirror_row), bool)])
        pool = max(top_n, COLOUR_POOL - RESCORE_MARGIN) if colour.mix.match else top_n  # colour re-ranks at least COLOUR_POOL
    if one_picture:
        found = find_candidates(searcher, engine._data, queries, engine.config, top_n=pool, phash=first.phash,
                                phash_index=engine._phash_table, query_id=first.image_id, steer=colour)
        if adapter is not None:
            found = _adapted(engine, found, adapter)
    else:
        found = _steered_candidates(engine, searcher, steering, pool, colour)
    pinned = [i for i, v in verdicts.items() if v == SAME and not _holds(np.sort(found.ids), i) and _holds(searcher.ids, i)]
    if pinned:  # a design marked "same" always takes part, however the search ranked it
        n = len(pinned)
        found = Candidates(np.concatenate([found.ids, pinned]).astype(np.int64), np.concatenate([found.ranking, np.full(n, -9.0)]),
                           np.concatenate([found.cosine, np.zeros(n)]), np.concatenate([found.variant, np.zeros(n, np.int64)]),
                           found.method, found.looked_at)
    # several examples or "not like this" read by their steered ranking: the best-scored match is not lifted (best_scored.py)
    config = engine.config if one_picture else engine.config.with_changes(best_scored_within=0)
    scored = score_and_order(
        found, engine._data, queries, engine._calibration, config, top_n=top_n, min_score=-1.0,
        phash=first.phash, phashes=engine._phashes_of, query_id=first.image_id, steer=colour,
        exact_ids=np.array(sorted(like_ids | set(verdicts)), np.int64),
        looks_same=engine.picture_check.looks_same(steering.like, row_example) if engine.calibrated else None,
    )
    scored.scores[among(scored.ids, like_ids)] = 1.0  # every example itself: exactly 100 %
    tiers = decision_tiers(scored.ids, like_ids, verdicts)
    head = np.flatnonzero(shown_at_least(scored.scores, min_score) | (tiers < 2))  # on the percent shown, as the window
    # Several examples are no results of their own: the top_n are new designs, and the examples follow
    # them, in the order they were given (a designer who searched with 200 wants 50 new ones, not the 200).
    several = len(steering.like) > 1
    examples = [i for i in head if tiers[i] == 0] if several else []
    if several:
        head = head[tiers[head] > 0]
        given = {image_id: n for n, image_id in enumerate(steering.like_ids)}
        examples.sort(key=lambda i: given.get(int(scored.ids[i]), 0))
    head = head[tiers[head].argsort(kind="stable")][: top_n + 10 + len(verdicts)]
    id_of = scored.ids.tolist()  # plain ints: read a few times each of the list's 20
    records = engine._data.records([id_of[i] for i in head.tolist() + examples])
    head = head[[id_of[i] in records for i in head.tolist()]]  # a record removed meanwhile
    # Ties (copies of one file) are ordered by path, so the order does not
    # depend on the order in which files were added.
    # A steered list reads by the steered ranking (bands would undo "not like this"); a plain one as ranking.py orders it.
    keys = scored.keys if one_picture else scored.keys[:, 3:]
    tier_of, key_of = tiers.tolist(), keys.tolist()
    ordered = sorted(head.tolist(), key=lambda i: (tier_of[i], *key_of[i], records[id_of[i]].relpath))
    shown_examples = [i for i in examples if id_of[i] in records]
    head = np.asarray(arrange(ordered, lambda i: verdicts.get(id_of[i]), top_n) + shown_examples, dtype=np.int64)
    prepared = found.prepared if found.prepared is not None else searcher.fitted.prepare(queries)  # the same rows
    codes = searcher.fitted.codes(prepared)
    distances = np.full(len(head), np.inf, dtype=np.float32)
    for v in range(len(codes)):
        chosen = scored.variant[head] == v
        if chosen.any():
            distances[chosen] = spherical_hamming(codes[v], searcher.codes(scored.ids[head[chosen]]))
    phash_distances = scored.phash_distances.tolist()  # the ranking's: a flat picture's pHash says nothing, and
    matches = tuple(  # a byte-identical copy is one whatever its pHash says
        engine._match(rank, records[id_of[i]], float(scored.scores[i]), scored.bands[i], float(distance),
                      None if phash_distances[i] >= UNKNOWN else int(phash_distances[i]), bool(mirror_row[scored.variant[i]]),
                      verdicts.get(id_of[i]))
        for rank, (i, distance) in enumerate(zip(head, distances), start=1)
    )
    return matches, found


def _adapted(engine: Any, found: Candidates, adapter: Adapter) -> Candidates:
    """The plain search's candidates, each ranked by its adapted cosine with the query (adaptation.py).

    The plain ranking is the cosine of the expanded query with each
    candidate's augmented vector (lifted for the best); the adapted one
    compares both in the decisions' metric, a decided candidate moved towards
    its *same design* partners. Each candidate's ranking moves by what that
    changes in its cosine, so bands, lifts and the query itself stay where
    they are, and no adaptation is exactly the plain search. Ranking by a
    metric on the raw embeddings instead (before this) lost issue 11's
    ranking: 200 true decisions x0.973 of the plain search one way, x0.997
    nudged (bench_steering.py).
    """
    movable = np.isfinite(found.ranking) & (found.ranking < IDENTICAL)
    if found.query is None or not movable.any():
        return found
    ids = found.ids[movable]
    vectors = engine._data.augmented(ids).astype(np.float64)
    queries = np.asarray(found.query, np.float64)
    variant = found.variant[movable]
    plain = np.einsum("md,md->m", unit_rows(vectors), unit_rows(queries)[variant])
    adapted = np.einsum("md,md->m", adapter.candidates(ids, vectors), adapter.query(queries)[variant])
    ranking = found.ranking.copy()
    ranking[movable] += adapted - plain
    return replace(found, ranking=ranking)



def _steered_candidates(engine: Any, searcher: Searcher, steering: Steering, top_n: int, colour: Steer | None = None) -> Candidates:
    """Candidates ranked by the steered query (rocchio.py): in its folders, the examples first, unliked ones out."""
    like_ids, unlike_ids = set(steering.like_ids), set(steering.unlike_ids)
    allowed = narrowed_ids(searcher, engine.reader.ids_in_folders(steering.folders)) if steering.folders else None
    wanted = min(len(searcher), top_n + RESCORE_MARGIN)
    # The decisions' metric lives in the ranking's augmented space (adaptation.py); a steered query is
    # scored on centred embeddings, so it is not adapted (its pins and demotions still apply).
    space = (np.dtype(engine._identity.embedding_dtype), None)
    _, prepare, queries, _, rankings = steered_candidates(searcher, steering, wanted, allowed, *space)
    ids = np.unique(np.concatenate([r.ids for r in rankings]))
    # The examples always take part (looked up only when the searcher missed them).
    forced = [i for i in like_ids if not _holds(ids, i)]
    if forced:
        pool = searcher.ids if allowed is None else allowed
        ids = np.union1d(ids, [i for i in forced if _holds(pool, i)])
    stored = engine._data.embedding_matrix(np.setdiff1d(ids, list(unlike_ids)).astype(np.int64).tolist())
    sims = np.clip(prepare(stored.vectors) @ queries.T, -1.0, 1.0)  # (candidates, variants)
    steered, variant = (None, sims.argmax(axis=1)) if colour is None else colour.blend(stored.ids, sims, 1.0)
    cosine = sims[np.arange(len(stored.ids)), variant].astype(np.float64)
    ranking = np.where(among(stored.ids, like_ids), np.inf, cosine if steered is None else steered)  # the examples first
    return Candidates(np.asarray(stored.ids, np.int64), ranking, cosine, variant, rankings[0].method, rankings[0].candidates)


def _holds(sorted_ids: np.ndarray, image_id: int) -> bool:
    at = int(np.searchsorted(sorted_ids, image_id))
    return at < len(sorted_ids) and int(sorted_ids[at]) == image_id
