"""The command line never blocks, never prints a traceback and never lets a file name drive the terminal.

Every bad input the red team found is run through `swimsearch.cli.main`
in-process (fast) or as a real process where the terminal or the disk is
the point: pipes, devices and folders named as files, lists that are not
UTF-8, numbers out of range, outputs into missing folders or onto a full
disk, file names holding escape sequences, a journal deleted mid-update.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import REPO, FakeEmbedder, make_pattern_images
from swimsearch import cli
from swimsearch.catalogue import Catalogue
from swimsearch.config import EngineConfig
from swimsearch.errors import CatalogueError

#: Control characters and sequences a terminal acts on.
ESCAPES = ["\x1b[2J", "\x1b]0;pwned\x07", "\x1b]8;;https:x.example\x1b\\", "\x07", "\x08\x08", "\x9b31m", "\u202e", "\r", "\x1bc"]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory, embedder):
    """A catalogue of 14 generated pictures made with the real model, two of them copies."""
    folder = tmp_path_factory.mktemp("cli-inputs")
    files = make_pattern_images(folder, 12)
    (folder / "copy.png").write_bytes(files[0].read_bytes())
    (folder / "copy2.png").write_bytes(files[1].read_bytes())
    path = folder / "c.swimcat"
    with Catalogue.create(path, folder) as made:
        made.update(embedder, EngineConfig())
    return folder, path


def main(*args, capsys, thread: bool = True) -> tuple[int, str, str]:
    """Run the command line in this process, in a thread that must end within a minute; (exit code, stdout, stderr).

    `index` sets a Ctrl-C handler, which only the main thread may: it runs there
    (the test's own time limit guards it).
    """
    outcome: list[int] = []
    if thread:
        worker = threading.Thread(target=lambda: outcome.append(cli.main([str(a) for a in args])), daemon=True)
        worker.start()
        worker.join(60)
    else:
        outcome.append(cli.main([str(a) for a in args]))
    assert outcome, f"swimsearch {' '.join(map(str, args))} blocked"
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "unexpected error" not in out.err, out.err
    return outcome[0], out.out, out.err


def _special(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "folder":
        path = tmp_path / "a-folder.swimcat"
        path.mkdir()
    elif kind == "link loop":  # two links naming each other: Path.resolve() raised RuntimeError on them
        path = tmp_path / "loop_a.jpg"
        os.symlink(tmp_path / "loop_b.jpg", path)
        os.symlink(path, tmp_path / "loop_b.jpg")
    else:
        path = tmp_path / "sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    return path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "socket", "link loop"])
@pytest.mark.parametrize("where", ["catalogue", "queries", "labels", "image", "index-catalogue"])
def test_a_pipe_a_device_or_a_folder_named_as_a_file_never_blocks(catalogue, tmp_path, kind, where, capsys):
    folder, path = catalogue
    special = _special(kind, tmp_path)
    picture = folder / "img0001.png"
    args = {
        "catalogue": ["info", "--catalogue", special],
        "queries": ["query", "--catalogue", path, "--queries", special],
        "labels": ["eval", "--catalogue", path, "--labels", special],
        "image": ["query", "--catalogue", path, special, picture],
        "index-catalogue": ["index", folder, "--catalogue", special],
    }[where]
    if where == "index-catalogue" and kind == "folder":
        pytest.skip("a folder given as --catalogue names the catalogue inside it: not a file")
    code, out, err = main(*args, capsys=capsys, thread=where != "index-catalogue")
    if where == "catalogue" and kind == "folder":
        assert code == 1 and "There is no catalogue of the folder" in err  # a folder names its catalogue
        return
    assert code in (1, 2) and ("pipe" in err or "device" in err or "folder" in err or "socket" in err or "file" in err), err
    if where == "image":
        assert "1 of 2 queries failed" in err and "img0001.png" in out  # the other query still ran
    if where == "image" and kind == "link loop":
        assert "symbolic link loop" in err, err


def test_a_query_list_from_a_pipe_is_read_as_the_standard_input_is(catalogue, capsys):
    """`--queries <(ls *.png)`: the shell names a pipe (/dev/fd/63) that a program writes the list into."""
    folder, path = catalogue
    read, write = os.pipe()
    try:
        os.write(write, f"{folder / 'img0001.png'}\n# a comment\n{folder / 'img0002.png'}\n".encode())
        os.close(write)
        code, out, err = main("query", "--catalogue", path, "--top", 1, "--queries", f"/dev/fd/{read}", capsys=capsys)
    finally:
        os.close(read)
    assert code == 0, err
    assert [line.split("  ")[0] for line in out.splitlines() if not line.startswith(" ")] == [
        str(folder / "img0001.png"), str(folder / "img0002.png")
    ]


@pytest.mark.parametrize("seed", range(4))
def test_a_query_list_that_is_not_utf8_says_which_line(catalogue, tmp_path, seed, capsys):
    folder, path = catalogue
    rng = random.Random(seed)
    lines = [str(folder / f"img{n:04d}.png").encode() for n in range(rng.randint(1, 6))]
    bad = rng.randrange(len(lines) + 1)
    lines.insert(bad, rng.choice([b"\xff\xfe", b"caf\xe9.png", b"\xc3\x28.jpg", b"ok\x80"]))
    listfile = tmp_path / "list.txt"
    listfile.write_bytes(b"\n".join(lines))
    code, _, err = main("query", "--catalogue", path, "--queries", listfile, capsys=capsys)
    assert code == 2 and f"line {bad + 1} of the list" in err and "not UTF-8" in err


@pytest.mark.parametrize(
    "args, words",
    [
        (["duplicates", "--max-distance", "-1"], "--max-distance is the number of pHash bits"),
        (["duplicates", "--max-distance", "65"], "--max-distance is the number of pHash bits"),
        (["query", "--min-score", "-inf", "X"], "--min-score is the lowest similarity to list, as the percent shown"),
        (["query", "--min-score", "nan", "X"], "--min-score is the lowest similarity to list, as the percent shown"),
        (["query", "--min-score=inf", "X"], "--min-score is the lowest similarity to list, as the percent shown"),
        (["query", "--min-score", "-0.2", "X"], "0.5 or 50% keeps the matches shown 50% or more (from 0 to 1, or 0% to 100%), not -0.2"),
        (["query", "--min-score", "150%", "X"], "(from 0 to 1, or 0% to 100%), not 1.5"),
        (["query", "--top", "0", "X"], "--top is the number of results per query"),
        (["query", "--top", "-3", "X"], "--top is the number of results per query"),
        (["query", "--csv", "MISSING/out.csv", "X"], "the folder of --csv"),
        (["query", "--csv", "FOLDER", "X"], "is a folder; give a file name"),
        (["eval", "--labels", "LABELS", "--plot", "MISSING/pr.png"], "the folder of --plot"),
        (["eval", "--labels", "LABELS", "--json", "MISSING/figures.json"], "the folder of --json"),
        (["eval", "--labels", "MISSING/labels.csv"], "cannot read the labels"),
        (["eval", "--labels", "LABELS", "--exclude-column", "sendr"], "has no column 'sendr'"),
        (["eval", "--labels", "NOLABEL"], "has no column 'label'"),
        (["duplicates", "--csv", "MISSING/d.csv"], "the folder of --csv"),
    ],
)
def test_what_was_a_traceback_is_one_sentence(catalogue, tmp_path, args, words, capsys):
    folder, path = catalogue
    (tmp_path / "labels.csv").write_text("path,label\nimg0001.png,a\nimg0002.png,b\n")
    (tmp_path / "nolabel.csv").write_text("path,group\nimg0001.png,a\n")
    names = {"X": folder / "img0001.png", "LABELS": tmp_path / "labels.csv", "NOLABEL": tmp_path / "nolabel.csv",
             "FOLDER": tmp_path}
    resolved = [str(names.get(a, a)).replace("MISSING", str(tmp_path / "missing")) for a in args]
    code, _, err = main(resolved[0], "--catalogue", path, *resolved[1:], capsys=capsys)
    lines = err.strip().splitlines()  # the command's usage, then one sentence
    assert code == 2 and words in lines[-1] and lines[-1].startswith("swimsearch: error:"), err
    assert sum(line.startswith("swimsearch:") for line in lines) == 1


#: Every option that writes a file, on the command that has it (IMAGE: a picture to search with).
WRITERS = [
    ("query", "--csv", ["IMAGE"]),
    ("query", "--sheet", ["IMAGE"]),
    ("duplicates", "--csv", []),
    ("decisions", "--csv", []),
    ("eval", "--json", ["--labels", "LABELS"]),
    ("eval", "--plot", ["--labels", "LABELS"]),
]


@pytest.mark.parametrize("command, option, rest", WRITERS)
def test_an_output_never_writes_over_a_picture_or_a_catalogue_and_names_its_own_kind_of_file(
    catalogue, tmp_path, command, option, rest, capsys
):
    folder, path = catalogue
    picture = tmp_path / "B.jpg"
    picture.write_bytes((folder / "img0001.png").read_bytes())  # a picture, whatever its name says
    design = tmp_path / "design.pdf"
    design.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    kept = tmp_path / "copy.swimcat"
    kept.write_bytes(path.read_bytes())
    hidden = tmp_path / "catalogue.csv"  # a catalogue under any name
    hidden.write_bytes(path.read_bytes())
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nimg0001.png,a\n")
    names = {"IMAGE": str(folder / "img0001.png"), "LABELS": str(labels)}
    args = [names.get(a, a) for a in rest]
    before = {p: p.read_bytes() for p in (picture, design, kept, hidden)}
    # a catalogue that does not exist: the output is refused before anything is opened or searched
    missing = tmp_path / "no such catalogue.swimcat"
    for target, words in [
        (picture, "is a picture, which is never written over: give another file name"),
        (design, "is a picture, which is never written over"),
        (kept, "is a SwimSearch catalogue, which is never written over"),
        (hidden, "is a SwimSearch catalogue, which is never written over"),
        (tmp_path / "new.txt", f"{option} writes a"),
    ]:
        code, out, err = main(command, "--catalogue", missing, *args, option, target, capsys=capsys)
        lines = err.strip().splitlines()
        assert code == 2 and words in lines[-1], err
        assert lines[-1].startswith("swimsearch: error:") and sum(line.startswith("swimsearch:") for line in lines) == 1
        assert out == ""
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "new.txt").exists()
    assert "“new.txt”" in err and {"--csv": ".csv", "--json": ".json", "--plot": ".png", "--sheet": ".pdf or .html"}[option] in err


def test_an_earlier_output_of_the_same_kind_is_written_over(catalogue, tmp_path, capsys):
    folder, path = catalogue
    picture = str(folder / "img0001.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{folder / f'img{n:04d}.png'},{'ab'[n % 2]}\n" for n in range(1, 9)))
    runs = [
        ["query", "--catalogue", path, picture, "--csv", tmp_path / "m.csv"],
        ["query", "--catalogue", path, picture, "--sheet", tmp_path / "m.pdf"],
        ["query", "--catalogue", path, picture, "--sheet", tmp_path / "m.html"],
        ["eval", "--catalogue", path, "--labels", labels, "--only-catalogue", "--json", tmp_path / "e.json", "--plot", tmp_path / "e.png"],
    ]
    for args in runs + runs:  # the second time over the files the first one wrote
        code, _, err = main(*args, capsys=capsys)
        assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.json", "e.png", "labels.csv", "m.about.json", "m.csv", "m.html", "m.pdf"]
    code, out, _ = main("query", "--catalogue", path, picture, "--csv", "-", capsys=capsys)
    assert code == 0 and out.startswith("query,rank,path")


def _latin1(folder: Path, name: bytes) -> str:
    """The path of `name` (Latin-1 bytes, not UTF-8) in `folder`, as Python names it; skips where names must be UTF-8."""
    path = os.path.join(os.fsencode(folder), name)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        os.unlink(path)
    except OSError:
        pytest.skip("this file system takes only UTF-8 names")
    return os.fsdecode(path)


def test_a_picture_whose_name_is_not_utf8_text_is_one_sentence_and_the_other_queries_run(catalogue, capsys):
    folder, path = catalogue
    cafe = _latin1(folder, b"caf\xe9.png")  # inside the catalogue's folder: the catalogue was asked for it
    Path(cafe).write_bytes((folder / "img0003.png").read_bytes())
    try:
        for steer in ([], ["--region", "0,0,0.5,0.5"]):
            code, out, err = main("query", "--catalogue", path, cafe, folder / "img0001.png", *steer, capsys=capsys)
            assert code == 1 and "img0001.png" in out, err
            assert err.splitlines() == [
                f"swimsearch: cannot read {folder}/caf\\xe9.png: the file name is not valid UTF-8 text; rename the file",
                "swimsearch: 1 of 2 queries failed",
            ]
    finally:
        os.unlink(cafe)


def test_a_folder_whose_name_is_not_utf8_text_is_one_sentence_and_nothing_is_made(catalogue, tmp_path, capsys):
    folder, _ = catalogue
    designs = _latin1(tmp_path, b"d\xe9signs")
    os.mkdir(designs)
    Path(designs, "a.png").write_bytes((folder / "img0001.png").read_bytes())
    sentence = (f"swimsearch: The folder {tmp_path}/d\\xe9signs cannot be used: the name “d\\xe9signs” "
                "is not valid UTF-8 text, so rename it and try again.")
    for args in (["index", designs], ["index", designs, "--catalogue", tmp_path / "new.swimcat"], ["info", "--catalogue", designs]):
        code, out, err = main(*args, capsys=capsys, thread=False)
        assert (code, out, err.splitlines()) == (1, "", [sentence]), err
    assert sorted(os.listdir(designs)) == ["a.png"] and not (tmp_path / "new.swimcat").exists()


def _escape_folder(root: Path, seed: int) -> list[str]:
    """Pictures whose names hold every escape sequence (and a seeded second one), in nested folders."""
    rng = random.Random(seed)
    sources = make_pattern_images(root / "src", len(ESCAPES), start=200 + 10 * seed)
    names = []
    for n, (escape, source) in enumerate(zip(ESCAPES, sources)):
        name = f"{escape}design{n}{rng.choice(ESCAPES)}.png"
        where = root / "pics" / (rng.choice(["", "a\x1b[31m/", "\u202eb/"]))
        where.mkdir(parents=True, exist_ok=True)
        (where / name).write_bytes(source.read_bytes())
        names.append(name)
    (root / "pics" / f"broken{rng.choice(ESCAPES)}.png").write_bytes(b"not a picture")
    return names


@pytest.mark.parametrize("seed", [3])
def test_file_names_with_escape_codes_are_printed_escaped_and_kept_true_in_csv(tmp_path, seed):
    names = _escape_folder(tmp_path, seed)
    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    first = next(p for p in folder.rglob("*.png") if "design0" in p.name)

    def run(*args):
        done = subprocess.run([sys.executable, "-m", "swimsearch.cli", *map(str, args)], cwd=REPO,
                              capture_output=True, text=True, timeout=300, errors="surrogateescape")
        assert "Traceback" not in done.stderr, done.stderr
        return done

    outputs = [
        run("index", folder, "--catalogue", path),
        run("info", "--catalogue", path, "--unreadable"),
        run("duplicates", "--catalogue", path, "--max-distance", "64"),
        run("query", "--catalogue", path, first),
        run("query", "--catalogue", tmp_path / "no\x1b[2Jsuch.swimcat", first),
    ]
    for done in outputs:
        text = done.stdout + done.stderr
        assert not any(c in text for c in "\x1b\x07\x08\x9b\u202e\r"), repr(text[:500])
    assert "unreadable: broken\\" in outputs[0].stdout and "unreadable  broken\\" in outputs[1].stdout  # there, escaped
    out = tmp_path / "m.csv"
    assert run("query", "--catalogue", path, first, "--csv", out).returncode == 0
    with open(out, newline="", encoding="utf-8") as fh:
        listed = {Path(row["path"]).name for row in csv.DictReader(fh)}
    assert listed & set(names)  # CSV keeps the true names: a spreadsheet shows no escape codes


@pytest.mark.parametrize("how", ["moved", "deleted"])
def test_a_folder_moved_or_deleted_under_an_update_is_said_as_such(tmp_path, small_config, how):
    """Not "the journal file was deleted by another program": the catalogue went with its folder (a reviewer)."""
    folder = tmp_path / "pics"
    make_pattern_images(folder, 120)
    path = folder / "c.swimcat"
    gone = {"done": False}

    def progress(phase, done, total):
        if phase == "embed" and done >= 40 and not gone["done"]:
            if how == "moved":
                os.rename(folder, tmp_path / "elsewhere")
            else:
                shutil.rmtree(folder)
            gone["done"] = True

    with Catalogue.create(path, folder) as catalogue:
        with pytest.raises(CatalogueError, match=r"was moved or deleted while it was being updated"):
            catalogue.update(FakeEmbedder(), small_config, progress=progress)
    if how == "moved":
        with Catalogue.open(tmp_path / "elsewhere" / "c.swimcat") as catalogue:
            assert catalogue.counts()["images"] >= 40  # what was committed before the move is there


def test_a_journal_deleted_under_an_update_is_said_and_what_was_saved_is_kept(tmp_path, small_config):
    folder, path = tmp_path / "pics", tmp_path / "c.swimcat"
    make_pattern_images(folder, 120)
    deleted = {"done": False}

    def progress(phase, done, total):
        if phase == "embed" and done >= 40 and not deleted["done"]:
            os.unlink(f"{path}-wal")  # another program tidies up
            deleted["done"] = True

    with Catalogue.create(path, folder) as catalogue:
        with pytest.raises(CatalogueError, match=r"journal file .*-wal was deleted or replaced by another program"):
            catalogue.update(FakeEmbedder(), small_config, progress=progress)
    with Catalogue.open(path) as catalogue:
        kept = catalogue.counts()["images"]
        assert kept >= 40  # what was committed before and after the deletion
        report = catalogue.update(FakeEmbedder(), small_config)
    assert report.added == 120 - kept and report.indexed == 120


def _small_files():
    """No file of this process may grow past 2 KB (where no small file system can be mounted)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))


def test_an_export_onto_a_full_disk_is_one_sentence_and_keeps_the_earlier_file(catalogue, tmp_path):
    """A real full disk (a 64 KB file system) where the test may mount one, a file-size limit otherwise."""
    folder, path = catalogue
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode == 0
    out = disk / "matches.csv"
    queries = sorted(folder.glob("*.png"))
    try:
        first = subprocess.run([sys.executable, "-m", "swimsearch.cli", "query", "--catalogue", path, queries[0], "--csv", out],
                               cwd=REPO, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr
        earlier = out.read_bytes()
        if mounted:
            filler = disk / "filler"
            with open(filler, "wb", buffering=0) as fh:  # fill the disk to the last block
                try:
                    while True:
                        fh.write(b"\0" * 4096)
                except OSError:
                    pass

        full = subprocess.run(
            [sys.executable, "-m", "swimsearch.cli", "query", "--catalogue", path, *queries, "--top", "14", "--csv", out],
            cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=None if mounted else _small_files,
        )
        assert full.returncode == 1 and "Traceback" not in full.stderr
        lines = [line for line in full.stderr.splitlines() if line.startswith("swimsearch:")]
        assert len(lines) == 1 and str(out) in lines[0], full.stderr
        if mounted:
            assert "is full: it was not written (an earlier file at that path is kept)" in lines[0]
        assert out.read_bytes() == earlier  # the earlier export, whole
        assert not [p for p in disk.iterdir() if p.name.endswith(".part")]  # no torn temporary left behind
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
