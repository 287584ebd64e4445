"""The fitted index: what turns an embedding into a code, a re-ranking vector and bucket keys,
and the in-memory snapshot that searches run on.

`fit_index` fits everything to a sample of a catalogue's embeddings (hash
layer, spheres, re-ranking basis, LSH bit samples); a store keeps the result
as named arrays (`FittedIndex.arrays`, `FittedIndex.from_arrays`, so a store
never needs to know what each array means) and loads an `IndexSnapshot` from
it. Benchmarks and tests build snapshots straight from embeddings with
`snapshot_from_embeddings`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .augment import unit_rows
from .config import INDEX_SETTINGS, EngineConfig
from .hashlayer import HashLayer, fit_hash_layer, principal_directions
from .graph import VectorGraph
from .lsh import BucketTables, bucket_keys, sample_key_bits
from .spherical import Spheres, fit_spheres


@dataclass(frozen=True)
class FittedIndex:
    """Everything fitted to a catalogue that turns an embedding into a code and a vector."""

    layer: HashLayer
    spheres: Spheres
    rerank_basis: np.ndarray  # (D, R) float32
    positions: np.ndarray  # (L, K) int16 code bits of each LSH table's key
    settings: dict = field(default_factory=dict)
    count: int = 0
    provisional: bool = False
    #: The fixed centre embeddings are prepared on (the model's reference mean,
    #: calibration.py) when the index is fitted on prepared and augmented
    #: vectors (issue 11); None: fitted on the raw embeddings, as before.
    centre: np.ndarray | None = None

    @property
    def mean(self) -> np.ndarray:
        return self.layer.mean

    @property
    def augmented(self) -> bool:
        """Whether codes and vectors are made from prepared, augmented vectors (else from raw embeddings)."""
        return self.centre is not None

    def prepare(self, embeddings: np.ndarray) -> np.ndarray:
        """What `codes` and `vectors` take for trunk embeddings: unit vectors centred on `centre`
        (for a fit on augmented vectors), or the embeddings themselves (float32)."""
        x = np.asarray(embeddings, dtype=np.float32)
        if self.centre is None:
            return x
        return unit_rows(x - self._centre32)

    @functools.cached_property
    def _centre32(self) -> np.ndarray:
        assert self.centre is not None
        return self.centre.astype(np.float32)

    def codes(self, embeddings: np.ndarray) -> np.ndarray:
        """Packed spherical codes (n, words) uint64."""
        return self.spheres.encode(self.layer.project(embeddings))

    def vectors(self, embeddings: np.ndarray) -> np.ndarray:
        """L2-normalised re-ranking vectors (n, R) float32."""
        reduced = (np.asarray(embeddings, dtype=np.float32) - self.layer.mean) @ self.rerank_basis
        return unit_rows(reduced)

    def keys(self, codes: np.ndarray) -> np.ndarray:
        """(n, L) LSH bucket keys of packed codes."""
        return bucket_keys(codes, self.positions, self.spheres.bits)

    #: The arrays a fit consists of, by the name a store keeps them under.
    ARRAY_NAMES = (
        "hash.mean", "hash.weights", "hash.bias", "spheres.pivots", "spheres.radii", "rerank.basis", "lsh.positions",
    )
    #: Arrays a fit may have (a fit made before issue 11 has no centre).
    OPTIONAL_ARRAYS = ("space.centre",)

    def arrays(self) -> dict[str, np.ndarray]:
        """The fit's arrays by name, for a store to keep (see `from_arrays`)."""
        return {
            "hash.mean": self.layer.mean,
            "hash.weights": self.layer.weights,
            "hash.bias": self.layer.bias,
            "spheres.pivots": self.spheres.pivots,
            "spheres.radii": self.spheres.radii,
            "rerank.basis": self.rerank_basis,
            "lsh.positions": self.positions,
            **({"space.centre": self.centre} if self.centre is not None else {}),
        }

    def state(self) -> dict[str, Any]:
        """What a store records beside the arrays (JSON-ready; see `FitState`)."""
        return {
            "variant": self.layer.variant,
            "count": self.count,
            "provisional": self.provisional,
            "settings": self.settings,
            "iterations": self.spheres.iterations,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> "FittedIndex":
        """The fit again from its stored arrays and state.

        Raises:
            KeyError: an array of `ARRAY_NAMES` is missing (those of `OPTIONAL_ARRAYS` may be).
        """
        return cls(
            layer=HashLayer(
                mean=arrays["hash.mean"], weights=arrays["hash.weights"], bias=arrays["hash.bias"], variant=state["variant"]
            ),
            spheres=Spheres(pivots=arrays["spheres.pivots"], radii=arrays["spheres.radii"],
                            iterations=int(state.get("iterations") or 0)),
            rerank_basis=arrays["rerank.basis"],
            positions=arrays["lsh.positions"],
            settings=dict(state.get("settings", {})),
            count=int(state["count"]),
            provisional=bool(state.get("provisional", False)),
            centre=arrays.get("space.centre"),
        )


@dataclass(frozen=True)
class IndexSnapshot:
    """The searchable part of a catalogue, loaded into compact arrays."""

    fitted: FittedIndex
    ids: np.ndarray  # (n,) int64 image ids, sorted
    codes: np.ndarray  # (n, words) uint64
    vectors: np.ndarray  # (n, R) float16
    tables: BucketTables | None  # the LSH buckets as loaded; None: not read (see `lsh_tables`)
    graph: VectorGraph | None = None  # the HNSW graph over the vectors, where the catalogue keeps one

    _lookup: Callable[[np.ndarray], np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lookup", row_lookup(self.ids))  # built once, used per query

    def __len__(self) -> int:
        return len(self.ids)

    def lsh_tables(self) -> BucketTables:
        """The LSH buckets: as loaded, or made from the codes when the store did not read them.

        A store may leave its bucket rows unread when a graph covers every
        image (opening a 1M catalogue is then 80 MB and a second smaller);
        the buckets follow from the codes, so the ones made here are the
        stored ones.
        """
        if self.tables is None:
            tables = BucketTables.from_keys(self.fitted.positions, self.fitted.spheres.bits, self.fitted.keys(self.codes))
            object.__setattr__(self, "tables", tables)
            return tables
        return self.tables

    def rows_of(self, image_ids: np.ndarray) -> np.ndarray:
        """Snapshot rows of image ids (-1 where absent)."""
        return self._lookup(image_ids)


def unique_ids(ids: np.ndarray) -> np.ndarray:
    """`np.unique` of image ids (sorted, each once), by a sort and one comparison: half its time on a search's few
    hundred candidates."""
    ids = np.sort(np.asarray(ids, dtype=np.int64))
    return ids[np.concatenate(([True], ids[1:] != ids[:-1]))] if len(ids) else ids


def row_lookup(sorted_ids: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping image ids to their positions in `sorted_ids` (-1 where absent).

    Image ids are SQLite row ids, dense from 1, so a direct table beats a
    binary search: mapping the 8 million bucket entries of a 1M catalogue
    takes 40 ms instead of 1.3 s.
    """
    sorted_ids = np.asarray(sorted_ids, dtype=np.int64)
    top = int(sorted_ids[-1]) + 1 if len(sorted_ids) else 0
    if top > 4 * len(sorted_ids) + 65536 or (len(sorted_ids) and sorted_ids[0] < 0):
        # Ids far sparser than a catalogue makes (or hostile ones, 2^40): a
        # table would cost 8 bytes per possible id, so search instead.
        return _searched_lookup(sorted_ids)
    table = np.full(top + 1, -1, dtype=np.int64)  # and a last -1 for every id outside
    table[sorted_ids] = np.arange(len(sorted_ids))

    def lookup(image_ids: np.ndarray) -> np.ndarray:
        # as unsigned a negative id is past `top` too: one minimum and one gather (a dozen lookups a search)
        return table[np.minimum(np.asarray(image_ids, dtype=np.int64).view(np.uint64), top).view(np.int64)]

    return lookup


def _searched_lookup(sorted_ids: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """`row_lookup` by binary search: memory in proportion to the ids, whatever their values."""

    def lookup(image_ids: np.ndarray) -> np.ndarray:
        image_ids = np.asarray(image_ids, dtype=np.int64)
        if not len(sorted_ids):
            return np.full(len(image_ids), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_ids, image_ids), len(sorted_ids) - 1)
        return np.where(sorted_ids[at] == image_ids, at, -1).astype(np.int64)

    return lookup


def fit_index(
    sample: np.ndarray,
    config: EngineConfig,
    *,
    labels: np.ndarray | None = None,
    count: int | None = None,
    provisional: bool = False,
    centre: np.ndarray | None = None,
) -> FittedIndex:
    """Fit hash layer, spheres, re-ranking basis and LSH bit samples to vectors (n, D).

    Args:
        sample: raw embeddings, or (with `centre`) vectors prepared on
            `centre` and augmented (neighbours.py).
        centre: the fixed centre the sample's vectors were prepared on.
    """
    hash_dim = min(config.hash_dim, sample.shape[1])
    layer = fit_hash_layer(sample, hash_dim, config.hash_variant, labels=labels, seed=config.seed)
    spheres = fit_spheres(layer.project(sample), config.bits, seed=config.seed, sample=config.sphere_sample)
    if config.hash_variant == "pca" and config.rerank_dim <= hash_dim:
        basis = layer.weights[:, : config.rerank_dim].copy()  # the same principal directions
    else:
        basis, _ = principal_directions(sample - layer.mean, config.rerank_dim)
    return FittedIndex(
        layer=layer,
        spheres=spheres,
        rerank_basis=basis,
        positions=sample_key_bits(config.bits, config.lsh_tables, config.lsh_key_bits, seed=config.seed),
        settings={name: getattr(config, name) for name in INDEX_SETTINGS},
        count=len(sample) if count is None else count,
        provisional=provisional,
        centre=None if centre is None else np.asarray(centre, dtype=np.float32),
    )


def snapshot_from_embeddings(fitted: FittedIndex, ids: np.ndarray, embeddings: np.ndarray, chunk: int = 65536) -> IndexSnapshot:
    """An in-memory index of embeddings (for benchmarks and tests; the app loads one from its catalogue)."""
    codes = np.concatenate([fitted.codes(embeddings[s : s + chunk]) for s in range(0, len(embeddings), chunk)])
    vectors = np.concatenate(
        [fitted.vectors(embeddings[s : s + chunk]).astype(np.float16) for s in range(0, len(embeddings), chunk)]
    )
    tables = BucketTables.from_keys(fitted.positions, fitted.spheres.bits, fitted.keys(codes))
    return IndexSnapshot(
        fitted=fitted,
        ids=np.asarray(ids, dtype=np.int64),
        codes=codes,
        vectors=vectors,
        tables=tables,
    )
