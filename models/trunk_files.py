"""What the model scripts write beside a trunk: its sha256 line in the card and its CI references.

Shared by export_trunk.py (fp32, needs PyTorch) and quantize_trunk.py (int8,
needs only onnxruntime), so both models are recorded and checked the same way.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from swimsearch.model import MODEL_CARD  # noqa: E402

#: The two test fixtures whose outputs CI compares with the saved references.
REFERENCE_IMAGES = ("tests/data/garment_a.jpg", "tests/data/garment_b.jpg")
#: Channels of the feature map kept in a reference: the image's strongest ones.
REFERENCE_CHANNELS = 8


def write_reference(
    path: Path, *, model_sha256: str, embeddings: np.ndarray, maps: np.ndarray, made_by: str, **extra
) -> None:
    """Save the embeddings and a slice of the feature maps of REFERENCE_IMAGES (rows 0 and 1).

    The whole map (62,720 floats per image) would bloat the repository; its
    REFERENCE_CHANNELS strongest channels at every cell catch a shifted or
    transposed map as surely.
    """
    channels = [np.argsort(-e, kind="stable")[:REFERENCE_CHANNELS] for e in embeddings[:2]]
    path.write_text(
        json.dumps(
            {
                "model_sha256": model_sha256,
                "images": list(REFERENCE_IMAGES),
                "embedding": [[round(float(v), 7) for v in row] for row in embeddings[:2]],
                "feature_map_shape": list(maps.shape[1:]),
                "feature_map_channels": [[int(c) for c in chosen] for chosen in channels],
                "feature_map": [
                    [[round(float(v), 7) for v in maps[i, c].ravel()] for c in chosen] for i, chosen in enumerate(channels)
                ],
                "made_by": made_by,
                **extra,
            },
            indent=0,
        )
        + "\n"
    )


def set_card_sha256(model_file: Path, digest: str) -> None:
    """Write `sha256: <digest> <file name>` into the model card beside `model_file`.

    Raises:
        SystemExit: the card has no such line for this file (add one by hand once).
    """
    card_path = model_file.with_name(MODEL_CARD)
    card = card_path.read_text(encoding="utf-8")
    pattern = rf"^(sha256: )[0-9a-f]{{64}}( +{re.escape(model_file.name)})$"
    card, count = re.subn(pattern, rf"\g<1>{digest}\g<2>", card, flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f"FAILED: {card_path.name} has no 'sha256: <64 hex digits> {model_file.name}' line to update")
    card_path.write_text(card, encoding="utf-8")
