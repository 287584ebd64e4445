"""Query requests, one frozen dataclass per kind: how each describes itself and runs again.

No Qt: tests/test_boundary.py runs this module again with PyQt5 unimportable.
"""

from __future__ import annotations

from swimsearch.search import SearchResult
from ui.queries import CatalogueImageQuery, FileQuery, PictureQuery, RandomQuery


def result(query: str, query_id: int | None = None) -> SearchResult:
    return SearchResult(query=query, query_image_id=query_id, matches=(), method="exact", candidates=0,
                        embed_ms=1.0, search_ms=1.0)


class Panel:
    """Records what a query shows on the query panel."""

    def __init__(self):
        self.shown = []

    def show_file(self, path):
        self.shown.append(("file", path))

    def show_picture(self, image, label):
        self.shown.append(("picture", image, label))


def test_queries_describe_themselves_for_titles_and_exports():
    res = result("/designs/img0004.png", 4)
    assert FileQuery("/designs/img0004.png").title(res) == "img0004.png"
    assert FileQuery("/designs/img0004.png").export_stem(res) == "img0004"
    assert CatalogueImageQuery(4, "/designs/img0004.png").title(res) == "img0004.png"
    picture = PictureQuery(object(), "shorts.jpg (dropped picture)")
    assert picture.title(result("pasted image")) == "shorts.jpg (dropped picture)"
    assert PictureQuery(object()).title(result("pasted image")) == "the pasted picture"
    assert picture.export_stem(result("pasted image")) == "pasted-picture"


def test_a_catalogue_image_runs_again_from_its_file_on_another_catalogue():
    clicked = CatalogueImageQuery(4, "/designs/img0004.png", mirror=True)
    assert clicked.again(same_ids=True) is clicked
    assert clicked.again(same_ids=False) == FileQuery("/designs/img0004.png", mirror=True)
    dropped = FileQuery("/designs/img0004.png")
    assert dropped.again(same_ids=False) is dropped and dropped.with_mirror(True).mirror


def test_a_random_query_is_recorded_as_the_design_it_picked():
    random = RandomQuery(mirror=True)
    assert not random.shown_when_asked and FileQuery("/x.png").shown_when_asked
    assert random.recorded(result("/designs/img0007.png", 7)) == CatalogueImageQuery(7, "/designs/img0007.png", mirror=True)
    assert FileQuery("/x.png").recorded(result("/x.png")) == FileQuery("/x.png")


def test_each_query_shows_itself_on_the_query_panel():
    panel, picture = Panel(), object()
    FileQuery("/designs/a.png").show_on(panel)
    PictureQuery(object(), "Pasted picture", picture=picture).show_on(panel)
    CatalogueImageQuery(3, "/designs/c.png").show_on(panel)
    RandomQuery().show_on(panel)  # nothing until its result says which design
    assert panel.shown == [("file", "/designs/a.png"), ("picture", picture, "Pasted picture"), ("file", "/designs/c.png")]


def test_steered_queries_describe_themselves_and_run_again_on_another_catalogue():
    from ui.queries import ExamplesQuery

    two = ExamplesQuery((CatalogueImageQuery(4, "/designs/a.png"), FileQuery("/elsewhere/b.png")), folders=("summer",))
    assert two.examples() == two.like and two.title(result("2 designs")) == "2 designs"
    assert two.note() == "with 1 more design" and two.export_stem(result("x")) == "2-designs"
    steered = two.with_unlike(CatalogueImageQuery(9, "/designs/z.png")).with_unlike(CatalogueImageQuery(9, "/designs/z.png"))
    assert len(steered.unlike) == 1 and steered.note() == "with 1 more design, not like 1 design"
    assert steered.again(same_ids=True) is steered
    moved = steered.again(same_ids=False)  # ids mean nothing in another catalogue: files stand in
    assert moved.like == (FileQuery("/designs/a.png"), FileQuery("/elsewhere/b.png"))
    assert moved.unlike == (FileQuery("/designs/z.png"),) and moved.folders == ("summer",)
    single = FileQuery("/x.png").with_unlike(CatalogueImageQuery(2, "/y.png"))
    assert single.note() == "not like 1 design" and single.examples() == (single,)
    panel = Panel()
    two.show_on(panel)
    assert panel.shown == [("file", "/designs/a.png")]  # the first design stands for them all
    assert RandomQuery(folders=("summer",)).recorded(result("/designs/c.png", 3)).folders == ("summer",)
