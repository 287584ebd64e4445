"""Make resources/sample/: the small catalogue a new user can search at once.

Copies 35 labelled photos (varied garments, each from a different sender where
possible) from the public-domain clothing set beside the project
(../shared/datasets/clothing, CC0 1.0), under readable names, and adds one
re-exported copy (70 % size, JPEG quality 80) of a pair of shorts so the "duplicate"
mark can be seen. Run it again to make the same folder:

    .venv/bin/python tools/make_sample.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CLOTHING = ROOT.parent / "shared" / "datasets" / "clothing" / "images"
SAMPLE = ROOT / "resources" / "sample"

#: (clothing set image id, name in the sample)
PHOTOS = (
    ("f4106e52-0286-4971-975c-8ba4c060ba71", "body-01"),
    ("1a6601f1-4ad2-43c9-b1b6-d46e09995c7a", "top-01"),
    ("4e8edac8-e81c-4e2d-b0aa-462837a42c55", "top-02"),
    ("7c801522-2ef0-40b8-ae76-76c3f68cb1da", "top-03"),
    ("6b1355ff-cc52-4e2a-a870-e91e75b926fe", "top-04"),
    ("75b79a5b-641f-4f0a-bef4-088c21ae2e44", "top-05"),
    ("fcd8821f-80ff-4b8a-8f87-8be36ae7288d", "top-06"),
    ("455a4889-5b1d-41a3-a16b-d540aff1f2c6", "top-07"),
    ("d619091d-fc8d-4730-9f3c-2a042e876272", "shorts-01"),
    ("e0297a23-e6d1-459d-b37b-76c6e5c60955", "shorts-02"),
    ("0ed80b93-67c9-45bc-b16d-d926b79b9782", "shorts-03"),
    ("cb8b6e4d-3d27-4de8-9442-208c78d7eed3", "shorts-04"),
    ("22ee2330-a2e7-4abf-aec1-0699e819a248", "dress-01"),
    ("d2db3c6a-605a-450c-b21f-dc5af1a513b1", "dress-02"),
    ("3175a932-43ce-46fd-8599-37f375b1f776", "dress-03"),
    ("be545b93-c60d-4be6-ae3a-64efd37b7fee", "dress-04"),
    ("ee7b4f87-ab2e-4387-9c7e-76f7da060f1e", "dress-05"),
    ("22cc2840-9a64-4d9f-8dbe-00e81fa4b2c1", "dress-06"),
    ("ad82f227-e35f-4268-a6e3-ef417bf96656", "skirt-01"),
    ("fdbcfdcd-5deb-4a20-9aef-b708831ef774", "skirt-02"),
    ("910268c2-a132-4d25-80b1-59812c52e65c", "skirt-03"),
    ("667a7349-f0a7-43bc-bb70-246b61e6354b", "skirt-04"),
    ("147f35c3-fd43-44c4-a212-86c5cf6545d4", "tshirt-01"),
    ("53e1ebfe-5216-4c95-b166-bee422a056f6", "tshirt-02"),
    ("00003aeb-ace5-43bf-9a0c-dc31a03e9cd2", "tshirt-03"),
    ("5d97eab8-e62b-49cf-b73e-7cec4951d9c2", "shirt-01"),
    ("c6d71611-6bae-4645-8a93-959973e05f8b", "shirt-02"),
    ("47ce5231-abc8-4ab3-8a84-8deeb79fabb2", "hat-01"),
    ("a9c5f50d-abad-46f0-9bc1-4cef08015143", "hat-02"),
    ("1aac00cd-b42a-40f1-a82a-dcc44a0879d4", "hat-03"),
    ("4dc09b5c-9009-4e75-8432-150b0fab4aac", "shoes-01"),
    ("c79342a6-6642-43f2-9822-a4eb22ebceb6", "shoes-02"),
    ("fe95832e-d72a-43e6-8e47-8aced8140835", "polo-01"),
    ("1a313444-17de-43ff-8a75-d02a81edbef4", "polo-02"),
    ("91774b48-eacb-4fd1-92a6-2073882a019f", "blouse-01"),
)

#: The photo re-exported smaller, and the name of the copy.
REEXPORT = ("shorts-04", "shorts-04-reexport")


def main() -> int:
    if not CLOTHING.is_dir():
        print(f"the clothing set is missing: {CLOTHING}", file=sys.stderr)
        return 1
    SAMPLE.mkdir(parents=True, exist_ok=True)
    for old in SAMPLE.glob("*.jpg"):
        old.unlink()
    for image_id, name in PHOTOS:
        target = SAMPLE / f"{name}.jpg"
        shutil.copyfile(CLOTHING / f"{image_id}.jpg", target)
    source, copy = REEXPORT
    with Image.open(SAMPLE / f"{source}.jpg") as picture:
        smaller = picture.resize((picture.width * 7 // 10, picture.height * 7 // 10), Image.Resampling.LANCZOS)
        smaller.save(SAMPLE / f"{copy}.jpg", quality=80)
    print(f"wrote {len(PHOTOS) + 1} photos to {SAMPLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
