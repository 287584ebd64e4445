"""Similarity scores with one meaning: fixed reference statistics, a 0-100 % scale and named bands.

A cosine of embeddings centred on the catalogue's own mean moves with the
catalogue: the same two pictures scored 80 % in one catalogue and 0 % in
another. Here the statistics come from a fixed reference set, computed once
per model file (models/make_calibration.py) and shipped beside it, so the
score of a pair depends on the two pictures and the model only. Two cosines
of the pair are read, one per question:

* *is it the same picture?* The cosine after a PCA whitening of the
  reference set (principal directions scaled to equal variance, with
  shrinkage). It weighs the many weak directions that carry a picture's
  particulars, and measured far better at telling a crop or a re-export of
  a picture from a look-alike garment. At or above its measured edge the
  pair may be *same design*, 90-100 %: a search then looks at the two
  pictures (same_picture.py, copy_check.py: local features that one
  similarity transform explains, alike everywhere once aligned), and a pair
  that is not the same picture reads its garment score instead (at most
  89 %). The embeddings alone put look-alike garments there too: among the
  10 best matches of 1,000 clothing photos, 2,016 pairs, 694 of them by
  another sender.
* *how alike are the garments?* The cosine of the embeddings centred on the
  reference mean (whitening ranks garment kinds worse). Its measured edges
  map it piecewise-linearly onto 0-89 %: *very similar* from 75 %,
  *similar* from 50 %, *unrelated* below; a typical unrelated pair reads 0 %.

Bands, as measured on photos the calibration did not see:

* *same design*: re-exports, crops, recolours, mirror images and small
  rotations of one picture (at least 99 % of such copies score here, the
  picture check included), not different garments, however alike;
* *very similar* and *similar*: different pictures that, from this score
  up, are the same kind of garment at least 85 % (resp. 50 %) of the time,
  measured on pairs of photos by different senders;
* *unrelated*: the rest.

The file records the figures that decided each edge.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .augment import power_normalise, unit_rows
from .model import shipped_model_for

log = logging.getLogger(__name__)

FORMAT = "swimsearch-calibration/1"
#: Band names from the top down, and the percentage at which each begins.
BAND_NAMES = ("same design", "very similar", "similar", "unrelated")
BAND_PERCENT = (90.0, 75.0, 50.0, 0.0)


class CalibrationError(Exception):
    """The calibration file is missing, unreadable or made for another model (message is for the user)."""


@dataclass(frozen=True)
class Calibration:
    """Fixed reference statistics of one model file and the cosines -> percent curve.

    Attributes:
        model_sha256: the model file these statistics belong to.
        power: the power normalisation applied before centring.
        mean: (D,) the reference mean of power-normalised embeddings.
        edges: (same design: whitened cosine; very similar, similar, reads-0 %:
            centred cosines), where each band begins, aligned with BAND_PERCENT.
        figures: the measurements behind the edges (free-form, for people).
        projection: (D, d) the whitening of the same-design question, or None
            (then both questions read the centred cosine).
    """

    model_sha256: str
    power: float
    mean: np.ndarray
    edges: tuple[float, float, float, float]
    figures: dict = field(default_factory=dict)
    projection: np.ndarray | None = None
    #: (D,) mean of the reference set's plain (power 1) embeddings: the fixed
    #: centre for ranking vectors, so they no longer move with the catalogue.
    ranking_mean: np.ndarray | None = None

    def __post_init__(self) -> None:
        same, very, similar, zero = self.edges
        if not (1.0 > same and 1.0 > very > similar > zero):
            raise ValueError(f"band edges must fall strictly from 1.0: {self.edges}")

    def powered(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings power-normalised as both questions read them (float32, 2-d): pass them on with
        `powered=True` to compute this once for several of the methods below."""
        return power_normalise(np.atleast_2d(embeddings), self.power)

    def centred(self, embeddings: np.ndarray, *, powered: bool = False) -> np.ndarray:
        """Unit vectors whose dot products are the garment cosines (float64 for stable scores)."""
        x = np.atleast_2d(embeddings) if powered else self.powered(embeddings)
        return unit_rows(x.astype(np.float64) - self.mean)

    def vectors(self, embeddings: np.ndarray, *, powered: bool = False) -> np.ndarray:
        """Unit vectors whose dot products are the same-design cosines."""
        x = (np.atleast_2d(embeddings) if powered else self.powered(embeddings)).astype(np.float64) - self.mean
        return unit_rows(x if self.projection is None else x @ self.projection)

    def could_be_same(self, powered: np.ndarray, query_vectors: np.ndarray, margin: float = 0.01) -> np.ndarray:
        """(m,) bool: rows whose same-design cosine with any query vector might reach the *same design* edge.

        Args:
            powered: the rows' embeddings as `powered` gives them.
            query_vectors: (v, d) the queries' `vectors`.

        A float32 estimate of the cosines (a few times cheaper than `vectors`'
        float64 one, whose cost grows with every candidate scored); rows it
        puts more than `margin` below the edge score from their garment
        cosine alone (`percent`), so only the others need their exact
        same-design vectors. float32 errors here are about 1e-5, far inside
        the margin.
        """
        x = np.atleast_2d(powered) - self.mean.astype(np.float32)
        if self.projection is not None:
            x = x @ self._projection32
        rough = unit_rows(x) @ np.asarray(query_vectors, np.float32).T
        return np.asarray(rough.max(axis=1) >= self.edges[0] - margin, dtype=bool) if len(x) else np.zeros(0, bool)

    @functools.cached_property
    def _projection32(self) -> np.ndarray:
        assert self.projection is not None
        return self.projection.astype(np.float32)

    def percent(self, same_cosines: np.ndarray | float, garment_cosines: np.ndarray | float | None = None) -> np.ndarray:
        """Cosines -> similarity in percent, 0..100; 100 only for cosine 1 (the picture itself).

        Args:
            same_cosines: whitened cosines (the same-design question).
            garment_cosines: centred cosines of the same pairs (default: the same values).
        """
        same = np.asarray(same_cosines, dtype=np.float64)
        garment = same if garment_cosines is None else np.asarray(garment_cosines, dtype=np.float64)
        top, very, similar, zero = self.edges
        inside = BAND_PERCENT[0] + (100.0 - BAND_PERCENT[0]) * (same - top) / (1.0 - top)
        # below the same-design band the garment cosine decides, and never reaches it (89 % at most)
        below = np.interp(garment, [zero, similar, very, 1.0], [0.0, BAND_PERCENT[2], BAND_PERCENT[1], BAND_PERCENT[0] - 1.0])
        return np.where(same >= top, np.minimum(inside, 100.0), below)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Similarity in percent of each row of embeddings `a` with each row of `b` (len(a), len(b))."""
        same = np.clip(self.vectors(a) @ self.vectors(b).T, -1.0, 1.0)
        garment = np.clip(self.centred(a) @ self.centred(b).T, -1.0, 1.0)
        return self.percent(same, garment)

    def similarity_rows(self, queries: np.ndarray, catalogue: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Similarity in percent of each query embedding with its own result rows of `catalogue` ((q, k) rows)."""
        same = np.einsum("qd,qkd->qk", self.vectors(queries), self.vectors(catalogue)[rows])
        garment = np.einsum("qd,qkd->qk", self.centred(queries), self.centred(catalogue)[rows])
        return self.percent(np.clip(same, -1, 1), np.clip(garment, -1, 1))

    def arrays(self) -> bytes:
        """The statistics as an .npz file's bytes (mean, and the whitening when there is one)."""
        buffer = io.BytesIO()
        arrays: dict[str, np.ndarray] = {"mean": np.asarray(self.mean, dtype="<f8")}
        if self.projection is not None:
            arrays["projection"] = np.asarray(self.projection, dtype="<f4")
        if self.ranking_mean is not None:
            arrays["ranking_mean"] = np.asarray(self.ranking_mean, dtype="<f4")
        np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types keyword arrays as allow_pickle
        return buffer.getvalue()

    def to_dict(self, arrays_sha256: str) -> dict:
        return {
            "format": FORMAT,
            "model_sha256": self.model_sha256,
            "power": self.power,
            "whitened_dims": None if self.projection is None else int(self.projection.shape[1]),
            "arrays_sha256": arrays_sha256,
            "bands": [{"name": n, "from_percent": p, "from_cosine": c, "cosine": "whitened" if i == 0 else "centred"}
                      for i, (n, p, c) in enumerate(zip(BAND_NAMES, BAND_PERCENT, self.edges))],
            "figures": self.figures,
        }


def band(percent: float) -> str:
    """The named band of a similarity in percent, as shown: by its whole percent (`whole_percent`)."""
    return BAND_NAMES[int(band_levels(np.array([percent]))[0])]


def band_levels(percent: np.ndarray) -> np.ndarray:
    """Band of each percentage (0 same design .. 3 unrelated), decided on the whole percent people see.

    A score of 74.6 reads "75 %", so it is *very similar*: a band decided on
    the unrounded score would show "75 % · similar" beside a legend that says
    very similar starts at 75.
    """
    shown = whole_percents(np.atleast_1d(np.asarray(percent, dtype=np.float64)))
    return (shown[:, None] < np.array(BAND_PERCENT[:-1])).sum(axis=1).astype(np.int64)


def whole_percent(percent: float) -> int:
    """The one rounding rule for people: nearest whole percent, but only an exact 100 reads 100.

    A re-export that scores 99.7 % is not the picture itself, so it reads
    99; below 0 reads 0. CSV files keep the full precision beside it.
    """
    return int(whole_percents(np.array([percent], dtype=np.float64))[0])


def whole_percents(percent: np.ndarray) -> np.ndarray:
    """`whole_percent` of each value (a float array of whole numbers 0..100; not finite reads 0)."""
    value = np.asarray(percent, dtype=np.float64)
    finite = np.isfinite(value)
    value = np.where(finite, value, 0.0)
    shown = np.floor(value + 0.5)
    shown = np.where((shown >= 100) & (value < 100.0), 99.0, shown)
    return np.clip(np.where(finite, shown, 0.0), 0.0, 100.0)


def display_percent(percent: float) -> str:
    """`whole_percent` as text: "99 %"."""
    return f"{whole_percent(percent)} %"


def calibration_path(model_path: str | os.PathLike) -> Path:
    """Where the calibration of a model file lives: beside it, `<stem>.calibration.json` (+ `.npz` arrays)."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}.calibration.json")


def save_calibration(calibration: Calibration, path: str | os.PathLike) -> None:
    """Write the readable part (bands, figures) as JSON and the arrays beside it as .npz."""
    path = Path(path)
    arrays = calibration.arrays()
    path.with_suffix(".npz").write_bytes(arrays)
    text = json.dumps(calibration.to_dict(hashlib.sha256(arrays).hexdigest()), indent=1)
    path.write_text(text + "\n", encoding="utf-8")


def load_calibration(path: str | os.PathLike, model_sha256: str | None = None) -> Calibration:
    """Read a calibration file, checked against the model it is used with.

    Raises:
        CalibrationError: missing, damaged, or made for another model file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        edges = tuple(float(b["from_cosine"]) for b in data["bands"])
        arrays = path.with_suffix(".npz").read_bytes()
        if hashlib.sha256(arrays).hexdigest() != data["arrays_sha256"]:
            raise ValueError(f"{path.with_suffix('.npz').name} does not match it")
        with np.load(io.BytesIO(arrays)) as stored:
            mean = stored["mean"].astype(np.float64)
            projection = stored["projection"].astype(np.float64) if "projection" in stored.files else None
            ranking_mean = stored["ranking_mean"].astype(np.float32) if "ranking_mean" in stored.files else None
        calibration = Calibration(
            model_sha256=str(data["model_sha256"]),
            power=float(data["power"]),
            mean=mean,
            edges=edges,  # type: ignore[arg-type]
            figures=data.get("figures", {}),
            projection=projection,
            ranking_mean=ranking_mean,
        )
    except OSError as exc:
        raise CalibrationError(f"The similarity calibration {path} cannot be read ({exc.strerror or exc}).") from exc
    except (ValueError, KeyError, TypeError, EOFError) as exc:
        raise CalibrationError(f"The similarity calibration {path} is damaged ({exc}); make it again with models/make_calibration.py.") from exc
    if model_sha256 is not None and calibration.model_sha256 != model_sha256:
        raise CalibrationError(
            f"The similarity calibration {path} was made for another model file; "
            f"make it again with models/make_calibration.py --model <the model>."
        )
    return calibration


@functools.lru_cache(maxsize=8)
def shipped_calibration(model_sha256: str | None) -> Calibration | None:
    """The calibration shipped beside the model whose card states `model_sha256` (read once).

    None for a model SwimSearch does not ship (or one shipped without a
    calibration): its scores are then cosines of embeddings centred on the
    catalogue, without bands. A damaged calibration file is logged and
    treated the same way, so a search never fails over it.
    """
    model = shipped_model_for(model_sha256)
    if model is None or not calibration_path(model).is_file():
        return None
    try:
        return load_calibration(calibration_path(model), model_sha256)
    except CalibrationError as exc:
        log.warning("%s", exc)
        return None


# --- deciding the edges (used by models/make_calibration.py) --------------------------


def same_design_edge(copy_cosines: np.ndarray, keep: float = 0.99) -> float:
    """The cosine above which a fraction `keep` of transformed copies score."""
    return float(np.quantile(np.asarray(copy_cosines, dtype=np.float64), 1.0 - keep))


def label_agreement_edge(cosines: np.ndarray, same_label: np.ndarray, agreement: float, *, min_pairs: int = 100) -> float:
    """The lowest cosine such that the pairs from it upwards share their label at least `agreement` of the time.

    The reading a user gives a band: "from this score up, pairs are the same
    kind of garment 85 % of the time". The top `min_pairs` pairs always
    count, so a handful of lucky pairs cannot set the edge.
    """
    cos = np.asarray(cosines, dtype=np.float64)
    order = np.argsort(-cos, kind="stable")
    ranked = cos[order]
    cumulative = np.cumsum(np.asarray(same_label, dtype=np.float64)[order]) / np.arange(1, len(cos) + 1)
    ok = np.flatnonzero(cumulative[min_pairs - 1 :] >= agreement)
    if len(ok) == 0:
        return float(ranked[min(min_pairs, len(ranked)) - 1])  # never reached: the band holds only the very top
    return float(ranked[min_pairs - 1 + ok[-1]])


def whitening(embeddings: np.ndarray, power: float, dims: int | None, shrink: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Reference mean and PCA whitening (D, dims) of a reference set; dims None: centring only.

    Each principal direction is divided by sqrt(its variance + shrink x the
    mean kept variance): shrinkage keeps the weakest directions from being
    blown up into noise.
    """
    x = power_normalise(embeddings, power).astype(np.float64)
    mean = x.mean(axis=0)
    if dims is None:
        return mean, None
    values, vectors = np.linalg.eigh(np.cov((x - mean).T))
    values, vectors = values[::-1][:dims], vectors[:, ::-1][:, :dims]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])  # reproducible signs
    projection = vectors * signs / np.sqrt(np.maximum(values, 0) + shrink * values.mean())
    return mean, projection.astype(np.float32).astype(np.float64)  # as the file stores it
