"""Issue 11: the score of one pair of pictures is the same in every catalogue, through the whole engine.

tests/test_calibration.py holds it for the calibration's arithmetic; this holds it where a user reads
it: the list a search returns, in catalogues of different sizes and on the exact, LSH and array-cache
paths (a score made from the catalogue's own statistics, or from augmented or ranking vectors, would
move between them).
"""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.search import SearchEngine


def _build(folder, names, source, embedder) -> Catalogue:
    folder.mkdir()
    for name in names:
        shutil.copy(source / name, folder / name)
    path = folder / "c.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
    return path


def _scores(path, query, embedder, config: EngineConfig) -> dict[str, float]:
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, config)
        if engine.array_watch is not None:
            engine.array_watch.wait(120)
        return {m.path.rsplit("/", 1)[-1]: m.score for m in engine.search(query, top_n=200).matches}


@pytest.mark.timeout(600)
def test_a_pair_scores_the_same_in_catalogues_of_6_and_40_photos_on_every_path(photo_catalogue, embedder, tmp_path):
    folder, big = photo_catalogue
    names = sorted(p.name for p in folder.glob("*.jpg"))
    small = _build(tmp_path / "small", names[:6], folder, embedder)
    query = tmp_path / "crop.jpg"  # a file in neither catalogue: an 80 % crop of the first photo
    with Image.open(folder / names[0]) as image:
        w, h = image.size
        image.convert("RGB").crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(query, quality=92)
    paths = {
        "6 photos": (small, EngineConfig()),
        "40 photos, exact": (big, EngineConfig()),
        "40 photos, LSH": (big, EngineConfig(exact_below=1, graph_from=10**9)),
        "40 photos, array cache": (big, EngineConfig(rescore_in_memory_up_to=0, array_cache_from=1)),
    }
    seen = {where: _scores(path, query, embedder, config) for where, (path, config) in paths.items()}
    for name in names[:6]:
        scores = {where: s[name] for where, s in seen.items() if name in s}
        assert len(scores) == len(paths), f"{name} missing from a list: {sorted(scores)}"
        assert max(scores.values()) - min(scores.values()) <= 0.02, f"{name}: {scores}"  # 2 points
    assert all(s[names[0]] >= 0.9 for s in seen.values())  # the crop's original: same design everywhere
