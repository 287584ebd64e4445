"""Make tests/data/catalogue-v1.swimcat: a catalogue in schema version 1, for the migration tests.

It must be made by the SwimSearch that wrote version 1 (main at a2f7512, before
schema version 2), so run this with that checkout first on the path:

    git -C /work/main archive a2f7512 | tar -x -C /tmp/v1src
    PYTHONPATH=/tmp/v1src python tools/make_v1_catalogue.py /tmp/v1pics
    cp /tmp/v1pics/catalogue-v1.swimcat tests/data/

24 pattern images (families of 3; tests/helpers.make_pattern_images, so a
test makes the same pictures again), a text file named .png (unreadable for
good) and a file deleted between the scan and its read (unreadable for a
passing reason: version 1 recorded it as "does not exist" and never read it again).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import V1_CONFIG, FakeEmbedder, make_pattern_images  # noqa: E402
from swimsearch.catalogue import Catalogue  # noqa: E402


def main(folder: Path) -> None:
    make_pattern_images(folder, 24, family=3)
    (folder / "notes.png").write_text("not a picture")
    (folder / "vanishing.png").write_bytes((folder / "img0000.png").read_bytes())

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "scan" and total and (folder / "vanishing.png").exists():
            (folder / "vanishing.png").unlink()

    with Catalogue.create(folder / "catalogue-v1.swimcat", folder) as catalogue:
        report = catalogue.update(FakeEmbedder(), V1_CONFIG, progress=progress)
        print(report.summary(), catalogue.unreadable())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
