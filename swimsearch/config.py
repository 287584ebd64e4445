"""The engine's settings, as one frozen object handed in by the CLI or the GUI.

Index settings (bits, hash layer, LSH tables) are fixed for a catalogue when
its hash layer is fitted and are stored in the catalogue; query settings apply
to each search. Every default is the value chosen by measurement (see
docs/BENCHMARKS.md for the figure that decided it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class EngineConfig:
    # --- index: fixed per catalogue at fit time -----------------------------
    #: Spherical code length B (128 beat 64 on codes-only mAP by 5 points).
    bits: int = 128
    #: Hash layer outputs d.
    hash_dim: int = 64
    #: Hash layer variant: "pca" or "laplacian" (PCA measured better after re-ranking).
    hash_variant: str = "pca"
    #: Use the first-level subfolder names as labels for the Laplacian variant.
    folder_labels: bool = False
    #: Dimensions of the re-ranking vectors kept in memory (PCA of the embeddings).
    rerank_dim: int = 128
    #: LSH: number of tables L and key bits K per table (120 of the 128 code
    #: bits, each in one table). At 1M images L=10, K=12 kept 0.98 of the exact
    #: top 10 in under 4 ms; L=8, K=16 only 0.93 (bench/bench_scale.py --tune).
    lsh_tables: int = 10
    lsh_key_bits: int = 12
    #: Seed for every random choice of a fit (k-means, spheres, LSH bit samples).
    seed: int = 0
    #: What the index is fitted on and ranks by (issue 11): "augmented" -
    #: embeddings centred on the model's fixed reference mean, each replaced by a
    #: weighted mean of itself and its `augment_k` nearest other images
    #: (database-side augmentation; cross-sender mAP@10 1.057 x exact cosine
    #: with query expansion, docs/QUALITY_RESEARCH.md); "embeddings" - the raw
    #: embeddings centred on the catalogue's mean (the pipeline before issue 11,
    #: kept as the baseline of `swimsearch eval --baseline`).
    vectors: str = "augmented"
    #: Neighbours k and weight exponent alpha of the augmentation (a flat optimum: k 3-7, alpha 3).
    augment_k: int = 5
    augment_alpha: float = 3.0
    #: The hash layer is fitted on at most this many embeddings, the spheres on fewer.
    fit_sample: int = 50_000
    sphere_sample: int = 20_000

    # --- query ----------------------------------------------------------------
    #: Candidates kept after ranking the codes, re-ranked by cosine (M). On the
    #: clothing set the LSH path kept 0.997 of exact-cosine mAP@10 at M=1000,
    #: 0.992 at 500; at 1M images M=1000 costs no measurable time over 500.
    #: 3000 since issue 11: at 1000, 1 of 100 80 % crops and 1 of 100 8-degree
    #: rotations of clothing photos were not among the LSH candidates at all
    #: (exact cosine and the graph found both; at 3000 the LSH path did too);
    #: at 44,072 images crops 0.992 against 0.952 (docs/QUALITY_RESEARCH.md).
    #: The LSH path is the fallback of catalogues above `exact_below` without a graph.
    #: 4000 since round 6: on the clothing catalogue grown to 40,000 images, with the query
    #: expanded twice, 3000 lost 1 mirrored and 2 rotated copies of 100 whose originals the
    #: re-ranking vectors rank first but whose codes ranked 1,651-3,362 by Hamming; at 4000
    #: every mirror and rotation was found, as exact cosine finds them (bench_quality.py
    #: --sections grown). The LSH path's search there took 1.5-1.7 x round 5's (with the
    #: third search); the exact (below 20,000) and graph paths do not read it.
    rerank_depth: int = 4000
    #: How candidates' codes are ranked before re-ranking: "hamming" (|a xor b|)
    #: or "spherical" (|a xor b| / |a and b|, Heo et al.). Measured on the
    #: clothing set, the best 500 by Hamming hold 0.97 of the exact top 10,
    #: by spherical Hamming 0.90: points inside many balls crowd the top of the
    #: spherical ranking.
    code_distance: str = "hamming"
    #: Multi-probe: flip up to this many key bits around the query's own bucket.
    probe_radius: int = 2
    #: Below this many images the engine scans every code instead of probing buckets.
    exact_below: int = 20_000
    #: From this many searchable images a build keeps an HNSW graph over the
    #: re-ranking vectors beside the LSH tables (graph.py), and searches above
    #: `exact_below` find their candidates in it: at 1M images it was 4-15x
    #: faster than the LSH probe at a higher recall (bench/bench_scale.py).
    graph_from: int = 20_000
    #: Candidates taken from the graph (at least; a search hands on as many as
    #: the pipeline asks for) and re-ranked exactly in the re-ranking space.
    graph_candidates: int = 40
    #: How widely the graph is walked (HNSW efSearch) for k candidates:
    #: max(graph_effort, graph_effort_share * k), the best k of what the walk
    #: saw. Against the same pipeline on the exact path (bench/bench_depth.py):
    #: at 100,000 images a walk 128 wide kept the top 10 (1.000) and the page
    #: of 50 (0.986) at 200 candidates a search, 48 wide the top 10 alone
    #: (0.999); at 1,000,000 the 128-wide walk fell to recall@10 0.966 (48:
    #: 0.935) and only the 200-wide walk kept 0.98 (0.982; 256: 0.989), so
    #: the walk stays as wide as the candidates asked (share 1.0, as before).
    graph_effort: int = 48
    graph_effort_share: float = 1.0
    #: Query expansion's searches on the graph: each walks it again (True, as before round 17), or
    #: (False) every round but the last ranks the candidates of the search before by the expanded query,
    #: and the last too where the candidates the list needs are at most `graph_near_share` of the walk's
    #: (a top 10: 40 of 200). A walk costs ~0.3 ms at 1M. Top 10 at 1M: 200 of 200 lists as walking
    #: again (bench/bench_arrays_paired.py); at 40,000 photos (bench_quality.py --sections grown's catalogue)
    #: recall against the exact path's list 0.994-0.9985 (walking again 0.994-0.999), the window's 200
    #: 0.988 (0.990; without the last walk 0.81): docs/BENCHMARKS.md, round 17.
    graph_walk_again: bool = False
    graph_near_share: float = 0.2
    #: Catalogues up to this many searchable images keep every embedding and
    #: record in memory for rescoring (rescoring.py: 128 MB at 50,000), so a
    #: search makes no store call; larger ones read them per search, in one query each.
    rescore_in_memory_up_to: int = 50_000
    #: A catalogue file above that size and of at least this many searchable images is searched
    #: from its array cache once made (array_cache.py, array_watch.py: memory-mapped embeddings and
    #: augmented vectors in the user's cache folder), so a search reads no rows; None: never.
    array_cache_from: int | None = 10_000
    #: Query expansion (with `vectors="augmented"`): the query is searched again as
    #: a weighted mean of itself and its `expand_k` best results, weights cos^alpha.
    #: 10 since round 6 (5 before; QE k 5-10, alpha 0-1 measured alike cross-sender,
    #: k 10 better same-sender; k 7, 12, 15, 20 and alpha 0.5 / 2 / 3 lower on the tuning half).
    expand_k: int = 10
    expand_alpha: float = 1.0
    #: Before query expansion the query is augmented as a catalogue image is: a weighted mean
    #: of itself and its `query_augment_k` nearest images by prepared cosine (among the first
    #: search's best), weights cos^augment_alpha (0: off, as before round 6). 2 since round 12: with the
    #: best-scored match looked at (not lifted), 2 beat 3 on the tuning sender half in both protocols
    #: (same-sender 1.0539 / 1.0514 x exact cosine naive / leak-free against 1.0508 / 1.0505,
    #: bench/results/quality-issue11-ranking-round12-gate-augk2.txt).
    query_augment_k: int = 2
    #: Rounds of query expansion, each a search with the query expanded again from the previous
    #: round's best (1: the query is searched twice in all, as before round 6).
    #: query_augment_k 3, expand_k 10 and two rounds were chosen on the tuning sender half of the
    #: clothing set, leak-free (an in-memory model of the exact path, docs/BENCHMARKS.md), and are
    #: reported through the engine (docs/BENCHMARKS.md, round 6): same-sender mAP@10 leak-free
    #: 1.0505 x exact cosine (sender halves 1.0505 / 1.0506: 1.05 without a margin), cross-sender
    #: 1.0775; the round-5 defaults (0, 5, 1) gave 1.0435 / 1.0648. A third search per query.
    expand_rounds: int = 2
    #: Candidates of each search scored on the full augmented
    #: vectors (at least the results asked for plus RESCORE_MARGIN): 200 kept
    #: crops and rotations at 44,000 images that 40 lost (docs/QUALITY_RESEARCH.md).
    rescore_depth: int = 200
    #: The candidate reading the highest score outside *same design* stands at most this far down the
    #: list, inside its band (best_scored.py: a crop's original read 71.5 %, the list's first 66.8 %, and the
    #: expanded query ranked it 233rd; 0: off), where it reads `best_scored_lead` points more (as shown, whole
    #: percents) than those it passes. Off: the look at the pictures raises that candidate to *same design* when it
    #: is the same picture (same_picture.BELOW_EDGE), and leaves a look-alike garment where the ranking put it; the
    #: blind lift (1, 3 points, round 10) changed 32 % of the clothing set's lists (bench/best_scored_rule.py) and cost
    #: same-sender mAP@10 (1.0495 against 1.0505 x exact cosine leak-free).
    best_scored_within: int = 0
    best_scored_lead: float = 3.0
    #: Images whose pHash is within this many bits of the query's join the
    #: candidates, so a copy the embedding loses is still found.
    phash_radius: int = 8
    #: Two images whose pHashes differ in at most this many of 64 bits are duplicates.
    duplicate_distance: int = 6
    #: Also search the mirrored query and merge the two rankings. Off by default:
    #: on the clothing set mirrored copies were found first every time without it
    #: (the trunk's features are nearly mirror-symmetric), it added 0.5 % of
    #: mAP@10, and it doubles the query's network time (median query 21 -> 40 ms).
    mirror: bool = False

    # --- build ----------------------------------------------------------------
    #: Images per committed batch during a build (what a cancel or a kill keeps).
    batch_size: int = 16
    #: Images per run of the network during a build; commits stay batched
    #: (`batch_size`). Batch 4 since round 15: the int8 trunk's folded graph
    #: (models/fold_pads.py) runs 1.45 x as many images a second at 4 as at 1
    #: (1,000-photo builds 103-105 against 80 images/s, 16 no faster), the same
    #: numbers bit for bit; the fp32 trunk is as fast at 4 as at 1 and slower at 16
    #: (issue 15 chose 1 for it: a build 0.75 x the wall time and 255 MB instead of
    #: 668 MB peak at 16; bench/bench_build.py).
    inference_batch: int = 4
    #: onnxruntime threads; 0 means all cores.
    threads: int = 0
    #: Parallel image decoders beside the network; 0 chooses by the files'
    #: sizes (decode.decoder_count): one for ordinary photos, where on two
    #: cores a second decoder takes CPU from the network (one built about
    #: 10 % faster on the clothing photos), more for large files (a
    #: 12-megapixel PNG takes 300 ms to decode, where one decoder would starve
    #: the network; docs/BENCHMARKS.md).
    decoders: int = 0

    def __post_init__(self) -> None:
        if self.vectors not in VECTORS:
            raise ValueError(f"unknown vectors {self.vectors!r} (choose {' or '.join(VECTORS)})")

    @property
    def array_cache_needed_from(self) -> int | None:
        """The fewest searchable images a catalogue file is searched from its array cache at (None: never):
        `array_cache_from`, and only above the catalogues held in memory."""
        start = self.array_cache_from
        return None if start is None else max(start, 1, self.rescore_in_memory_up_to + 1)

    def with_changes(self, **changes: Any) -> "EngineConfig":
        """A copy with some settings changed; unknown names are an error."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown engine settings: {', '.join(sorted(unknown))}")
        return replace(self, **changes)


#: What an index can be fitted on (`EngineConfig.vectors`).
VECTORS = ("augmented", "embeddings")

#: Settings that are stored in a catalogue when its hash layer is fitted.
INDEX_SETTINGS = (
    "bits",
    "hash_dim",
    "hash_variant",
    "folder_labels",
    "rerank_dim",
    "lsh_tables",
    "lsh_key_bits",
    "seed",
    "vectors",
    "augment_k",
    "augment_alpha",
)

#: The index settings a user chooses per catalogue (`swimsearch index --variant`,
#: `--folder-labels`); updates keep them unless they are named again.
FIT_CHOICES = ("hash_variant", "folder_labels")
