"""Similarity scores with one meaning: fixed reference statistics, a 0-100 % scale and named bands.

A cosine of embeddings centred on the catalogue's own mean moves with the
catalogue: the same two pictures scored 80 % in one catalogue and 0 % in
another. Here the statistics come from a fixed reference set, computed once
per model file (models/make_calibration.py) and shipped beside it, so the
score of a pair depends on the two pictures and the model only: a reference
mean, and a PCA whitening (principal directions scaled to equal variance,
with shrinkage), which measured far better at telling a copy of a picture
from a look-alike garment (it weighs the many weak directions that carry a
picture's particulars; it ranks garment kinds worse, so ranking does not use
it). The cosine is then mapped to a percentage by a piecewise-linear curve
whose knots are the measured band edges:

* *same design*: re-exports, crops, recolours, mirror images and small
  rotations of one picture (at least 99 % of such copies score here);
* *very similar* and *similar*: different pictures that are mostly (resp.
  more often than not) the same kind of garment, measured across senders;
* *unrelated*: the rest; a typical unrelated pair reads 0 %.

The file records the figures that decided each edge.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .augment import power_normalise

log = logging.getLogger(__name__)

FORMAT = "swimsearch-calibration/1"
#: Band names from the top down, and the percentage at which each begins.
BAND_NAMES = ("same design", "very similar", "similar", "unrelated")
BAND_PERCENT = (90.0, 75.0, 50.0, 0.0)


class CalibrationError(Exception):
    """The calibration file is missing, unreadable or made for another model (message is for the user)."""


@dataclass(frozen=True)
class Calibration:
    """Fixed reference statistics of one model file and the cosine -> percent curve.

    Attributes:
        model_sha256: the model file these statistics belong to.
        power: the power normalisation applied before centring.
        mean: (D,) the reference mean of power-normalised embeddings.
        projection: (D, d) whitening applied after centring, or None.
        edges: cosines where each band begins, top down, aligned with
            BAND_PERCENT: same design, very similar, similar, and the cosine
            that reads 0 %.
        figures: the measurements behind the edges (free-form, for people).
    """

    model_sha256: str
    power: float
    mean: np.ndarray
    edges: tuple[float, float, float, float]
    figures: dict = field(default_factory=dict)
    projection: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not all(a > b for a, b in zip((1.0,) + self.edges, self.edges)):
            raise ValueError(f"band edges must fall strictly from 1.0: {self.edges}")

    def vectors(self, embeddings: np.ndarray) -> np.ndarray:
        """Unit vectors whose dot products are the calibrated cosines (float64 for stable scores)."""
        x = power_normalise(np.atleast_2d(embeddings), self.power).astype(np.float64) - self.mean
        if self.projection is not None:
            x = x @ self.projection
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    def cosine(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Calibrated cosine of each row of embeddings `a` with each row of `b` (len(a), len(b))."""
        return np.clip(self.vectors(a) @ self.vectors(b).T, -1.0, 1.0)

    def percent(self, cosines: np.ndarray | float) -> np.ndarray:
        """Cosine -> similarity in percent, 0..100, monotone; cosine 1 is 100 %."""
        knots_c = np.array((1.0,) + self.edges)[::-1]
        knots_p = np.array((100.0,) + BAND_PERCENT)[::-1]
        return np.interp(np.asarray(cosines, dtype=np.float64), knots_c, knots_p)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Similarity in percent of each row of embeddings `a` with each row of `b`."""
        return self.percent(self.cosine(a, b))

    def arrays(self) -> bytes:
        """The statistics as an .npz file's bytes (mean, and the whitening when there is one)."""
        buffer = io.BytesIO()
        extra = {} if self.projection is None else {"projection": np.asarray(self.projection, dtype="<f4")}
        np.savez(buffer, mean=np.asarray(self.mean, dtype="<f8"), **extra)
        return buffer.getvalue()

    def to_dict(self, arrays_sha256: str) -> dict:
        return {
            "format": FORMAT,
            "model_sha256": self.model_sha256,
            "power": self.power,
            "whitened_dims": None if self.projection is None else int(self.projection.shape[1]),
            "arrays_sha256": arrays_sha256,
            "bands": [{"name": n, "from_percent": p, "from_cosine": c} for n, p, c in zip(BAND_NAMES, BAND_PERCENT, self.edges)],
            "figures": self.figures,
        }


def band(percent: float) -> str:
    """The named band a similarity in percent falls in."""
    for name, lower in zip(BAND_NAMES, BAND_PERCENT):
        if percent >= lower:
            return name
    return BAND_NAMES[-1]


def display_percent(percent: float) -> str:
    """The one rounding rule for people: nearest whole percent, but only an exact 100 reads "100 %".

    A re-export that scores 99.7 % is not the picture itself, so it reads
    "99 %"; CSV files keep the full precision instead of this text.
    """
    value = float(percent)
    shown = int(np.floor(value + 0.5))
    if shown >= 100 and value < 100.0:
        shown = 99
    return f"{max(shown, 0)} %"


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
        calibration = Calibration(
            model_sha256=str(data["model_sha256"]),
            power=float(data["power"]),
            mean=mean,
            edges=edges,  # type: ignore[arg-type]
            figures=data.get("figures", {}),
            projection=projection,
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


# --- deciding the edges (used by models/make_calibration.py) --------------------------


def same_design_edge(copy_cosines: np.ndarray, keep: float = 0.99) -> float:
    """The cosine above which a fraction `keep` of transformed copies score."""
    return float(np.quantile(np.asarray(copy_cosines, dtype=np.float64), 1.0 - keep))


def label_agreement_edge(cosines: np.ndarray, same_label: np.ndarray, agreement: float, *, bins: int = 40) -> float:
    """The lowest cosine from which pairs share their label at least `agreement` of the time.

    Pairs are sorted by cosine and cut into bins of equal count; the edge is
    the lower end of the lowest bin from which every bin above agrees at
    least that often (so the band is one interval, robust to noisy bins).
    """
    order = np.argsort(np.asarray(cosines, dtype=np.float64))
    cos = np.asarray(cosines, dtype=np.float64)[order]
    same = np.asarray(same_label, dtype=np.float64)[order]
    parts = np.array_split(np.arange(len(cos)), bins)
    rates = np.array([same[p].mean() for p in parts])
    ok = rates >= agreement
    if not ok[-1]:
        return float(cos[-1])  # never reached: the band starts above every measured pair
    first = len(ok) - int(np.argmin(ok[::-1])) if not ok.all() else 0
    return float(cos[parts[first][0]])


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
