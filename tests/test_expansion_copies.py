"""Copies of one picture count once when a query is expanded (augment.distinct_best).

A reviewer's catalogue held five byte-identical copies of a recoloured skirt
among 30 photos: the query expansion took five of its ten rows from them,
the expanded query was drawn to that skirt, and the copies were listed first
of their band at 8 % above matches reading 42 % (with colour matched).
"""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from helpers import built_catalogue
from swimsearch.augment import distinct_best, picture_keys
from swimsearch.catalogue import Catalogue
from swimsearch.colour import ColourMix
from swimsearch.config import EngineConfig
from swimsearch.search import SearchEngine


def test_the_best_rows_take_each_picture_once():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(6, 16)).astype(np.float32)
    embeddings[2] = embeddings[1]  # a copy of row 1
    similarities = np.array([0.9, 0.8, 0.8, 0.7, 0.6, 0.5])
    keys = picture_keys(embeddings)
    assert distinct_best(keys, similarities, 3).tolist() == [0, 1, 3]
    assert distinct_best(keys, similarities, 10).tolist() == [0, 1, 3, 4, 5]


def test_five_copies_of_a_design_do_not_draw_the_list_to_them(tmp_path, clothing, embedder):
    folder = tmp_path / "designs"
    folder.mkdir()
    images = sorted((clothing / "images").glob("*.jpg"))
    start = [p.name for p in images].index("286737f2-9be3-4ff3-8712-d0be75cfbebb.jpg")
    for photo in images[start : start + 30]:  # the reviewer's 30 photos
        shutil.copy(photo, folder / photo.name)
    red, green, blue = Image.open(clothing / "images" / "2a79969e-c45d-432f-a62b-90970e4d909f.jpg").convert("RGB").split()
    recoloured = Image.merge("RGB", (blue, red, green))  # a skirt in another colourway
    for n in range(5):
        recoloured.save(folder / f"copy{n}.jpg", quality=90)  # five identical files of one design
    query = shutil.copy(clothing / "images" / "0903f4c9-a877-4832-bb9e-2a4f4b8f7f67.jpg", tmp_path / "query.jpg")
    path = built_catalogue(tmp_path / "c.swimcat", folder, embedder)
    with Catalogue.open(path) as catalogue:
        engine = SearchEngine(catalogue, embedder, EngineConfig())
        for weight in (0.0, 0.5, 0.9):
            matches = engine.search(query, top_n=10, colour=ColourMix(weight)).matches
            first_band = [m for m in matches if m.band == matches[0].band]
            best = max(m.score for m in first_band)
            copies = [n for n, m in enumerate(first_band) if m.relpath.startswith("copy")]
            # a copy may lead its band only by reading about as much as its best
            assert not copies or copies[0] > 0 or first_band[0].score >= best - 0.05, (weight, [(m.relpath, m.score) for m in first_band])
