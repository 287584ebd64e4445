"""The trunk of the deep hash network: an ONNX EfficientNet-Lite2 that embeds images.

Two model files ship in `models/`: the fp32 export and an int8 (static QDQ)
quantisation of it. One model card beside them states each file's sha256 on
a line `sha256: <hex> <file name>`; a file is checked against its line when
opened, so a damaged or swapped model is reported in plain words instead of
giving silently wrong results. Both graphs give, from one pass, the pooled
`embedding` and the head's `feature_map` it pools (for region search).

The int8 file has a sibling, `<name>.pads-folded.onnx`: the same graph with
its explicit padding folded into the convolutions (models/fold_pads.py), bit
for bit the same outputs, about 3 ms faster a picture. It is what runs when
its own card line matches; the model's identity (what catalogues record) stays
the file's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .paths import models_dir

log = logging.getLogger(__name__)

FP32_MODEL_FILE = "efficientnet-lite2-trunk.onnx"
INT8_MODEL_FILE = "efficientnet-lite2-trunk-int8.onnx"
#: The model a new catalogue is built with unless the user names another: the
#: int8 one, about 2x faster, held the quality gate of issue 15 (clothing
#: cross-sender mAP@10 1.0006 x fp32; transformed copies found as often); see
#: models/MODEL_CARD.md and bench/bench_models.py.
MODEL_FILE = INT8_MODEL_FILE
MODEL_CARD = "MODEL_CARD.md"
#: The name ending of a model file's faster graph of the same numbers (see above).
FOLDED_SUFFIX = ".pads-folded.onnx"
#: The folded graph's metadata entry naming the sha256 of the file it was folded from.
FOLDED_FROM = "folded_from_sha256"
#: Output names of the graphs made by models/export_trunk.py and quantize_trunk.py.
EMBEDDING_OUTPUT = "embedding"
FEATURE_MAP_OUTPUT = "feature_map"
_SHA_LINE = re.compile(r"^sha256:[ \t]*([0-9a-f]{64})[ \t]+(\S+)[ \t]*$", re.MULTILINE)


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
    """The ONNX trunk that new catalogues are built with."""
    return models_dir() / MODEL_FILE


def shipped_model_paths() -> list[Path]:
    """Every ONNX trunk that ships with this installation (default first)."""
    return [models_dir() / name for name in dict.fromkeys((MODEL_FILE, FP32_MODEL_FILE, INT8_MODEL_FILE))]


def shipped_model_for(sha256: str | None) -> Path | None:
    """The shipped model file whose card line states `sha256` (a catalogue's model), or None."""
    if not sha256:
        return None
    for path in shipped_model_paths():
        if path.is_file() and card_sha256(path) == sha256:
            return path
    return None


def describe_model(name: str | None, sha256: str | None) -> str:
    """A model as a user reads it: its name and the start of its sha256."""
    if not name and not sha256:
        return "an unknown model"
    return f"{name or 'an unnamed model'} (sha256 {(sha256 or '?')[:12]}...)"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_sha256(model_path: str | os.PathLike) -> str | None:
    """The sha256 the model card beside `model_path` states for that file, or None."""
    path = Path(model_path)
    try:
        text = path.with_name(MODEL_CARD).read_text(encoding="utf-8")
    except OSError:
        return None
    stated = {name: digest for digest, name in _SHA_LINE.findall(text)}
    return stated.get(path.name)


def folded_graph_path(model_path: str | os.PathLike) -> Path:
    """Where the model file's graph with its padding folded into the convolutions lies (if it ships)."""
    path = Path(model_path)
    return path.with_name(path.stem + FOLDED_SUFFIX)


def folded_graph(model_path: Path) -> Path | None:
    """The folded graph beside `model_path` when its sha256 matches its line in the model card, else None.

    One that cannot be used is not run: the file gives the same numbers, only
    slower, so the reason is said in the log. (One folded from another file,
    left when the model was made again, is told by its FOLDED_FROM entry once
    opened: `Embedder`.)
    """
    folded = folded_graph_path(model_path)
    if not (folded.exists() or folded.is_symlink()):
        return None
    if not folded.is_file():
        reason = "is not a file"
    else:
        try:
            stated, actual = card_sha256(folded), file_sha256(folded)
        except OSError as exc:
            reason = f"cannot be read ({exc.strerror or exc})"
        else:
            if stated == actual:
                return folded
            reason = "has no line in the model card" if stated is None else "does not match its line in the model card"
    log.warning("%s %s: %s is run instead (the same numbers, slower)", folded, reason, model_path.name)
    return None


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
        if self.path.name.endswith(FOLDED_SUFFIX):
            model = self.path.with_name(self.path.name[: -len(FOLDED_SUFFIX)] + ".onnx")
            raise ModelError(
                f"{self.path.name} is not a model of its own: it is the faster graph SwimSearch runs for {model.name}, "
                f"which gives the same numbers. Name that file instead: --model {model}"
            )
        if not self.path.is_file():
            raise ModelError(f"The model file {self.path} is missing. Reinstall SwimSearch or restore the file.")
        self.sha256 = file_sha256(self.path)
        if verify:
            expected = card_sha256(self.path)
            if expected is None:
                raise ModelError(
                    f"The model card {self.path.with_name(MODEL_CARD)} is missing or states no sha256 "
                    f"for {self.path.name}, so the model file {self.path} cannot be checked."
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
        def session_of(graph: Path) -> Any:
            return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

        #: The graph file onnxruntime runs: the model file, or its folded sibling (the same outputs).
        self.graph = self.path
        folded = folded_graph(self.path)
        if folded is not None:
            try:
                session = session_of(folded)
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
                log.warning("%s cannot be loaded (%s): %s is run instead (the same numbers, slower)", folded, exc, self.path.name)
            else:
                if session.get_modelmeta().custom_metadata_map.get(FOLDED_FROM) == self.sha256:
                    self.graph, self._session = folded, session
                else:
                    log.warning("%s was folded from another %s: the file itself is run", folded, self.path.name)
        if self.graph == self.path:
            try:
                self._session = session_of(self.path)
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
                raise ModelError(f"The model file {self.path} cannot be loaded: {exc}") from exc
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 4 or not isinstance(shape[2], int) or shape[2] != shape[3]:
            raise ModelError(f"The model file {self.path} does not take square images (input shape {shape}).")
        by_name = {o.name: o for o in outputs}
        embedding = by_name.get(EMBEDDING_OUTPUT, outputs[0])  # a foreign one-output graph still embeds
        feature_map = by_name.get(FEATURE_MAP_OUTPUT)
        self._input = inputs[0].name
        self._output = embedding.name
        self._outputs = [embedding.name] + ([feature_map.name] if feature_map is not None else [])
        self.size: int = int(shape[2])
        self.dim: int = int(embedding.shape[-1])
        #: Whether embed_with_maps() works: the graph also gives the head's feature map.
        self.has_feature_map: bool = feature_map is not None
        #: (channels, rows, columns) of one image's feature map, or None without one.
        self.feature_map_shape: tuple[int, int, int] | None = None
        if feature_map is not None:
            channels, rows, columns = (int(d) for d in feature_map.shape[1:])
            self.feature_map_shape = (channels, rows, columns)
        self.name: str = f"{self.path.stem}@{self.size}"
        log.info("model %s (%s..., %d threads, running %s)", self.name, self.sha256[:12], options.intra_op_num_threads,
                 self.graph.name)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Embed (n, size, size, 3) uint8 RGB images -> (n, dim) float32.

        Asks onnxruntime for the embedding alone: the feature map is computed
        anyway, but not copied out (no measurable difference in time, see the
        model card), and a caller that does not need it holds no 250 KB per image.
        """
        out: np.ndarray = self._session.run([self._output], {self._input: self._batch(pixels)})[0]
        return out

    def embed_with_maps(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embed (n, size, size, 3) uint8 RGB images and keep the feature maps, from one pass.

        Returns:
            (embeddings, maps): (n, dim) float32 as from embed(), and the head
            activation they pool, (n, channels, rows, columns) float32 (for the
            shipped trunks at 224: (n, 1280, 7, 7); embeddings == maps.mean((2, 3))).

        Raises:
            ModelError: the model file has no `feature_map` output.
        """
        if not self.has_feature_map:
            raise ModelError(
                f"The model file {self.path} gives no feature map, so it cannot search by a detail of a picture."
            )
        embeddings, maps = self._session.run(self._outputs, {self._input: self._batch(pixels)})
        return embeddings, maps

    def _batch(self, pixels: np.ndarray) -> np.ndarray:
        """(n, size, size, 3) uint8 (or one (size, size, 3) image) -> the graph's NCHW float32 in [0, 1]."""
        if pixels.ndim == 3:
            pixels = pixels[None]
        if pixels.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected (n, {self.size}, {self.size}, 3) pixels, got {pixels.shape}")
        batch = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32)
        batch *= np.float32(1.0 / 255.0)
        return batch
