"""Write the int8 trunk's padding into its convolutions: the same network, run about 3 ms faster.

The export pads each convolution's input explicitly (TensorFlow "SAME"
padding is asymmetric at stride 2, which PyTorch's Conv2d cannot say), and
the quantiser keeps each of those 22 Pad nodes in float between a
DequantizeLinear and a QuantizeLinear of the same scale. onnxruntime then
fuses every convolution into a QLinearConv, but leaves the 22 float round
trips around them: about 5 ms of a 14 ms pass on a 2-core machine.

An ONNX Conv takes its padding as an attribute, asymmetric ones too, and a
QLinearConv pads with its input's zero point, which is what the quantised
Pad wrote (float 0 at that scale). So each

    x -> DequantizeLinear -> Pad -> QuantizeLinear -> DequantizeLinear -> Conv

becomes `x -> DequantizeLinear -> Conv(pads=...)`, and the outputs are the
same numbers, bit for bit; the script checks that on real photos and fails
otherwise.

The result ships beside the int8 file as `<name>.pads-folded.onnx`, with its
own sha256 line in the model card. It is not another model: catalogues,
calibrations and array caches keep naming the int8 file and its sha256
(`swimsearch.model.Embedder` runs the folded graph when its line matches and
it names the file's sha256 as the one it was folded from, else the file
itself), so no catalogue is embedded again.

Run (needs the `export` extra's `onnx`; quantize_trunk.py runs it too):
    python models/fold_pads.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from swimsearch.images import load_image  # noqa: E402  (the app's own preprocessing)
from swimsearch.model import FOLDED_FROM, INT8_MODEL_FILE, file_sha256, folded_graph_path  # noqa: E402
from trunk_files import REFERENCE_IMAGES, set_card_sha256  # noqa: E402

CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing" / "images"
#: Photos the outputs are compared on, beside the two reference fixtures.
CHECK_PHOTOS = 64


def fold(model: onnx.ModelProto) -> int:
    """Fold each quantised Pad into the convolution it feeds, in place; how many were folded.

    A Pad that does not sit exactly in the pattern above (another mode, a pad
    value, a crop, chosen axes, other scales or zero points, more than one
    reader, a graph output, a Conv that pads itself by auto_pad) is left as it is.
    """
    graph = model.graph
    producer = {name: node for node in graph.node for name in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    constants = {t.name: t for t in graph.initializer}
    gone: list[onnx.NodeProto] = []
    outputs = {o.name for o in graph.output}
    for pad in [n for n in graph.node if n.op_type == "Pad"]:
        if len(pad.input) < 2 or (len(pad.input) > 3 and pad.input[3]):  # pads as an attribute (before opset 11), axes
            continue
        before = producer.get(pad.input[0])
        after = readers.get(pad.output[0], [])
        if before is None or before.op_type != "DequantizeLinear" or len(after) != 1 or after[0].op_type != "QuantizeLinear":
            continue
        quantise = after[0]
        dequantise = readers.get(quantise.output[0], [])
        conv = readers.get(dequantise[0].output[0], []) if len(dequantise) == 1 else []
        if (
            list(quantise.input[1:]) != list(before.input[1:])  # the same scale and zero point all along
            or len(dequantise) != 1 or list(dequantise[0].input[1:]) != list(before.input[1:])
            or outputs & {pad.output[0], quantise.output[0], dequantise[0].output[0]}  # a value the graph gives out
            or any(a.name == "mode" and a.s != b"constant" for a in pad.attribute)
            or (len(pad.input) > 2 and pad.input[2])  # a pad value other than 0
            or pad.input[1] not in constants
            or dequantise[0].op_type != "DequantizeLinear"
            or len(conv) != 1 or conv[0].op_type != "Conv" or conv[0].input[0] != dequantise[0].output[0]
        ):
            continue
        amounts = numpy_helper.to_array(constants[pad.input[1]]).tolist()  # N, C, H, W begins, then ends
        old = [a for a in conv[0].attribute if a.name == "pads"]
        if (
            len(amounts) != 8 or amounts[0] or amounts[1] or amounts[4] or amounts[5] or min(amounts) < 0  # a crop
            or any(any(a.ints) for a in old)
            or any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv[0].attribute)
        ):
            continue
        for attribute in old:
            conv[0].attribute.remove(attribute)
        conv[0].attribute.append(helper.make_attribute("pads", [amounts[2], amounts[3], amounts[6], amounts[7]]))
        dequantise[0].input[0] = before.input[0]
        gone += [pad, quantise] + ([before] if len(readers[before.output[0]]) == 1 and before.output[0] not in outputs else [])
    for node in gone:
        graph.node.remove(node)
    left = {name for node in gone for name in node.input} - {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name in left]:  # the pads' amounts and what else they alone read
        graph.initializer.remove(tensor)
    return sum(n.op_type == "Pad" for n in gone)


def _session(source: Path | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(source if isinstance(source, bytes) else str(source), options, providers=["CPUExecutionProvider"])


def _largest_difference(model: Path, folded: Path) -> float:
    """The largest difference between the two graphs' outputs on the reference fixtures and CHECK_PHOTOS photos."""
    first, second = _session(model), _session(folded)
    size = int(first.get_inputs()[0].shape[2])
    photos = [ROOT / p for p in REFERENCE_IMAGES] + sorted(CLOTHING.glob("*.jpg"))[:: 5398 // CHECK_PHOTOS][:CHECK_PHOTOS]
    names = [o.name for o in first.get_outputs()]
    worst = 0.0
    for photo in photos:
        x = load_image(photo, size).pixels[None].transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1.0 / 255.0)
        for a, b in zip(first.run(names, {"image": x}), second.run(names, {"image": x})):
            worst = max(worst, float(np.abs(a - b).max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=HERE / INT8_MODEL_FILE)
    parser.add_argument("--no-card", action="store_true", help="do not write the sha256 into MODEL_CARD.md")
    args = parser.parse_args(argv)

    model = onnx.load(str(args.model))
    folded = fold(model)
    model.metadata_props.append(onnx.StringStringEntryProto(key=FOLDED_FROM, value=file_sha256(args.model)))
    output = folded_graph_path(args.model)
    trial = output.with_name(output.name + ".part")  # in place only once proven: a failed fold leaves nothing beside the model
    try:
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(trial))
        worst = _largest_difference(args.model, trial)
    except Exception as exc:  # noqa: BLE001 - onnx and onnxruntime raise their own untyped errors
        trial.unlink(missing_ok=True)
        print(f"FAILED: the folded graph does not load or run: {exc}")
        return 1
    print(f"folded {folded} Pad nodes into their convolutions; outputs of the two graphs: max |difference| {worst}")
    if folded == 0 or worst != 0.0:
        trial.unlink()
        print("FAILED: nothing was folded, or the folded graph gives other numbers")
        return 1
    trial.replace(output)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    if not args.no_card:
        digest = file_sha256(output)
        set_card_sha256(output, digest)
        print(f"sha256 {digest} written to MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
