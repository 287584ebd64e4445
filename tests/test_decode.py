"""Decoding ahead of the network and the inference shape of a build."""

from __future__ import annotations

import numpy as np

from helpers import copy_clothing_photos, make_pattern_images

from swimsearch.build import build_catalogue
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.decode import BYTES_PER_DECODER, DecodeTimes, decoded_batches, decoder_count
from swimsearch.images import FoundFile, ImageError, LoadedImage


def files(sizes: list[int]) -> list[FoundFile]:
    return [FoundFile(f"f{i}.jpg", size, 0.0) for i, size in enumerate(sizes)]


def test_small_photos_get_one_decoder_and_large_files_more():
    assert decoder_count(files([25_000] * 100), cores=2) == 1
    assert decoder_count(files([]), cores=2) == 1
    # twelve-megapixel PNGs (about 20 MB) would starve the network with one decoder
    assert decoder_count(files([20_000_000] * 50), cores=2) == 2
    assert decoder_count(files([3 * BYTES_PER_DECODER] * 50), cores=16) == 3
    # a few large files among many small ones do not change the choice
    assert decoder_count(files([25_000] * 90 + [50_000_000] * 10), cores=4) == 1


def test_decoded_batches_keep_order_and_say_where_the_time_went(tmp_path):
    paths = make_pattern_images(tmp_path, 7)
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    found = [FoundFile(p.name, p.stat().st_size, 0.0) for p in paths] + [FoundFile("broken.png", 13, 0.0)]
    times = DecodeTimes()
    batches = list(decoded_batches(found, tmp_path, 32, batch_size=3, decoders=0, times=times))
    assert [len(b) for b in batches] == [3, 3, 2]
    flat = [item for batch in batches for item in batch]
    assert [f.relpath for f, _ in flat] == [f.relpath for f in found]
    assert all(isinstance(r, LoadedImage) for _, r in flat[:7]) and isinstance(flat[7][1], ImageError)
    assert times.decoders == 1 and times.decoding > 0 and times.waiting >= 0


def test_the_network_shape_does_not_change_what_a_build_stores(tmp_path, clothing, embedder):
    """Batch 1 (the fast shape on small machines) and batch 16 give the same embeddings."""
    folder = tmp_path / "photos"
    copy_clothing_photos(clothing, folder, 12)
    stored = []
    for shape in (1, 16):
        with Catalogue.create(tmp_path / f"b{shape}.swimcat", folder) as catalogue:
            report = build_catalogue(
                catalogue.writer(), folder, embedder, EngineConfig(inference_batch=shape, batch_size=8)
            )
            assert report.added == 12 and report.network_seconds > 0 and report.commit_seconds > 0
            found = catalogue.embedding_matrix(range(1, 13))
            stored.append(found.vectors)
    assert stored[0].shape == (12, embedder.dim)
    # both are stored in half precision: equal up to its rounding
    np.testing.assert_allclose(stored[0], stored[1], rtol=2e-3, atol=2e-3)
