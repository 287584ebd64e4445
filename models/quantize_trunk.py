"""Quantise the fp32 trunk to int8 (static QDQ, per-channel), and prove the result.

Made from the committed fp32 ONNX (models/efficientnet-lite2-trunk.onnx) by
onnxruntime's quantiser alone (no PyTorch): the graph is first prepared with
onnxruntime's `quant_pre_process` (shape inference, constant folding of the
export's padding arithmetic), then every operator onnxruntime can quantise
gets QuantizeLinear/DequantizeLinear pairs (Conv with per-channel int8
weights, 7-bit in the dense convolutions, see below; Add and Pad on uint8 activations; each ReLU6 folds into the range of
the activation before it; the final mean stays float), calibrated (MinMax)
on a fixed list of clothing photos, models/calibration_photos.txt, run
through the app's own preprocessing. Both outputs, `embedding` and
`feature_map`, stay float32 and keep their names.

The weights of the dense (group 1) convolutions are quantised to 7 bits
(`reduce_range` for those tensors only). On x86 CPUs without VNNI (AVX2 only:
AMD Zen 1-3, Intel before Ice Lake) onnxruntime multiplies uint8 by int8 with
an instruction that saturates its 16-bit pair sums; 8-bit weights then give
other embeddings there than on VNNI CPUs (measured under `qemu-x86_64 -cpu
Haswell`: max difference 1.28, cosine to fp32 0.956 instead of 0.994), so a
catalogue built on one machine would not match queries made on another. With
7-bit weights the pair sums cannot saturate and the outputs were identical
on both. Depthwise convolutions run another kernel that does not saturate, so
they keep 8 bits. Measured on 64 held-out photos, cosine to fp32:
    all 8-bit weights (VNNI CPUs only)             0.994 mean, 0.981 worst
    7-bit dense weights (shipped)                   0.986 mean, 0.969 worst
    7-bit weights everywhere                        0.983 mean, 0.971 worst (9 photos)
    uint8 weights (no saturation either)            0.991 mean, 0.973 worst, but 1.5-3x
                                                    slower than fp32
    Conv layers alone quantised                     0.90 (each activation is quantised
                                                    before its ReLU6, over twice the range)
Percentile calibration (99.999) gave the same as MinMax, for 7x the time.

Proof, printed while quantising (the script fails if it does not hold):
  * both outputs present, `embedding` the spatial mean of `feature_map`;
  * cosine to the fp32 embedding on held-out photos (not calibration photos);
  * reference outputs for the test fixtures go to
    tests/data/trunk_int8_reference.json, the sha256 into models/MODEL_CARD.md;
  * then fold_pads.py makes its faster graph of the same numbers again.

Run (needs only the app's dependencies):
    python models/quantize_trunk.py                 # the shipped int8 model
    python models/quantize_trunk.py --make-list     # rewrite calibration_photos.txt from labels.csv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from swimsearch.images import load_image  # noqa: E402  (the app's own preprocessing)
from swimsearch.model import EMBEDDING_OUTPUT, FEATURE_MAP_OUTPUT, FP32_MODEL_FILE, INT8_MODEL_FILE, file_sha256  # noqa: E402
import fold_pads  # noqa: E402
from trunk_files import REFERENCE_IMAGES, set_card_sha256, write_reference  # noqa: E402

CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing"
CALIBRATION_LIST = HERE / "calibration_photos.txt"
REFERENCE_FILE = ROOT / "tests" / "data" / "trunk_int8_reference.json"
CALIBRATION_PHOTOS = 96
CALIBRATION_BATCH = 16
HELD_OUT_PHOTOS = 48


def calibration_names(labels_csv: Path, count: int) -> list[str]:
    """`count` usable labelled photos spread over every label and as many senders as possible.

    Labels take turns (so rare garments are calibrated too); each turn takes
    the label's next photo, in an order fixed by a hash of its file name, whose
    sender is not in the list yet. Deterministic: the same CSV gives the same list.
    """
    by_label: dict[str, list[tuple[str, str]]] = {}
    with open(labels_csv, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["usable"].strip().lower() == "true":
                by_label.setdefault(row["label"], []).append((row["filename"], row["sender_id"]))
    for rows in by_label.values():
        rows.sort(key=lambda r: hashlib.sha256(r[0].encode()).hexdigest())
    chosen: list[str] = []
    senders: set[str] = set()
    while len(chosen) < count and any(by_label.values()):
        for label in sorted(by_label):
            rows = by_label[label]
            pick = next((r for r in rows if r[1] not in senders), rows[0] if rows else None)
            if pick is None or len(chosen) == count:
                continue
            rows.remove(pick)
            chosen.append(pick[0])
            senders.add(pick[1])
    return sorted(chosen)


def read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def pixels_of(paths: list[Path], size: int) -> np.ndarray:
    """The graph's input for image files: NCHW float32 in [0, 1], as swimsearch.model feeds it."""
    batch = np.stack([load_image(path, size).pixels for path in paths]).transpose(0, 3, 1, 2)
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    batch *= np.float32(1.0 / 255.0)
    return batch


class Photos(CalibrationDataReader):
    """Feeds the calibration photos to the quantiser, CALIBRATION_BATCH at a time."""

    def __init__(self, names: list[str], size: int):
        paths = [CLOTHING / name for name in names]
        self._batches = iter([pixels_of(paths[i : i + CALIBRATION_BATCH], size) for i in range(0, len(paths), CALIBRATION_BATCH)])

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {"image": batch}


def dense_conv_weights(model: onnx.ModelProto) -> list[str]:
    """Weight tensors of the convolutions that are not depthwise (group 1)."""
    def group(node) -> int:
        return next((a.i for a in node.attribute if a.name == "group"), 1)

    return [n.input[1] for n in model.graph.node if n.op_type == "Conv" and group(n) == 1]


def quantize(fp32: Path, output: Path, names: list[str]) -> None:
    """fp32 ONNX -> int8 QDQ ONNX at `output`, calibrated on `names`."""
    size = int(onnx.load(str(fp32), load_external_data=False).graph.input[0].type.tensor_type.shape.dim[2].dim_value)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        seven_bits = {w: [{"axis": 0, "reduce_range": True}] for w in dense_conv_weights(onnx.load(str(prepared)))}
        quantize_static(
            str(prepared),
            str(output),
            Photos(names, size),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"TensorQuantOverrides": seven_bits},
        )


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    parts = [sess.run([EMBEDDING_OUTPUT, FEATURE_MAP_OUTPUT], {"image": x[i : i + 8]}) for i in range(0, len(x), 8)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def held_out(calibration: list[str], count: int) -> list[str]:
    """Usable labelled photos that are not calibration photos, in a fixed order."""
    taken = set(calibration)
    with open(CLOTHING / "labels.csv", newline="", encoding="utf-8") as fh:
        names = sorted(r["filename"] for r in csv.DictReader(fh) if r["usable"] == "True" and r["filename"] not in taken)
    return names[:: max(1, len(names) // count)][:count]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fp32", type=Path, default=HERE / FP32_MODEL_FILE)
    parser.add_argument("--output", type=Path, default=HERE / INT8_MODEL_FILE)
    parser.add_argument("--calibration", type=Path, default=CALIBRATION_LIST, help="list of clothing photos (default %(default)s)")
    parser.add_argument("--make-list", action="store_true", help="write the calibration list from labels.csv, then stop")
    parser.add_argument("--no-card", action="store_true", help="do not write the sha256 into MODEL_CARD.md or the references")
    args = parser.parse_args(argv)

    if args.make_list:
        names = calibration_names(CLOTHING / "labels.csv", CALIBRATION_PHOTOS)
        args.calibration.write_text(
            "# Calibration photos of the int8 trunk (paths under shared/datasets/clothing/).\n"
            f"# Made by: python models/quantize_trunk.py --make-list  ({len(names)} usable labelled photos,\n"
            "# labels taking turns, one photo per sender, ordered by a sha256 of the file name).\n"
            "# bench/bench_models.py leaves these photos out of its quality figures.\n" + "\n".join(names) + "\n"
        )
        print(f"wrote {len(names)} names to {args.calibration}")
        return 0

    names = read_list(args.calibration)
    print(f"calibrating on {len(names)} photos from {args.calibration.name}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    quantize(args.fp32, args.output, names)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")

    int8, fp32 = session(args.output), session(args.fp32)
    outputs = [o.name for o in int8.get_outputs()]
    if outputs != [EMBEDDING_OUTPUT, FEATURE_MAP_OUTPUT]:
        print(f"FAILED: the int8 graph's outputs are {outputs}")
        return 1
    size = int(int8.get_inputs()[0].shape[2])
    x = pixels_of([ROOT / p for p in REFERENCE_IMAGES] + [CLOTHING / n for n in held_out(names, HELD_OUT_PHOTOS)], size)
    embeddings, maps = run(int8, x)
    reference, _ = run(fp32, x)
    pooled = float(np.abs(maps.mean(axis=(2, 3)) - embeddings).max())
    cos = (embeddings * reference).sum(1) / (np.linalg.norm(embeddings, axis=1) * np.linalg.norm(reference, axis=1))
    print(f"feature map {tuple(maps.shape[1:])}; embedding vs the map's spatial mean: max |difference| {pooled:.2e}")
    print(f"cosine int8 vs fp32 embedding on {len(x)} photos not used to calibrate: mean {cos.mean():.4f}, worst {cos.min():.4f}")
    if pooled > 1e-4 or cos.mean() < 0.95:
        print("FAILED: the int8 graph does not pool its own map, or strays far from fp32")
        return 1
    if args.no_card:
        return 0
    digest = file_sha256(args.output)
    write_reference(
        REFERENCE_FILE,
        model_sha256=digest,
        embeddings=embeddings[:2],
        maps=maps[:2],
        made_by="python models/quantize_trunk.py (onnxruntime outputs of the int8 model)",
        onnxruntime=ort.__version__,
    )
    set_card_sha256(args.output, digest)
    print(f"sha256 {digest} written to MODEL_CARD.md; references to {REFERENCE_FILE.relative_to(ROOT)}")
    return fold_pads.main(["--model", str(args.output)])  # its faster graph of the same numbers, made again with it


if __name__ == "__main__":
    sys.exit(main())
