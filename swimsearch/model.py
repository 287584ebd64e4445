"""The trunk of the deep hash network: an ONNX EfficientNet-Lite2 that embeds images.

The model file ships in `models/` with a model card that states its sha256;
the file is checked against it when opened, so a damaged or swapped model is
reported in plain words instead of giving silently wrong results.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from .paths import models_dir

log = logging.getLogger(__name__)

MODEL_FILE = "efficientnet-lite2-trunk.onnx"
MODEL_CARD = "MODEL_CARD.md"
_SHA_LINE = re.compile(r"^sha256:\s*([0-9a-f]{64})\s*$", re.MULTILINE)


class ModelError(Exception):
    """The model file is missing, damaged or cannot be loaded (message is for the user)."""


class ImageEmbedder(Protocol):
    """What the build and the search need of a trunk: `Embedder`, or a test's tiny stand-in."""

    name: str  # shown to users and stored in catalogues
    sha256: str  # identifies the weights: embeddings of another model are stale
    size: int  # side of the square images it takes
    dim: int  # floats per embedding

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """(n, size, size, 3) uint8 RGB -> (n, dim) float32."""
        ...


def default_model_path() -> Path:
    """The ONNX trunk that ships with this installation."""
    return models_dir() / MODEL_FILE


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_sha256(model_path: str | os.PathLike) -> str | None:
    """The sha256 stated by the model card beside `model_path`, or None without a card."""
    card = Path(model_path).with_name(MODEL_CARD)
    try:
        match = _SHA_LINE.search(card.read_text(encoding="utf-8"))
    except OSError:
        return None
    return match.group(1) if match else None


class Embedder:
    """Runs the ONNX trunk on batches of square RGB images.

    Open it in the thread that uses it (onnxruntime sessions are not shared
    across the app's worker threads).

    Args:
        model_path: the `.onnx` file.
        threads: onnxruntime intra-op threads; None means all cores.
        verify: check the file against the sha256 in the model card beside it.
    """

    def __init__(self, model_path: str | os.PathLike, threads: int | None = None, *, verify: bool = True):
        import onnxruntime as ort  # heavy import: only when a model is really opened

        self.path = Path(model_path)
        if not self.path.is_file():
            raise ModelError(f"The model file {self.path} is missing. Reinstall SwimSearch or restore the file.")
        self.sha256 = file_sha256(self.path)
        if verify:
            expected = card_sha256(self.path)
            if expected is None:
                raise ModelError(
                    f"The model card {self.path.with_name(MODEL_CARD)} is missing or states no sha256, "
                    f"so the model file {self.path} cannot be checked."
                )
            if expected != self.sha256:
                raise ModelError(
                    f"The model file {self.path} is damaged or is not the model this version expects "
                    f"(its sha256 does not match the model card). Reinstall SwimSearch or restore the file."
                )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle onnxruntime threads spin for a while after each run; with image
        # decoding running beside inference on few cores that spinning steals
        # the CPU the decoder needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"The model file {self.path} cannot be loaded: {exc}") from exc
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 4 or not isinstance(shape[2], int) or shape[2] != shape[3]:
            raise ModelError(f"The model file {self.path} does not take square images (input shape {shape}).")
        self._input = inputs[0].name
        self._output = outputs[0].name
        self.size: int = int(shape[2])
        self.dim: int = int(outputs[0].shape[-1])
        self.name: str = f"{self.path.stem}@{self.size}"
        log.info("model %s (%s..., %d threads)", self.name, self.sha256[:12], options.intra_op_num_threads)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Embed (n, size, size, 3) uint8 RGB images -> (n, dim) float32."""
        if pixels.ndim == 3:
            pixels = pixels[None]
        if pixels.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected (n, {self.size}, {self.size}, 3) pixels, got {pixels.shape}")
        batch = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32)
        batch *= np.float32(1.0 / 255.0)
        out: np.ndarray = self._session.run([self._output], {self._input: batch})[0]
        return out
