"""A byte-identical copy of the query comes first after the query itself, before re-exports of it, and reads 100 %.

A new user found a byte-identical copy listed below a 99 % re-export: inside
the *same design* band the list followed the augmented ranking, which can
put a re-export above the very same picture. Real model, real photos.
"""

from __future__ import annotations

import shutil

import pytest
from PIL import Image, ImageOps

from helpers import copy_clothing_photos
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.search import SearchEngine


@pytest.fixture(scope="module")
def with_copies(tmp_path_factory, clothing, embedder):
    """30 clothing photos; of five of them a byte-identical copy and three re-exports (JPEG 95, 85, 1 px smaller)."""
    folder = tmp_path_factory.mktemp("identical")
    photos = copy_clothing_photos(clothing, folder, 30)
    originals = photos[::6]
    for n, photo in enumerate(originals):
        shutil.copy(photo, folder / f"zz-identical-{n}.jpg")  # named to sort after the re-exports
        picture = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
        picture.save(folder / f"a-export95-{n}.jpg", quality=95)
        picture.save(folder / f"a-export85-{n}.jpg", quality=85)
        picture.resize((picture.width - 1, picture.height - 1)).save(folder / f"a-smaller-{n}.jpg", quality=95)
    path = folder / "c.swimcat"
    with Catalogue.create(path, folder) as catalogue:
        catalogue.update(embedder, EngineConfig())
    return folder, path, originals


def test_the_identical_copy_is_listed_right_after_the_query(with_copies, embedder):
    folder, path, originals = with_copies
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        for n, photo in enumerate(originals):
            by_file = engine.search(photo, top_n=6).matches
            by_id = engine.search_id(by_file[0].image_id, top_n=6).matches
            for matches in (by_file, by_id):
                names = [m.name for m in matches]
                assert names[:2] == [photo.name, f"zz-identical-{n}.jpg"], names
                exports = {f"a-export95-{n}.jpg", f"a-export85-{n}.jpg", f"a-smaller-{n}.jpg"}
                assert set(names[2:5]) == exports  # then the re-exports, all same design
                assert all(m.band == "same design" for m in matches[:5])
                # the very same picture reads 100 %, as the query itself; a re-export never does
                assert [m.score == 1.0 for m in matches[:5]] == [True, True, False, False, False]
            # a copy searched from outside reads its catalogue twins first, the identical ones as equals
            outside = engine.search(folder / f"zz-identical-{n}.jpg", top_n=3).matches
            assert {m.name for m in outside[:2]} == {photo.name, f"zz-identical-{n}.jpg"}
