"""The HNSW graph candidate stage: held against exact search and LSH, kept right through updates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from helpers import build_pattern_catalogue, make_pattern_images
from swimsearch.catalogue import Catalogue
from swimsearch.graph import STALE_SHARE, VectorGraph
from swimsearch.search import SearchEngine
from swimsearch.searchers import ExactSearch, GraphSearch, LshSearch, choose_searcher

pytest.importorskip("faiss")


@pytest.fixture
def graph_config(small_config):
    """Small catalogues keep a graph and search it (the defaults do so from 20,000 images)."""
    return small_config.with_changes(graph_from=0, exact_below=0, graph_candidates=60, graph_effort=64)


@pytest.fixture
def graph_catalogue(tmp_path, fake_embedder, graph_config):
    # 50 designs in 8 variants each
    return build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, graph_config, 400, family=8)


def agreement(snap, searcher, rows) -> tuple[float, int]:
    """Mean top-10 overlap with exact search, and how often the searcher finds the exact best (or one as good:
    augmented vectors of one family's variants are nearly equal) with the query image near the top."""
    exact = ExactSearch(snap)
    vectors = snap.vectors.astype(np.float32)
    overlap, first = [], 0
    for row in rows:
        want = exact.search(snap.codes[row], vectors[row], 10)
        got = searcher.search(snap.codes[row], vectors[row], 10)
        overlap.append(len(set(want.ids) & set(got.ids)) / 10)
        # the query among the 8 variants of its design at the top (exact search puts it 6th at times)
        first += int(got.similarities[0] >= want.similarities[0] - 1e-3 and snap.ids[row] in got.ids[:8])
    return float(np.mean(overlap)), first


def test_graph_exact_and_lsh_agree_on_top_results(graph_catalogue, graph_config):
    _, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
    assert snap.graph is not None and sorted(snap.graph.ids) == sorted(snap.ids)
    graph = choose_searcher(snap, graph_config)
    assert isinstance(graph, GraphSearch)
    rows = range(0, len(snap), 4)
    overlap, first = agreement(snap, graph, rows)
    assert overlap >= 0.95 and first == len(rows)
    lsh_overlap, _ = agreement(snap, LshSearch(snap, rerank_depth=100, probe_radius=2), rows)
    assert overlap >= lsh_overlap - 0.02  # the graph is at least as good as the probe it replaces
    ranking = graph.search(snap.codes[0], snap.vectors[0].astype(np.float32), 10)
    assert ranking.method == "graph" and ranking.candidates < len(snap)  # it did not look at everything


def test_the_engine_searches_the_graph_above_the_exact_limit(graph_catalogue, fake_embedder, graph_config):
    folder, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        exact = SearchEngine(catalogue, fake_embedder, graph_config.with_changes(exact_below=10**9))
        graph = SearchEngine(catalogue, fake_embedder, graph_config)
        assert (exact.searcher_name, graph.searcher_name) == ("ExactSearch", "GraphSearch")
        for n in (3, 77, 250):
            a, b = exact.search(folder / f"img{n:04d}.png", top_n=5), graph.search(folder / f"img{n:04d}.png", top_n=5)
            assert b.method == "graph" and b.matches[0].relpath == f"img{n:04d}.png" and b.matches[0].score == 1.0
            assert [m.relpath for m in a.matches] == [m.relpath for m in b.matches]


def test_the_graph_stays_right_through_updates(graph_catalogue, fake_embedder, graph_config):
    folder, path = graph_catalogue
    gone = [folder / f"img{n:04d}.png" for n in range(0, 400, 10)]  # 40 removed
    for p in gone:
        p.unlink()
    make_pattern_images(folder, 24, start=1000, family=8)  # 24 added
    with Catalogue.open(path) as catalogue:
        report = catalogue.update(fake_embedder, graph_config)
        assert (report.added, report.removed, report.refitted) == (24, 40, False)
        snap = catalogue.load_snapshot()
        removed_ids = set(snap.graph.ids.tolist()) - set(snap.ids.tolist())
        searcher = choose_searcher(snap, graph_config)
        assert isinstance(searcher, GraphSearch) and len(searcher.uncovered) == 0  # new images were inserted
        assert len(removed_ids) == 40  # removed images stay as nodes, skipped
        rows = np.arange(len(snap))
        overlap, first = agreement(snap, searcher, rows)
        assert overlap >= 0.95 and first == len(rows)
        for row in rows:
            got = searcher.search(snap.codes[row], snap.vectors[row].astype(np.float32), 10)
            assert not removed_ids & set(got.ids.tolist())
        engine = SearchEngine(catalogue, fake_embedder, graph_config)
        new = engine.search(folder / "img1005.png", top_n=3)
        assert new.method == "graph" and new.matches[0].relpath == "img1005.png"
        assert all(m.relpath not in {p.name for p in gone} for m in engine.search(folder / "img0011.png", top_n=20).matches)


def test_many_removals_rebuild_the_graph(graph_catalogue, fake_embedder, graph_config):
    folder, path = graph_catalogue
    files = sorted(folder.glob("*.png"))
    for p in files[: int(len(files) * (STALE_SHARE + 0.05))]:
        p.unlink()
    with Catalogue.open(path) as catalogue:
        catalogue.update(fake_embedder, graph_config)
        snap = catalogue.load_snapshot()
    assert sorted(snap.graph.ids.tolist()) == snap.ids.tolist()  # rebuilt: no node of a removed image


def test_images_a_graph_does_not_cover_are_scanned_beside_it(graph_catalogue, fake_embedder, graph_config):
    """A writer that kept no graph for an update (or an older version) loses no image."""
    folder, path = graph_catalogue
    make_pattern_images(folder, 16, start=2000, family=8)
    with Catalogue.open(path) as catalogue:
        catalogue.update(fake_embedder, graph_config.with_changes(graph_from=10**9))  # leaves the graph as it was
        snap = catalogue.load_snapshot()
        searcher = choose_searcher(snap, graph_config)
        assert isinstance(searcher, GraphSearch) and len(searcher.uncovered) == 16
        engine = SearchEngine(catalogue, fake_embedder, graph_config)
        assert engine.search(folder / "img2003.png", top_n=3).matches[0].relpath == "img2003.png"
        overlap, first = agreement(snap, searcher, range(len(snap)))
        assert overlap >= 0.95 and first == len(snap)


def test_a_stored_graph_comes_back_the_same(graph_catalogue, graph_config):
    _, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
    again = VectorGraph.from_parts(snap.graph.parts(part_bytes=4096), snap.graph.ids)  # many small parts
    vectors = snap.vectors.astype(np.float32)
    for row in range(0, len(snap), 37):
        assert (again.search(vectors[row], 10, 64) == snap.graph.search(vectors[row], 10, 64)).all()


def test_a_new_fit_or_too_few_images_drop_the_graph(graph_catalogue, fake_embedder, graph_config):
    from swimsearch.build import refit_catalogue

    folder, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        refit_catalogue(catalogue.writer(), graph_config.with_changes(graph_from=10**9, bits=128))
        assert catalogue.load_snapshot().graph is None  # a new fit makes the old graph's vectors stale
        refit_catalogue(catalogue.writer(), graph_config)
        assert len(catalogue.load_snapshot().graph) == 400


def test_a_catalogue_indexed_without_a_graph_gets_one_on_its_next_update(tmp_path, fake_embedder, graph_config):
    folder, path = build_pattern_catalogue(
        tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, graph_config.with_changes(graph_from=10**9), 60
    )
    with Catalogue.open(path) as catalogue:
        assert catalogue.load_snapshot().graph is None
        report = catalogue.update(fake_embedder, graph_config)  # nothing changed in the folder
        assert report.added == 0 and not report.refitted
        assert sorted(catalogue.load_snapshot().graph.ids.tolist()) == list(range(1, 61))


def test_buckets_left_unread_under_a_graph_are_the_stored_ones(graph_catalogue, graph_config):
    _, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
        assert snap.tables is None  # the graph covers every image: the bucket rows were not read
        made = snap.lsh_tables()  # made from the codes
        rows = catalogue.store.file.conn.execute(
            "SELECT table_no, bucket_key, length(ids) / 8 FROM buckets ORDER BY table_no, bucket_key"
        ).fetchall()
        assert isinstance(choose_searcher(dataclasses.replace(snap, graph=None), graph_config), LshSearch)
    sizes = np.diff(made.table.offsets)
    assert len(rows) == len(made.table.keys) and [r[2] for r in rows] == sizes.tolist()
    key_bits = snap.fitted.positions.shape[1]
    assert [(t << key_bits) | k for t, k, _ in rows] == made.table.keys.tolist()


def test_a_removed_image_and_a_new_one_are_told_apart_in_the_graph(graph_catalogue, fake_embedder, graph_config):
    folder, path = graph_catalogue
    (folder / "img0399.png").unlink()  # the highest id (kept as a tombstone since catalogue format 2)
    make_pattern_images(folder, 1, start=5000, family=1)
    with Catalogue.open(path) as catalogue:
        catalogue.update(fake_embedder, graph_config)
        snap = catalogue.load_snapshot()
        # the removed image's node stays, skipped; the new picture's node, and a new node for each image whose
        # neighbour list it entered (its augmented vector changed; the old node is stale)
        assert len(snap) == 400 and len(set(snap.graph.ids.tolist())) == 401
        assert 401 < len(snap.graph) <= 402 + 2 * graph_config.augment_k
        engine = SearchEngine(catalogue, fake_embedder, graph_config)
        result = engine.search(folder / "img5000.png", top_n=10)
        names = [m.relpath for m in result.matches]
        assert names[0] == "img5000.png" and len(set(names)) == len(names) and "img0399.png" not in names


def test_a_picture_changed_in_place_is_found_once_with_its_new_content(graph_catalogue, fake_embedder, graph_config):
    folder, path = graph_catalogue
    # img0003 takes the picture of a design from another family: same file name, new content
    make_pattern_images(tmp := folder / "new", 1, start=7000, family=1)
    (tmp / "img7000.png").replace(folder / "img0003.png")
    tmp.rmdir()
    with Catalogue.open(path) as catalogue:
        report = catalogue.update(fake_embedder, graph_config)
        assert report.updated == 1
        snap = catalogue.load_snapshot()
        assert len(snap) == 400 and isinstance(choose_searcher(snap, graph_config), GraphSearch)
        result = SearchEngine(catalogue, fake_embedder, graph_config).search(folder / "img0003.png", top_n=10)
    names = [m.relpath for m in result.matches]
    assert names[0] == "img0003.png" and result.matches[0].score > 0.999 and len(set(names)) == len(names)


def _neighbour_out_of_range(path, value: int) -> None:
    """Write a neighbour id into the stored graph and recompute its checksum, as a crafted file would."""
    import sqlite3
    import struct
    from contextlib import closing

    from crafted_catalogues import _graph_layout
    from swimsearch.stores.sqlite_schema import array_crc

    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        name, dtype, shape, data = conn.execute(
            "SELECT name, dtype, shape, data FROM arrays WHERE name = 'graph.part.00000'"
        ).fetchone()
        data = bytearray(data)
        start, n = _graph_layout(bytes(data))["neighbours"]
        struct.pack_into("<i", data, start + 4 * (n // 2), value)
        conn.execute("UPDATE arrays SET data = ?, crc = ? WHERE name = ?", (bytes(data), array_crc(dtype, shape, bytes(data)), name))


@pytest.mark.parametrize("value", [400, 2**31 - 1, -7])
def test_a_crafted_graph_naming_a_node_it_does_not_have_is_refused_in_one_sentence(graph_catalogue, value):
    """FAISS would follow such a neighbour outside its memory during a search: it must never be read."""
    from swimsearch.errors import DamagedCatalogue

    _, path = graph_catalogue
    _neighbour_out_of_range(path, value)
    with Catalogue.open(path) as catalogue:
        with pytest.raises(DamagedCatalogue, match=r"is damaged \(its search graph names neighbours that are not among its nodes\)"):
            catalogue.load_snapshot()


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def test_a_graph_read_in_one_checked_pass_over_odd_parts_is_the_stored_one(graph_catalogue):
    """Parts of a prime size split neighbour ids across parts: the checked stream hands FAISS every byte unchanged."""
    from swimsearch.graph_check import checked_parts

    _, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
    data = b"".join(snap.graph.parts())
    again = VectorGraph.from_parts(checked_parts(_split(data, 4093), len(snap.graph), snap.vectors.shape[1]), snap.graph.ids)
    vectors = snap.vectors.astype(np.float32)
    for row in range(0, len(snap), 37):
        assert (again.search(vectors[row], 10, 64) == snap.graph.search(vectors[row], 10, 64)).all()


@pytest.mark.parametrize("cut", [0, 1, 2, 3])
def test_a_bad_neighbour_across_a_part_boundary_never_reaches_faiss(graph_catalogue, cut):
    """A neighbour id split over two parts is checked whole, and no byte from its chunk on is handed on before the refusal."""
    import struct

    from crafted_catalogues import _graph_layout
    from swimsearch.graph_check import GraphDamage, checked_parts

    _, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
    data = bytearray(b"".join(snap.graph.parts()))
    start, n = _graph_layout(bytes(data))["neighbours"]
    at = start + 4 * (n // 2)
    struct.pack_into("<i", data, at, len(snap.graph) + 5)
    parts = [bytes(data[: at + cut]), bytes(data[at + cut :])]
    handed = 0
    with pytest.raises(GraphDamage, match="names neighbours that are not among its nodes"):
        for piece in checked_parts(parts, len(snap.graph), snap.vectors.shape[1]):
            handed += len(piece)
    assert handed <= at
    with pytest.raises(GraphDamage, match="names neighbours"):  # and through FAISS's reader, as raised
        VectorGraph.from_parts(checked_parts(parts, len(snap.graph), snap.vectors.shape[1]), snap.graph.ids)


def test_bytes_past_a_stored_graph_are_refused_after_faiss_has_read_it(graph_catalogue):
    from swimsearch.graph_check import GraphDamage, checked_parts

    _, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
    parts = [*snap.graph.parts(), b"\0"]
    with pytest.raises(GraphDamage, match="goes on past its end"):
        VectorGraph.from_parts(checked_parts(parts, len(snap.graph), snap.vectors.shape[1]), snap.graph.ids)


def test_many_candidates_come_from_a_narrow_walk_with_the_same_best_ones(graph_catalogue, graph_config):
    """The pipeline asks each search for 200 candidates; the walk is not made 200 wide for it (that cost
    2-4x for the same top 10 at 100,000 images): it hands on the best of the nodes it saw, the best of
    them those a wide walk finds; the app's width grows with the candidates asked (the page of 50)."""
    _, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
    narrow = GraphSearch(snap, candidates=0, effort=16)
    wide = GraphSearch(snap, candidates=0, effort=200)
    app = choose_searcher(snap, graph_config.with_changes(graph_effort=16, graph_effort_share=0.64))
    assert isinstance(app, GraphSearch)
    vectors = snap.vectors.astype(np.float32)
    overlap, seen = [], []
    for row in range(0, len(snap), 8):
        got = narrow.search(snap.codes[row], vectors[row], 200)
        want = wide.search(snap.codes[row], vectors[row], 200)
        assert 40 <= len(got.ids) == len(set(got.ids.tolist()))  # each once, fewer than asked: what it saw
        overlap.append(len(set(got.ids[:10].tolist()) & set(want.ids[:10].tolist())) / 10)
        seen.append((len(got.ids), len(app.search(snap.codes[row], vectors[row], 200).ids)))
    assert np.mean(overlap) >= 0.95
    assert all(wider > narrower for narrower, wider in seen)  # a 128-wide walk for 200, not 16 wide


def test_query_expansion_ranks_the_first_walks_nodes_again_instead_of_walking(graph_catalogue, fake_embedder, graph_config):
    """A top 10 walks the graph once a query row: expansion's later searches rank the nodes that walk found by
    the expanded query (at 1M two more walks added ~3 of ~200 candidates and no list changed, for 0.6-0.8 ms);
    a longer list walks again in the last round; `graph_walk_again` walks every time, as before."""
    folder, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        engines = {again: SearchEngine(catalogue, fake_embedder, graph_config.with_changes(graph_walk_again=again))
                   for again in (False, True)}
        walks = {False: 0, True: 0}
        for again, engine in engines.items():
            graph = engine._searcher.graph
            walk = graph.search_nodes

            def counted(*args, again=again, walk=walk):
                walks[again] += 1
                return walk(*args)

            graph.search_nodes = counted
        for n in (5, 120, 333):
            picture = folder / f"img{n:04d}.png"
            new, old = (engines[again].search(picture, top_n=10) for again in (False, True))
            assert new.method == "graph" and new.matches[0].relpath == f"img{n:04d}.png" and new.matches[0].score == 1.0
            assert len({m.image_id for m in new.matches} & {m.image_id for m in old.matches}) >= 9
        assert graph_config.expand_rounds > 0 and walks[False] >= 3  # one walk a query row
        assert walks[True] == (graph_config.expand_rounds + 1) * walks[False]
        # The window's 200: the last round walks again (ranking the first walk's 230 again held 0.81 of the
        # exact path's 200 at 40,000 photos), the rounds before rank again.
        walks.update({False: 0, True: 0})
        new, old = (engines[again].search(folder / "img0042.png", top_n=200) for again in (False, True))
        assert walks[False] * (graph_config.expand_rounds + 1) == walks[True] * 2
        assert len({m.image_id for m in new.matches} & {m.image_id for m in old.matches}) >= 0.95 * len(old.matches)

    snap = engines[False]._searcher.snapshot
    searcher = engines[False]._searcher
    vectors = snap.vectors.astype(np.float32)
    first = searcher.search(snap.codes[0], vectors[0], 60)
    again = searcher.search_near(first, vectors[7], 20)
    sims = searcher.vectors(first.ids) @ vectors[7]
    assert set(again.ids.tolist()) <= set(first.ids.tolist()) and len(again.ids) == 20
    assert np.array_equal(again.similarities, np.sort(sims)[::-1][:20]) and again.candidates == first.candidates


def test_a_graph_searcher_is_freed_with_its_last_reference(graph_catalogue):
    """No cycle holds a searcher (its snapshot and graph: hundreds of MB at 1M) after the engine lets it go."""
    import gc
    import weakref

    _, path = graph_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
    searcher = GraphSearch(snap, candidates=10, effort=32, walk_again=False)
    gone = weakref.ref(searcher)
    gc.disable()
    try:
        del searcher
        assert gone() is None
    finally:
        gc.enable()
