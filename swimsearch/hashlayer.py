"""The hash layer: a linear projection y = (e - mean) W + b fitted to each catalogue.

The trunk was trained on ImageNet; a catalogue of swimsuits is not ImageNet,
so the last layer adapts to it in seconds, on a CPU, without PyTorch. Two
variants:

* ``pca``: the top principal directions of the catalogue's embeddings.
* ``laplacian``: the swimsuit paper's objective. Images in the same k-means
  cluster (or the same subfolder, when labels are used) are "similar"
  (similarity matrix A, one clique per cluster); W minimises tr(Yᵀ L Y),
  L = D - A, under decorrelated outputs Yᵀ D Y = I: a linear
  locality-preserving projection, solved as a small generalised
  eigenproblem. With cluster cliques XᵀAX is a sum of per-cluster outer
  products, so no n x n matrix is ever formed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.linalg import eigh

log = logging.getLogger(__name__)

VARIANTS = ("pca", "laplacian")


@dataclass(frozen=True)
class HashLayer:
    """y = (e - mean) @ weights + bias; float32 throughout."""

    mean: np.ndarray  # (D,)
    weights: np.ndarray  # (D, d)
    bias: np.ndarray  # (d,)
    variant: str

    @property
    def dim(self) -> int:
        return self.weights.shape[1]

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, D) embeddings -> (n, d) float32 hash-layer outputs."""
        centred = np.asarray(embeddings, dtype=np.float32) - self.mean
        return centred @ self.weights + self.bias


def principal_directions(centred: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Top `dim` eigenvectors (D, dim) and eigenvalues of the covariance of centred rows."""
    cov = (centred.T.astype(np.float64) @ centred.astype(np.float64)) / max(len(centred) - 1, 1)
    size = cov.shape[0]
    dim = min(dim, size)
    # NumPy's eigh lets other threads run while LAPACK works; SciPy's holds the
    # GIL (~170 ms for a 1280 x 1280 covariance), which froze the desktop
    # app's GUI thread during a build's fit. The full solve costs about the
    # same here, and the top directions agree with the subset solve to 1e-13.
    values, vectors = np.linalg.eigh(cov)
    values, vectors = values[size - dim :], vectors[:, size - dim :]
    order = np.argsort(values)[::-1]
    vectors = vectors[:, order]
    # Fix the sign of each direction (largest loading positive) so refits are reproducible.
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return (vectors * signs).astype(np.float32), values[order]


def fit_pca(embeddings: np.ndarray, dim: int) -> HashLayer:
    """Plain PCA projection to `dim` outputs (no whitening: it measured worse)."""
    mean = embeddings.mean(axis=0, dtype=np.float64).astype(np.float32)
    vectors, _ = principal_directions(embeddings - mean, dim)
    return HashLayer(mean=mean, weights=vectors, bias=np.zeros(vectors.shape[1], np.float32), variant="pca")


def cluster_labels(points: np.ndarray, clusters: int, *, seed: int = 0) -> np.ndarray:
    """k-means cluster index per row (scipy's kmeans2 with k-means++ seeding)."""
    clusters = max(2, min(clusters, len(points) // 2))
    _, labels = kmeans2(points.astype(np.float64), clusters, minit="++", seed=seed, iter=20)
    return labels


def fit_laplacian(
    embeddings: np.ndarray,
    dim: int,
    *,
    labels: np.ndarray | None = None,
    clusters: int | None = None,
    pre_dim: int = 256,
    regularisation: float = 1e-3,
    seed: int = 0,
) -> HashLayer:
    """The swimsuit paper's hash layer: locality-preserving projection over cluster cliques.

    Args:
        embeddings: (n, D) catalogue embeddings.
        dim: outputs d.
        labels: optional class per row (e.g. subfolder names as ints); k-means otherwise.
        clusters: k for k-means (default 2 * dim, at most n/2).
        pre_dim: PCA first to this many dimensions, which keeps the d x d
            eigenproblem small and well conditioned.
        regularisation: ridge added to XᵀDX, relative to its mean diagonal.
    """
    mean = embeddings.mean(axis=0, dtype=np.float64).astype(np.float32)
    centred = embeddings - mean
    basis, _ = principal_directions(centred, max(dim, pre_dim))
    x = (centred @ basis).astype(np.float64)  # (n, p)
    if labels is None:
        labels = cluster_labels(x, clusters or 2 * dim, seed=seed)
    _, labels = np.unique(np.asarray(labels), return_inverse=True)
    counts = np.bincount(labels).astype(np.float64)
    degree = counts[labels]  # D_ii: size of i's clique
    xdx = (x * degree[:, None]).T @ x
    sums = np.zeros((len(counts), x.shape[1]))
    np.add.at(sums, labels, x)
    xax = sums.T @ sums  # sum over clusters of (sum_i x_i)(sum_i x_i)^T
    xlx = xdx - xax
    xdx += np.eye(len(xdx)) * regularisation * np.trace(xdx) / len(xdx)
    dim = min(dim, x.shape[1])
    _, vectors = eigh(xlx, xdx, subset_by_index=[0, dim - 1])
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(dim)])
    # Unit-length directions, not the unit-variance outputs the constraint
    # YᵀDY = I gives: that whitening stretched noise directions as much as
    # informative ones and cost 20 points of codes-only mAP on the clothing set.
    vectors = vectors * signs / np.linalg.norm(vectors, axis=0)
    weights = (basis.astype(np.float64) @ vectors).astype(np.float32)
    log.info("laplacian hash layer: %d outputs from %d clusters over %d images", dim, len(counts), len(x))
    return HashLayer(mean=mean, weights=weights, bias=np.zeros(dim, np.float32), variant="laplacian")


def fit_hash_layer(
    embeddings: np.ndarray, dim: int, variant: str, *, labels: np.ndarray | None = None, seed: int = 0
) -> HashLayer:
    """Fit the configured variant."""
    if variant == "pca":
        return fit_pca(embeddings, dim)
    if variant == "laplacian":
        return fit_laplacian(embeddings, dim, labels=labels, seed=seed)
    raise ValueError(f"unknown hash layer variant {variant!r} (choose from {', '.join(VARIANTS)})")
