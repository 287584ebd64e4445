"""Ranked search: LSH against exact, scores a user can trust, transformed copies found.

The tests on real photos run on both stores: the session's photo catalogue,
and a team catalogue copied from it (same embeddings, same fit).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from helpers import DATA, build_pattern_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.errors import CatalogueError
from swimsearch.images import ImageError
from swimsearch.export import percent
from swimsearch.search import SearchEngine
from swimsearch.searchers import ExactSearch, LshSearch


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def photos(request, photo_catalogue):
    """(folder, catalogue): the real-model photo catalogue as a file, or copied into a team catalogue."""
    folder, path = photo_catalogue
    if request.param == "sqlite":
        return folder, path
    from swimsearch.copying import copy_catalogue

    team = request.getfixturevalue("pg_module_database").url() + "&catalogue=photos"
    with Catalogue.open(path) as source, Catalogue.create(team, folder) as target:
        copy_catalogue(source, target.writer())
    return folder, team


@pytest.fixture
def pattern_catalogue(tmp_path, fake_embedder, small_config):
    # 50 designs in 8 variants each
    return build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 400, family=8)


def test_lsh_and_exact_search_agree_on_top_results(pattern_catalogue, fake_embedder, small_config):
    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
        exact = ExactSearch(snap)
        lsh = LshSearch(snap, rerank_depth=100, probe_radius=2)
        vectors = snap.vectors.astype(np.float32)
        overlap, same_first, methods = [], 0, set()
        for row in range(0, len(snap), 4):
            want = exact.search(snap.codes[row], vectors[row], 10)
            got = lsh.search(snap.codes[row], vectors[row], 10)
            methods.add(got.method)
            overlap.append(len(set(want.ids) & set(got.ids)) / 10)
            # augmented vectors of one family's variants are nearly equal (cosine 0.9997 in float16),
            # so "first" is the exact best or one as good, with the image itself near the top
            same_first += int(got.similarities[0] >= want.similarities[0] - 1e-3 and snap.ids[row] in got.ids[:5])
    assert "lsh" in methods  # buckets really were probed
    assert np.mean(overlap) >= 0.9
    assert same_first == len(overlap)


def test_thin_buckets_fall_back_to_scanning_every_code(pattern_catalogue, fake_embedder, small_config):
    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        snap = catalogue.load_snapshot()
    lsh = LshSearch(snap, rerank_depth=len(snap), probe_radius=0)  # asks for more than one bucket holds
    ranking = lsh.search(snap.codes[0], snap.vectors[0].astype(np.float32), 5)
    assert ranking.method == "scan" and ranking.candidates == len(snap) and ranking.ids[0] == snap.ids[0]


def test_engine_paths_agree_through_the_public_api(pattern_catalogue, fake_embedder, small_config):
    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        exact = SearchEngine(catalogue, fake_embedder, small_config)
        lsh = SearchEngine(catalogue, fake_embedder, small_config.with_changes(exact_below=0))
        assert exact.searcher_name == "ExactSearch" and lsh.searcher_name == "LshSearch"
        for n in (3, 77, 250):
            a = exact.search(folder / f"img{n:04d}.png", top_n=5)
            b = lsh.search(folder / f"img{n:04d}.png", top_n=5)
            assert a.method == "exact" and b.method in ("lsh", "scan")
            assert a.matches[0].relpath == b.matches[0].relpath == f"img{n:04d}.png"
            assert len({m.relpath for m in a.matches} & {m.relpath for m in b.matches}) >= 4


def test_results_are_ranked_filtered_and_cut(pattern_catalogue, fake_embedder, small_config):
    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        result = engine.search(folder / "img0010.png", top_n=20)
        scores = [m.score for m in result.matches]
        assert len(scores) == 20 and [m.rank for m in result.matches] == list(range(1, 21))
        assert result.query_image_id == result.matches[0].image_id and scores[0] == 1.0
        # pHash duplicates first; the fake model has no calibration, so no bands: a match shows the cosine of
        # the two pictures' embeddings, and the list reads by it (the ranking chose the candidates)
        dup = [m.duplicate for m in result.matches]
        assert dup == sorted(dup, reverse=True) and any(dup[1:]) and not all(dup)
        rest = [m.score for m in result.matches if not m.duplicate]
        assert rest == sorted(rest, reverse=True)
        # the minimum is on the whole percent shown (as the window's control): a match shown at it is kept
        cut = percent(sorted(scores, reverse=True)[7])
        filtered = engine.search(folder / "img0010.png", top_n=20, min_score=cut / 100)
        kept = [m.relpath for m in result.matches if percent(m.score) >= cut]
        assert all(percent(m.score) >= cut for m in filtered.matches)
        assert [m.relpath for m in filtered.matches][: len(kept)] == kept  # the same order, less those below


def test_search_by_id_and_random_need_no_model(pattern_catalogue, small_config):
    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, None, small_config)
        some_id = int(engine.searchable_ids()[17])
        result = engine.search_id(some_id, top_n=3)
        assert result.matches[0].image_id == some_id and result.matches[0].score == 1.0
        assert result.embed_ms < 50
        rng = np.random.default_rng(0)
        randoms = {engine.search_random(top_n=1, rng=rng).query_image_id for _ in range(5)}
        assert len(randoms) > 1
        with pytest.raises(CatalogueError, match="No model"):
            engine.search(DATA / "garment_a.jpg")


def test_empty_catalogue_says_build_first(tmp_path, fake_embedder, small_config):
    (tmp_path / "pics").mkdir()
    with Catalogue.create(tmp_path / "c.swimcat", tmp_path / "pics") as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        with pytest.raises(CatalogueError, match="no searchable images yet"):
            engine.search(DATA / "garment_a.jpg")


# --- the real model on real photos ------------------------------------------------------


def _transformed(path, kind: str, out):
    image = Image.open(path).convert("RGB")
    w, h = image.size
    if kind == "crop":
        dx, dy = int(w * 0.1), int(h * 0.1)
        image = image.crop((dx, dy, w - dx, h - dy))
    elif kind == "rescale_jpeg":
        image = image.resize((w // 2, h // 2), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=40)
        image = Image.open(io.BytesIO(buffer.getvalue()))
    elif kind == "colour":
        image = ImageEnhance.Color(ImageEnhance.Brightness(image).enhance(1.15)).enhance(0.8)
    elif kind == "mirror":
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image.save(out, "JPEG", quality=90)
    return out


def test_query_image_comes_first_at_100_percent(photos, embedder):
    folder, path = photos
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        for photo in sorted(folder.glob("*.jpg"))[:10]:
            best = engine.search(photo, top_n=5).matches[0]
            assert best.relpath == photo.name
            assert best.score == 1.0 and best.duplicate and best.phash_distance == 0


@pytest.mark.parametrize("kind", ["crop", "rescale_jpeg", "colour", "mirror"])
def test_transformed_copies_find_their_original(photos, embedder, tmp_path, kind):
    folder, path = photos
    originals = sorted(folder.glob("*.jpg"))[:15]
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        ranks = []
        for original in originals:
            copy = _transformed(original, kind, tmp_path / f"{kind}-{original.name}")
            names = [m.relpath for m in engine.search(copy, top_n=10).matches]
            ranks.append(names.index(original.name) + 1 if original.name in names else None)
    assert all(r is not None for r in ranks), ranks  # in the top 10, every time
    assert sum(r == 1 for r in ranks) >= 13  # and nearly always first


def test_rescaled_copy_is_flagged_duplicate_and_a_different_design_is_not(photos, embedder, tmp_path):
    folder, path = photos
    original = sorted(folder.glob("*.jpg"))[3]
    copy = _transformed(original, "rescale_jpeg", tmp_path / "copy.jpg")
    with Catalogue.open(path) as catalogue:
        matches = SearchEngine(catalogue, embedder, EngineConfig()).search(copy, top_n=5).matches
    assert matches[0].relpath == original.name and matches[0].duplicate
    # Half size at JPEG quality 40 costs a fifth of the centred cosine: clearly
    # the best match, and the pHash says "duplicate" where the score cannot.
    assert matches[0].score > 0.7 and matches[0].score - matches[1].score > 0.2
    assert not any(m.duplicate for m in matches[1:])


def test_pasted_picture_and_unreadable_query(photos, embedder, tmp_path):
    folder, path = photos
    original = sorted(folder.glob("*.jpg"))[5]
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        result = engine.search(Image.open(original), top_n=3)
        assert result.query == "pasted image" and result.query_image_id is None
        assert result.matches[0].relpath == original.name and result.matches[0].score > 0.999
        broken = tmp_path / "broken.jpg"
        broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
        with pytest.raises(ImageError):
            engine.search(broken)


def test_a_photo_pasted_reads_as_the_same_photo_dropped(photos, embedder, tmp_path):
    """A file is decoded at a reduced scale; the same photo pasted (already decoded, full size) is reduced alike,
    so its matches read what they read for the file (before: up to 14.6 points apart, a band changed)."""
    folder, path = photos
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        gaps = []
        for n, photo in enumerate(sorted(folder.glob("*.jpg"))[:6]):
            dropped = tmp_path / f"{n}.jpg"
            dropped.write_bytes(photo.read_bytes())  # outside the catalogue's folder: read, not taken for itself
            pasted = Image.open(dropped).convert("RGB")  # as the clipboard gives it: every pixel decoded
            by_file = {m.image_id: (m.score, m.band) for m in engine.search(dropped, top_n=20).matches}
            by_paste = {m.image_id: (m.score, m.band) for m in engine.search(pasted, top_n=40).matches}
            gaps += [abs(score - by_paste[i][0]) for i, (score, _) in by_file.items() if i in by_paste]
            assert sum(i in by_paste for i in by_file) >= 18
    assert max(gaps) < 0.04, max(gaps)


def test_mirror_option_finds_mirrored_designs_better(photos, embedder, tmp_path):
    folder, path = photos
    originals = sorted(folder.glob("*.jpg"))[:12]
    with Catalogue.open(path) as catalogue:
        on = SearchEngine(catalogue, embedder, EngineConfig(mirror=True))
        off = SearchEngine(catalogue, embedder, EngineConfig(mirror=False))
        gains = []
        for original in originals:
            copy = _transformed(original, "mirror", tmp_path / f"m-{original.name}")
            with_mirror = next(m for m in on.search(copy, top_n=40).matches if m.relpath == original.name)
            without = [m for m in off.search(copy, top_n=40).matches if m.relpath == original.name]
            assert with_mirror.mirrored
            gains.append(with_mirror.score - (without[0].score if without else 0.0))
    assert min(gains) >= 0 and np.mean(gains) > 0.01


def test_a_file_changed_since_the_build_is_not_taken_for_itself(tmp_path, fake_embedder, small_config):
    folder, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 20, family=2)
    changed = folder / "img0003.png"
    changed.write_bytes((folder / "img0016.png").read_bytes())  # another design saved over it, not yet updated
    with Catalogue.open(path) as catalogue:
        result = SearchEngine(catalogue, fake_embedder, small_config).search(changed, top_n=3)
    assert result.query_image_id is None  # its stored embedding is of the old design: no forced 100 %
    assert result.matches[0].relpath == "img0016.png"


def test_a_catalogue_of_one_image_says_what_it_needs(tmp_path, fake_embedder, small_config):
    folder, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "c.swimcat", fake_embedder, small_config, 1)
    with Catalogue.open(path) as catalogue:
        with pytest.raises(CatalogueError, match="single readable image; add at least one more"):
            SearchEngine(catalogue, fake_embedder, small_config).search(folder / "img0000.png")


def test_rescoring_from_memory_gives_what_the_store_gives(pattern_catalogue, fake_embedder, small_config):
    """Small catalogues rescore from memory; the ranked list is exactly the one read from the store."""
    folder, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        held = SearchEngine(catalogue, fake_embedder, small_config)
        read = SearchEngine(catalogue, fake_embedder, small_config.with_changes(rescore_in_memory_up_to=0))
        assert held._data.in_memory and not read._data.in_memory
        for n in (3, 77, 250):
            a, b = held.search(folder / f"img{n:04d}.png", top_n=20), read.search(folder / f"img{n:04d}.png", top_n=20)
            assert a.matches == b.matches and a.matches[0].score == 1.0
        assert held.search_id(5, top_n=8).matches == read.search_id(5, top_n=8).matches


def test_a_catalogue_file_is_searched_with_its_stored_embedding_and_a_changed_one_is_read(
    pattern_catalogue, fake_embedder, small_config, tmp_path
):
    """A design dragged from the catalogue's folder needs no network pass: unchanged since the build, its
    stored embedding is what reading it would give. A copy from outside, a changed file and the mirror
    image are read and embedded as before."""
    import shutil

    folder, path = pattern_catalogue
    calls = []
    real_embed = fake_embedder.embed
    fake_embedder.embed = lambda pixels: calls.append(len(pixels)) or real_embed(pixels)
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, small_config)
        query = folder / "img0010.png"
        from_file = engine.search(query, top_n=10)
        assert calls == [] and from_file.matches[0].name == "img0010.png" and from_file.matches[0].score == 1.0
        by_id = engine.search_id(from_file.matches[0].image_id, top_n=10)
        assert [m.image_id for m in from_file.matches] == [m.image_id for m in by_id.matches]
        outside = shutil.copy(query, tmp_path / "outside.png")
        assert engine.search(outside, top_n=10).matches[0].name == "img0010.png" and calls == [1]
        engine.search(query, top_n=10, mirror=True)
        assert calls == [1, 2]  # the picture and its mirror image, read from the file
        Image.open(folder / "img0200.png").save(query)  # another picture under the same name
        changed = engine.search(query, top_n=10)
        assert calls == [1, 2, 1] and changed.query_image_id is None
        assert changed.matches[0].name == "img0200.png"  # read from the file, not the record of its name


def test_a_search_reads_each_embedding_and_neighbour_list_from_the_store_once(
    pattern_catalogue, fake_embedder, small_config, tmp_path
):
    """Above the in-memory size the ranking asks for its best candidates' vectors twice (query expansion,
    then the ranking) and scores every candidate: each row is still read once a search, and never kept
    for the next one (an update between two searches is seen)."""
    import shutil

    folder, path = pattern_catalogue
    # from outside the catalogue, so the picture is embedded: a catalogue file's own stored embedding
    # would be one more read before the search (examples.from_picture)
    query = shutil.copy(folder / "img0077.png", tmp_path / "query.png")
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, small_config.with_changes(rescore_in_memory_up_to=0))
        asked: dict[str, list[int]] = {"embeddings": [], "lists": []}
        embeddings, lists = catalogue.embedding_matrix, catalogue.neighbour_lists

        def counted_embeddings(ids):
            ids = list(ids)
            asked["embeddings"] += [int(i) for i in ids]
            return embeddings(ids)

        def counted_lists(ids=None):
            ids = None if ids is None else list(ids)
            asked["lists"] += [int(i) for i in ids or []]
            return lists(ids)

        catalogue.embedding_matrix, catalogue.neighbour_lists = counted_embeddings, counted_lists
        first = engine.search(query, top_n=20)
        assert asked["embeddings"] and len(asked["embeddings"]) == len(set(asked["embeddings"]))
        assert len(asked["lists"]) == len(set(asked["lists"]))
        read_once = len(asked["embeddings"])
        assert engine.search(query, top_n=20).matches == first.matches
        assert len(asked["embeddings"]) == 2 * read_once  # the second search read them again


def test_a_query_augmented_as_a_catalogue_image_is_that_images_own_augmented_vector(pattern_catalogue, fake_embedder, small_config):
    """`query_augment_k`: a catalogue image's own embedding, augmented over its k nearest (the
    catalogue's k), is the augmented vector the catalogue holds for it, so a query sits among its
    neighbours as the vectors it is compared with do."""
    from swimsearch.fold_in import augmented_query

    _, path = pattern_catalogue
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, fake_embedder, small_config.with_changes(query_augment_k=5, expand_rounds=2))
        fitted = catalogue.fitted()
        assert fitted.augmented and int(fitted.settings["augment_k"]) == 5
        checked = 0
        for image_id in engine.searchable_ids()[::50]:
            embedding = catalogue.embedding_matrix([int(image_id)]).vectors
            q = fitted.prepare(embedding)[0]
            ranking = engine._searcher.search(fitted.codes(q[None])[0], fitted.vectors(q[None])[0], 200)
            head = ranking.ids[ranking.ids != image_id][:40]
            own = engine._data.augmented(np.array([image_id]))[0]
            assert np.allclose(augmented_query(q, engine._data, fitted, head, 5), own, atol=2e-3)
            result = engine.search_id(int(image_id), top_n=5)  # and the search with it lists the image itself first
            assert result.matches[0].image_id == image_id and result.matches[0].score == 1.0
            checked += 1
        assert checked >= 8
