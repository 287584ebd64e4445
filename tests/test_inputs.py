"""The files users hand in: path lists (query --queries, eval --queries) and label CSVs."""

from __future__ import annotations

import pytest

from swimsearch.inputs import InputError, read_labels, read_path_list


@pytest.mark.parametrize(
    "data",
    [
        b"/a/one.jpg\n/b/two 2.jpg\n",  # plain
        b"\xef\xbb\xbf/a/one.jpg\r\n/b/two 2.jpg\r\n",  # Notepad: a byte order mark and CRLF
        b"# today's queries\n\n  /a/one.jpg  \n   # /c/left-out.jpg\n\n/b/two 2.jpg",  # comments, blanks, spaces, no final newline
        b"/a/one.jpg\r/b/two 2.jpg\r",  # old Mac line ends
    ],
    ids=["plain", "bom-crlf", "comments-blanks", "cr"],
)
def test_a_path_list_in_every_common_shape(tmp_path, data):
    listfile = tmp_path / "queries.txt"
    listfile.write_bytes(data)
    assert read_path_list(listfile) == ["/a/one.jpg", "/b/two 2.jpg"]


def test_non_ascii_paths_survive(tmp_path):
    listfile = tmp_path / "queries.txt"
    listfile.write_text("/designs/été/Ärmel ß.png\n", encoding="utf-8")
    assert read_path_list(listfile) == ["/designs/été/Ärmel ß.png"]


def test_a_list_that_is_not_utf8_names_the_file_and_the_line(tmp_path):
    listfile = tmp_path / "latin1.txt"
    listfile.write_bytes("/a/one.jpg\n\n/designs/été.png\n".encode("latin-1"))
    with pytest.raises(InputError) as caught:
        read_path_list(listfile)
    message = str(caught.value)
    assert "line 3" in message and str(listfile) in message and "UTF-8" in message
    assert "\n" not in message


def test_a_missing_list_is_one_plain_sentence(tmp_path):
    with pytest.raises(InputError, match=r"cannot read the list .*nowhere.txt: No such file"):
        read_path_list(tmp_path / "nowhere.txt")


def test_labels_saved_by_a_spreadsheet_with_a_bom(tmp_path):
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("path,label,sender,usable\r\na.jpg,Hat,1,True\r\nb.jpg,Hat,2,False\r\nc.jpg,Cap,2,yes\r\n", encoding="utf-8-sig")
    labels = read_labels(labels_csv, exclude_column="sender", filter_column="usable")
    assert labels.paths == (str(tmp_path / "a.jpg"), str(tmp_path / "c.jpg"))
    assert [labels.names[i] for i in labels.labels] == ["Hat", "Cap"]
    assert labels.gallery_mask(0).tolist() == [False, True] and labels.relevant_counts().tolist() == [0, 0]


def test_bad_label_files_are_plain_sentences(tmp_path):
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("path,kind\na.jpg,Hat\n", encoding="utf-8")
    with pytest.raises(InputError, match="has no column 'label' \\(columns: path, kind\\)"):
        read_labels(labels_csv)
    with pytest.raises(InputError, match="cannot read the labels"):
        read_labels(tmp_path / "none.csv")
    labels_csv.write_bytes("path,label\nä.jpg,Hat\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_labels(labels_csv)


@pytest.mark.parametrize("separator", [";", "\t"], ids=["excel-semicolon", "tab"])
def test_labels_separated_by_semicolons_or_tabs_are_read(tmp_path, separator):
    """Excel saves "CSV" with semicolons in locales whose decimal mark is a comma (a comma inside a
    name then stays part of the name)."""
    labels_csv = tmp_path / "labels.csv"
    rows = [["path", "label", "sender"], ["a,1.jpg", "Hat", "1"], ["b.jpg", "Hat", "2"]]
    labels_csv.write_text("".join(separator.join(r) + "\r\n" for r in rows), encoding="utf-8-sig")
    labels = read_labels(labels_csv, exclude_column="sender")
    assert labels.paths == (str(tmp_path / "a,1.jpg"), str(tmp_path / "b.jpg"))
    assert [labels.names[i] for i in labels.labels] == ["Hat", "Hat"] and labels.relevant_counts().tolist() == [1, 1]
