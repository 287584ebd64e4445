"""The clothing set's cached embeddings with its labels and senders, and fast protocol scoring.

Loads the shared fp32 embedding cache (or any cache of the same layout made
with another model) and lines it up with labels.csv. Scoring follows the
data set's README: usable photos query the others, relevant = same label,
the query never counts; cross-sender drops gallery photos of the query's own
sender, same-sender keeps them. Unlabelled photos are not in the gallery
unless asked for as distractors (then they are always wrong answers).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swimsearch.metrics import average_precision

ROOT = Path(__file__).resolve().parent.parent
CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing"
EMBEDDINGS = Path("/work/cache/clothing-fp32.npz")
DEPTH = 100


@dataclass
class Clothing:
    names: np.ndarray  # (n,) "images/<file>" or "unlabelled/<file>"
    embeddings: np.ndarray  # (n, D) float32 trunk embeddings
    phash: np.ndarray  # (n,) uint64
    label: np.ndarray  # (n,) int label code, -1 unlabelled or not usable
    label_names: tuple[str, ...]
    sender: np.ndarray  # (n,) int sender code, -1 for unlabelled photos
    usable: np.ndarray  # (n,) bool: a labelled, usable photo (query and gallery)
    unlabelled: np.ndarray  # (n,) bool: a photo of unlabelled/ (distractor)

    @property
    def queries(self) -> np.ndarray:
        return np.flatnonzero(self.usable)

    def sender_halves(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Two boolean row masks splitting the labelled photos by sender (about half the photos each)."""
        senders = np.unique(self.sender[self.sender >= 0])
        rng = np.random.default_rng(seed)
        order = rng.permutation(senders)
        counts = np.bincount(self.sender[self.sender >= 0], minlength=senders.max() + 1)
        half, total, first = set(), 0, counts.sum() / 2
        for s in order:  # fill half A to about half of the photos
            if total + counts[s] <= first or not half:
                half.add(int(s))
                total += counts[s]
        a = np.isin(self.sender, list(half))
        b = (self.sender >= 0) & ~a
        return a, b


def load(path: Path = EMBEDDINGS, root: Path = CLOTHING) -> Clothing:
    data = np.load(path)
    names = data["names"]
    with open(root / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = {r["filename"]: r for r in csv.DictReader(fh)}
    label_names = tuple(sorted({r["label"] for r in rows.values() if r["usable"] == "True"}))
    senders = sorted({r["sender_id"] for r in rows.values()}, key=int)
    sender_code = {s: i for i, s in enumerate(senders)}
    n = len(names)
    label = np.full(n, -1, np.int64)
    sender = np.full(n, -1, np.int64)
    usable = np.zeros(n, bool)
    for i, name in enumerate(names):
        row = rows.get(str(name))
        if row is None:
            continue
        sender[i] = sender_code[row["sender_id"]]
        if row["usable"] == "True":
            usable[i] = True
            label[i] = label_names.index(row["label"])
    unlabelled = np.array([str(x).startswith("unlabelled/") for x in names])
    return Clothing(names, data["embeddings"].astype(np.float32), data["phash"].astype(np.uint64), label,
                    label_names, sender, usable, unlabelled)


def allowed_mask(data: Clothing, queries: np.ndarray, gallery: np.ndarray, *, cross_sender: bool) -> np.ndarray:
    """(len(queries), n) gallery rows each query may be compared with."""
    mask = np.broadcast_to(gallery, (len(queries), len(gallery))).copy()
    mask[np.arange(len(queries)), queries] = False
    if cross_sender:
        mask &= data.sender[None, :] != data.sender[queries][:, None]
    return mask


def hits_from_sims(data: Clothing, queries: np.ndarray, sims: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Top-100 hits of each query row of `sims` (len(queries), n) over its allowed rows."""
    sims = np.where(allowed, sims, -np.inf)
    top = np.argpartition(-sims, DEPTH, axis=1)[:, :DEPTH]
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return data.label[top] == data.label[queries][:, None]


def relevant_counts(data: Clothing, queries: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    same = data.label[None, :] == data.label[queries][:, None]
    return (same & allowed & (data.label[None, :] >= 0)).sum(axis=1)


def map10(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-query AP@10."""
    return average_precision(hits, n_relevant, 10)
