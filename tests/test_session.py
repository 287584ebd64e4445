"""The window's session model, without Qt: the rules a user relies on, stepped through by hand.

The test plays the search thread and the builds: it records what the session
asks of them and answers with real CatalogueState and SearchResult values.
tests/test_boundary.py runs this module again with PyQt5 unimportable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from swimsearch.search import Match, SearchResult
from ui.queries import CatalogueImageQuery, FileQuery, PictureQuery, Query, RandomQuery
from ui.session import NO_CATALOGUE, WAITING, Session, build_summary
from ui.session_types import CatalogueState, Filters, target_name


@dataclass(frozen=True)
class FileTarget:
    """A catalogue file to open, and the folder to build it from (what ui.locations.CatalogueTarget holds)."""

    path: Path
    root: Path | None = None
    sample: bool = False

    @property
    def exists(self) -> bool:
        return self.path.is_file()


@dataclass(frozen=True)
class Report:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unreadable: int = 0
    indexed: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Outcome:
    catalogue_path: str
    name: str
    report: Report
    cancelled: bool = False


@dataclass
class World:
    """What the session asked of the search thread, the builds and the recent list, in order."""

    calls: list[tuple] = field(default_factory=list)
    messages: list[tuple[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    renders: int = 0

    # the search service
    def open_catalogue(self, path: str, root: str | None = None) -> None:
        self.calls.append(("open", path))  # the root check is the search thread's (tests/ui)

    def close_catalogue(self) -> None:
        self.calls.append(("close",))

    def reload(self) -> None:
        self.calls.append(("reload",))

    def search(self, query: Query) -> int:
        self.calls.append(("search", query))
        return len(self.calls)

    # the builds and the recent list
    def start_build(self, target, replace: bool, allow_removal: bool = False) -> None:
        self.calls.append(("build", target, replace) + (("allow_removal",) if allow_removal else ()))

    def remember_catalogue(self, path: str) -> None:
        self.calls.append(("remember", path))

    def forget_catalogue(self, path: str) -> None:
        self.calls.append(("forget", path))

    def last(self, kind: str) -> tuple:
        return next(call for call in reversed(self.calls) if call[0] == kind)

    def searches(self) -> list[Query]:
        return [call[1] for call in self.calls if call[0] == "search"]


def make_session(world: World, **settings) -> Session:
    session = Session(world, world.start_build, world, lambda path: FileTarget(Path(path)), **settings)
    session.message.connect(lambda text, ms: world.messages.append((text, ms)))
    session.error.connect(world.errors.append)
    session.changed.connect(lambda: setattr(world, "renders", world.renders + 1))
    return session


def state(folder: Path, *, searchable: int = 30, readonly: bool = False, name: str | None = None,
          path: Path | None = None) -> CatalogueState:
    return CatalogueState(
        path=str(path or folder / ".swimsearch.swimcat"), name=name or folder.name, root=str(folder), root_exists=True,
        images=searchable, searchable=searchable, unreadable=0, readonly=readonly, model_name="fake",
        model_sha256="f" * 64, can_search_images=True,
    )


def result(query: str, scores=(1.0, 0.8, 0.45, 0.2, -0.1), *, query_id: int | None = 1) -> SearchResult:
    folder = str(Path(query).parent)
    matches = tuple(
        Match(rank=n + 1, image_id=n + 1, path=f"{folder}/img{n:04d}.png", relpath=f"img{n:04d}.png", score=score,
              distance=0.0, duplicate=False, phash_distance=None, width=48, height=48)
        for n, score in enumerate(scores)
    )
    return SearchResult(query=query, query_image_id=query_id, matches=matches, method="exact", candidates=len(matches),
                        embed_ms=12.4, search_ms=3.2)


def answer(session: Session, world: World, res: SearchResult | None = None) -> SearchResult:
    """Answer the last query the session asked for, as the search thread does."""
    query = world.last("search")[1]
    res = res or result(getattr(query, "path", "/designs/img0003.png"))
    session.on_result_ready(query, res)
    return res


@pytest.fixture
def designs(tmp_path) -> Path:
    folder = tmp_path / "designs"
    folder.mkdir()
    (folder / ".swimsearch.swimcat").write_bytes(b"")
    return folder


@pytest.fixture
def opened(designs):
    """A session with the designs catalogue open; returns (session, world)."""
    world = World()
    session = make_session(world)
    session.open(FileTarget(designs / ".swimsearch.swimcat"))
    session.on_catalogue_opened(state(designs))
    return session, world


def test_opening_a_catalogue_shows_its_name_count_and_what_to_do(designs):
    world = World()
    session = make_session(world)
    assert session.view().window_title == "SwimSearch" and session.view().catalogue_text == "No catalogue"
    assert session.view().empty_title == "No catalogue is open"
    session.open(FileTarget(designs / ".swimsearch.swimcat"))
    assert world.calls == [("open", str(designs / ".swimsearch.swimcat"))]
    assert world.messages == [("Opening “designs”…", 0)]
    assert session.view().window_title == "designs — SwimSearch"
    session.on_catalogue_opened(state(designs))
    view = session.view()
    assert view.catalogue_text == "designs  ·  30 designs" and view.catalogue_open and view.searchable
    assert view.empty_title == "Find similar designs in “designs”"
    assert ("remember", str(designs / ".swimsearch.swimcat")) in world.calls
    assert world.messages[-1] == ("Opened “designs”: 30 designs searchable.", 8000)
    assert not (view.can_go_back or view.can_go_forward or view.has_results)


def test_a_query_shows_its_matches_title_and_timings_and_enters_the_history(opened):
    session, world = opened
    session.search(FileQuery("/designs/img0004.png"))
    assert session.view().panel_query == FileQuery("/designs/img0004.png")
    assert session.view().panel_status == "searching…"
    shown = []
    session.results_shown.connect(shown.append)
    res = answer(session, world)
    view = session.view()
    assert shown == [res] and view.shown.result is res and view.visible == res.matches
    assert view.results_title == "5 matches for img0004.png" and view.timing_text == "embed 12 ms · search 3 ms"
    assert view.panel_status == "" and view.has_results and len(session.history) == 1


def test_filters_cut_the_result_without_searching_again(opened):
    session, world = opened
    session.search(FileQuery("/designs/img0004.png"))
    res = answer(session, world)
    asked = len(world.searches())
    session.set_filters(Filters(top_n=3, min_percent=40))
    view = session.view()
    assert [m.score for m in view.visible] == [1.0, 0.8, 0.45]
    assert view.results_title == "3 matches for img0004.png" and view.min_text == "40%"
    session.set_filters(Filters(top_n=50, min_percent=50))
    assert session.view().results_title == "2 matches for img0004.png  ·  3 more below 50%"
    session.set_filters(Filters(top_n=50, min_percent=100))
    renders = world.renders
    session.set_filters(Filters(top_n=50, min_percent=100))  # no change: no render
    view = session.view()
    assert world.renders == renders
    assert len(view.visible) == 1 and view.has_results
    assert len(world.searches()) == asked and view.shown.result is res


def test_a_filter_that_hides_everything_says_so(opened):
    session, world = opened
    session.search(FileQuery("/designs/img0004.png"))
    answer(session, world, result("/designs/img0004.png", scores=(0.5, 0.3), query_id=None))
    session.set_filters(Filters(min_percent=90))
    view = session.view()
    assert not view.has_results and view.empty_title == "No match is at least 90% similar"


def test_every_kind_of_query_runs_with_the_mirror_setting(opened):
    session, world = opened
    session.set_mirror(True)
    for query in (FileQuery("/designs/img0004.png"), PictureQuery(object(), "Pasted picture"),
                  CatalogueImageQuery(3, "/designs/img0002.png"), RandomQuery()):
        session.search(query)
        assert world.last("search")[1].mirror
    assert session.view().mirror


@pytest.mark.parametrize(
    "query",
    [FileQuery("/designs/img0004.png"), PictureQuery(object(), "Pasted picture"), CatalogueImageQuery(3, "/designs/img0002.png")],
    ids=["file", "picture", "catalogue image"],
)
def test_the_mirror_toggle_runs_the_shown_query_again_in_its_place(opened, query):
    session, world = opened
    session.search(query)
    answer(session, world, result("/designs/img0002.png"))
    session.set_mirror(True)
    again = world.last("search")[1]
    assert again == query.with_mirror(True) and type(again) is type(query)
    answer(session, world, result("/designs/img0002.png"))
    assert len(session.history) == 1 and session.history.current.request.mirror


def test_a_random_design_is_remembered_as_the_design_it_picked(opened):
    session, world = opened
    session.search(RandomQuery())
    assert session.view().panel_query is None  # nothing to show until the result says which design
    answer(session, world, result("/designs/img0007.png", query_id=7))
    assert session.history.current.request == CatalogueImageQuery(7, "/designs/img0007.png")
    assert session.view().panel_query == CatalogueImageQuery(7, "/designs/img0007.png")
    assert session.view().searchable  # Random stays available


def test_back_and_forward_show_earlier_results_without_searching(opened):
    session, world = opened
    session.search(FileQuery("/designs/img0004.png"))
    first = answer(session, world)
    session.search(CatalogueImageQuery(2, "/designs/img0001.png"))
    answer(session, world, result("/designs/img0001.png", query_id=2))
    asked = len(world.searches())
    assert session.view().can_go_back and not session.view().can_go_forward
    session.go_back()
    assert session.view().shown.result is first and session.view().results_title.endswith("for img0004.png")
    assert session.view().can_go_forward and not session.view().can_go_back
    session.go_forward()
    assert session.view().shown.request == CatalogueImageQuery(2, "/designs/img0001.png")
    assert len(world.searches()) == asked


def test_a_failed_query_says_why_once_and_keeps_the_results_and_their_query(opened):
    session, world = opened
    session.search(FileQuery("/designs/img0004.png"))
    shown = answer(session, world)
    session.search(FileQuery("/tmp/broken.jpg"))
    assert session.view().panel_status == "searching…"
    failed = []
    session.query_failed.connect(failed.append)
    message = "The image broken.jpg cannot be read: not a picture."
    session.on_query_failed(world.last("search")[1], message)
    view = session.view()
    assert failed == [message] and world.errors == [message]  # said once, by the one error event
    assert not any(message in text for text, _ in world.messages)  # not again in the status bar
    assert view.shown.result is shown and view.has_results and view.results_title.endswith("for img0004.png")
    assert view.panel_query == FileQuery("/designs/img0004.png") and view.panel_status == ""  # the query of those results
    assert message not in (view.empty_title, view.empty_body)
    assert len(session.history) == 1 and not view.can_go_back


def test_a_failed_first_query_leaves_the_empty_grid_as_it_was(opened):
    session, world = opened
    before = session.view()
    session.search(FileQuery("/tmp/broken.jpg"))
    session.on_query_failed(world.last("search")[1], "The image broken.jpg cannot be read: not a picture.")
    view = session.view()
    assert view.shown is None and view.panel_query is None
    assert (view.empty_title, view.empty_body) == (before.empty_title, before.empty_body)


def test_a_new_folder_without_pictures_gives_the_open_catalogue_back(opened, tmp_path):
    session, world = opened
    session.search(FileQuery("/designs/img0004.png"))
    answer(session, world)
    session.search(FileQuery("/designs/img0007.png"))
    answer(session, world)
    empty = tmp_path / "empty"
    empty.mkdir()
    session.open(FileTarget(empty / ".swimsearch.swimcat", root=empty))
    message = f"The folder {empty} holds no pictures SwimSearch can read (…), so no catalogue was made: it is empty."
    session.on_build_failed(message)
    session.on_builds_idle()
    assert world.errors == [message] and world.last("open") == ("open", str(tmp_path / "designs" / ".swimsearch.swimcat"))
    session.on_catalogue_opened(state(tmp_path / "designs"))
    view = session.view()
    assert view.window_title == "designs — SwimSearch" and view.catalogue_text == "designs  ·  30 designs"
    assert world.last("search")[1] == FileQuery("/designs/img0007.png")  # the query on screen runs again
    assert len(session.history) == 2  # and its history is kept
    answer(session, world)
    assert session.view().can_go_back


def test_back_after_an_update_searches_again(opened, designs):
    session, world = opened
    session.search(CatalogueImageQuery(4, "/designs/img0004.png"))
    answer(session, world, result("/designs/img0004.png", query_id=4))
    session.search(CatalogueImageQuery(9, "/designs/img0009.png"))
    answer(session, world, result("/designs/img0009.png", query_id=9))
    session.update()
    assert world.last("build")[1:] == (FileTarget(designs / ".swimsearch.swimcat"), False)
    assert session.view().catalogue_text == "designs  ·  30 designs"  # still searchable while it updates
    session.on_build_finished(Outcome(str(designs / ".swimsearch.swimcat"), "designs", Report(added=1, indexed=31)))
    assert world.last("reload") == ("reload",)
    session.on_builds_idle()
    session.on_catalogue_opened(state(designs, searchable=31))
    # the current query runs again in its place (from its file: ids may have changed)
    assert world.last("search")[1] == FileQuery("/designs/img0009.png")
    answer(session, world, result("/designs/img0009.png", query_id=9))
    assert len(session.history) == 2
    session.go_back()  # the earlier result may show files the update removed: search again
    assert world.last("search")[1] == CatalogueImageQuery(4, "/designs/img0004.png")  # same catalogue: its ids hold
    answer(session, world, result("/designs/img0004.png", query_id=4))
    assert len(session.history) == 2 and session.view().can_go_forward and session.history.current.version == 2


def test_the_build_summary_stays_in_the_status_bar_after_the_build(opened, designs):
    session, world = opened
    session.update()
    outcome = Outcome(str(designs / ".swimsearch.swimcat"), "designs", Report(added=2, removed=1, indexed=31, seconds=4))
    session.on_build_finished(outcome)
    session.on_catalogue_opened(state(designs, searchable=31))
    assert world.messages[-1] == ("“designs” is ready: 31 designs searchable (2 added, 1 removed, 4 s).", 15_000)


def test_switching_catalogues_keeps_the_query_but_not_the_history(opened, tmp_path):
    session, world = opened
    session.search(FileQuery("/designs/img0004.png"))
    answer(session, world)
    session.search(CatalogueImageQuery(5, "/designs/img0005.png"))
    answer(session, world, result("/designs/img0005.png", query_id=5))
    other = tmp_path / "other"
    other.mkdir()
    (other / ".swimsearch.swimcat").write_bytes(b"")
    session.open(FileTarget(other / ".swimsearch.swimcat"))
    assert session.view().window_title == "other — SwimSearch"
    assert session.view().catalogue_text == "designs  ·  30 designs"  # until the other one is open
    session.on_catalogue_opened(state(other, searchable=12))
    # an id of another catalogue means nothing here: the design runs again from its file
    assert world.last("search")[1] == FileQuery("/designs/img0005.png")
    assert not session.view().can_go_back and len(session.history) == 0
    answer(session, world, result("/designs/img0005.png", query_id=None))
    view = session.view()
    assert len(session.history) == 1 and not view.can_go_back
    assert view.window_title == "other — SwimSearch" and view.catalogue_text == "other  ·  12 designs"


def test_building_a_new_folder_clears_the_last_catalogues_results(opened, tmp_path):
    session, world = opened
    session.search(FileQuery("/designs/img0004.png"))
    answer(session, world)
    folder = tmp_path / "new designs"
    target = FileTarget(folder / ".swimsearch.swimcat", root=folder)
    session.open(target)
    assert world.calls[-2:] == [("close",), ("build", target, False)]
    view = session.view()
    assert view.catalogue_text == "new designs  ·  building…" and not view.catalogue_open
    assert view.empty_title == "Building the catalogue “new designs”…"
    assert view.results_title == "" and view.timing_text == "" and not view.can_go_back and not view.has_results
    assert view.panel_query == FileQuery("/designs/img0004.png")  # the query stays, to run again there
    session.search(FileQuery("/designs/img0001.png"))  # kept, and searched once the build is done
    assert world.errors == [] and world.messages[-1] == (WAITING, 0)
    assert session.view().panel_query == FileQuery("/designs/img0001.png")
    assert session.view().panel_status == "waiting for the build…"
    session.on_build_finished(Outcome(str(target.path), "new designs", Report(added=12, indexed=12)))
    assert world.last("open") == ("open", str(target.path))
    session.on_builds_idle()
    session.on_catalogue_opened(state(folder, searchable=12))
    assert world.last("search")[1] == FileQuery("/designs/img0001.png")
    assert world.messages[-1][0].startswith("“new designs” is ready: 12 designs")  # not replaced by "Opened …"


def test_a_catalogue_whose_build_was_killed_before_indexing_says_f5_finishes_it(designs):
    from dataclasses import replace

    world = World()
    session = make_session(world)
    session.open(FileTarget(designs / ".swimsearch.swimcat"))
    session.on_catalogue_opened(replace(state(designs, searchable=0), images=205, unreadable=5))
    view = session.view()
    assert view.empty_title == "“designs” was not finished"
    assert view.empty_body == "200 pictures were read before its build stopped. Press F5 to finish it: they are not read again."
    session.on_catalogue_opened(replace(state(designs, searchable=0), images=0))
    assert session.view().empty_title == "“designs” has no searchable designs yet"


def test_a_held_removal_is_asked_after_each_f5_but_once_for_a_watched_folder(opened, designs):
    from swimsearch.build_report import BuildReport

    session, world = opened
    asked = []
    session.removal_held.connect(lambda *args: asked.append(args))
    path = str(designs / ".swimsearch.swimcat")
    held = BuildReport(indexed=30, held=20, held_reason="20 of the catalogue's 30 files are gone from its folder")
    session.update()
    session.on_build_finished(Outcome(path, "designs", held))
    assert asked == [(20, str(designs), held.held_reason)]
    session.keep_held()  # "Keep them"
    session.update(why="The folder changed")
    session.on_build_finished(Outcome(path, "designs", held))
    assert len(asked) == 1  # the watcher does not ask again about the same files
    assert "20 files that are gone were kept" in world.messages[-1][0]  # the status bar still says it
    session.update()
    session.on_build_finished(Outcome(path, "designs", held))
    assert len(asked) == 2  # F5 is the user asking: ask
    session.confirm_removal()
    assert world.last("build")[-1] == "allow_removal"


def test_a_build_cancelled_before_it_said_anything_still_says_so(opened, tmp_path):
    session, world = opened
    session.update()
    session.update()  # F5 twice: the first build is replaced and says nothing
    session.on_builds_idle()  # then Cancel: the second stops before it starts
    assert world.messages[-1] == ("Stopped. What was read so far is kept; press F5 to go on.", 15_000)
    assert world.last("reload") == ("reload",)  # the replaced build may have committed pictures
    assert not session.view().catalogue_text.endswith("building…")
    calls = len(world.calls)
    session.update()
    session.on_build_finished(Outcome(str(tmp_path / "designs" / ".swimsearch.swimcat"), "designs", Report(added=1)))
    session.on_builds_idle()  # answered: nothing more to say
    assert world.messages[-1][0].startswith("“designs” is ready") and world.calls[calls:].count(("reload",)) == 1

    new = tmp_path / "new"
    new.mkdir()
    session.open(FileTarget(new / ".swimsearch.swimcat", root=new))
    session.on_builds_idle()  # cancelled before the catalogue file was made
    assert world.messages[-1][0] == "Stopped before any picture was read, so no catalogue was made."
    assert world.last("open") == ("open", str(tmp_path / "designs" / ".swimsearch.swimcat"))  # the old one comes back


def test_a_damaged_catalogue_leaves_the_open_one_on_screen(opened, designs, tmp_path):
    session, world = opened
    session.search(FileQuery("/designs/img0004.png"))
    shown = answer(session, world)
    damaged = tmp_path / "old.swimcat"
    damaged.write_bytes(b"not a database")
    session.open(FileTarget(damaged))
    assert session.view().window_title == "old — SwimSearch"
    message = f"The file {damaged} is not a SwimSearch catalogue, or it is damaged."
    session.on_open_failed(str(damaged), message)
    view = session.view()
    assert world.errors == [message] and ("forget", str(damaged)) in world.calls
    assert view.window_title == "designs — SwimSearch" and view.catalogue_text == "designs  ·  30 designs"
    assert view.shown.result is shown


def test_a_damaged_catalogue_with_nothing_open_says_so(tmp_path):
    world = World()
    session = make_session(world)
    damaged = tmp_path / "old.swimcat"
    damaged.write_bytes(b"not a database")
    session.open(FileTarget(damaged))
    session.on_open_failed(str(damaged), "damaged")
    view = session.view()
    assert view.window_title == "SwimSearch" and view.catalogue_text == "No catalogue"
    assert view.empty_title == "No catalogue is open" and world.errors == ["damaged"]
    session.search(FileQuery("/designs/img0001.png"))
    assert world.errors[-1] == NO_CATALOGUE and not world.searches()


def test_a_sample_catalogue_pointing_elsewhere_is_built_again(tmp_path):
    shipped = tmp_path / "resources" / "sample"
    sample = FileTarget(tmp_path / "user-data" / "sample.swimcat", root=shipped, sample=True)
    sample.path.parent.mkdir()
    sample.path.write_bytes(b"")
    world = World()
    session = make_session(world)
    session.open_start("", sample)
    assert world.calls == [("open", str(sample.path))]
    ready = []
    session.catalogue_ready.connect(ready.append)
    session.on_catalogue_opened(state(tmp_path / "old install" / "sample", searchable=4, path=sample.path))
    assert world.calls[-2:] == [("close",), ("build", sample, True)] and not ready
    view = session.view()
    assert view.catalogue_text == "sample  ·  building…" and view.empty_title == "Building the catalogue “sample”…"
    session.on_build_finished(Outcome(str(sample.path), "sample", Report(added=36, indexed=36)))
    assert world.last("open") == ("open", str(sample.path))
    session.on_catalogue_opened(state(shipped, searchable=36, path=sample.path))
    assert len(ready) == 1 and session.view().catalogue_text == "sample  ·  36 designs"
    assert world.last("build") == ("build", sample, True)  # built once


def test_a_catalogue_of_another_model_is_pointed_out_once_and_the_sample_is_simply_rebuilt(tmp_path):
    from dataclasses import replace

    world = World()
    session = make_session(world)
    asked = []
    session.model_differs.connect(asked.append)
    designs = FileTarget(tmp_path / "designs" / ".swimsearch.swimcat")
    designs.path.parent.mkdir()
    designs.path.write_bytes(b"")
    session.open(designs)
    other = replace(state(tmp_path / "designs"), built_with="fp32 (sha256 1e7d19261b77...)")
    session.on_catalogue_opened(other)
    assert asked == [other] and not any(call[0] == "build" for call in world.calls)  # asked, nothing done yet
    view = session.view()
    assert view.catalogue_text.endswith("another model") and "Built with fp32" in view.catalogue_tip
    assert view.empty_title == "“designs” was built with another model" and "F5 to rebuild" in view.empty_body
    # the status bar must not call designs that cannot be searched "searchable"
    assert "searchable" not in world.messages[-1][0] and "another model" in world.messages[-1][0]
    session.on_catalogue_opened(other)  # reopened after "Not now": not asked again
    assert len(asked) == 1
    session.update(why="The folder changed")  # a watched folder never rebuilds with the other model by itself
    assert not any(call[0] == "build" for call in world.calls)
    assert world.messages[-1][0] == "The folder changed, but “designs” was built with another model: press F5 to rebuild it."
    session.update()
    assert world.last("build")[1].path == designs.path

    sample = FileTarget(tmp_path / "user-data" / "sample.swimcat", root=tmp_path / "shipped", sample=True)
    sample.path.parent.mkdir()
    sample.path.write_bytes(b"")
    session.open(sample)
    session.on_catalogue_opened(replace(state(tmp_path / "shipped", path=sample.path), built_with="fp32"))
    assert len(asked) == 1 and world.last("build") == ("build", sample, False)  # 36 pictures: just rebuilt


def test_a_damaged_sample_is_built_again_once_then_reported(tmp_path):
    sample = FileTarget(tmp_path / "sample.swimcat", root=tmp_path / "shipped", sample=True)
    sample.path.write_bytes(b"garbage")
    world = World()
    session = make_session(world)
    session.open(sample)
    session.on_open_failed(str(sample.path), "damaged")
    assert world.last("build") == ("build", sample, True) and world.errors == []
    session.on_open_failed(str(sample.path), "damaged")  # the rebuilt one fails too: say so, do not loop
    assert world.errors == ["damaged"] and [c for c in world.calls if c[0] == "build"] == [("build", sample, True)]


def test_at_start_the_last_catalogue_opens_else_the_sample(designs, tmp_path):
    sample = FileTarget(tmp_path / "sample.swimcat", root=tmp_path / "shipped", sample=True)  # not built yet
    last = str(designs / ".swimsearch.swimcat")
    world = World()
    make_session(world).open_start(last, sample)
    assert world.calls == [("open", last)]
    for remembered in ("", str(tmp_path / "gone.swimcat"), str(sample.path)):
        world = World()
        make_session(world).open_start(remembered, sample)
        assert world.calls == [("close",), ("build", sample, False)]


def test_what_can_be_done_follows_the_catalogue(tmp_path):
    world = World()
    session = make_session(world)
    share = tmp_path / "share"
    share.mkdir()
    (share / ".swimsearch.swimcat").write_bytes(b"")
    session.open(FileTarget(share / ".swimsearch.swimcat"))
    session.on_catalogue_opened(state(share, searchable=0, readonly=True))
    view = session.view()
    assert not view.can_update and not view.searchable and view.catalogue_text.endswith("  ·  read-only")
    assert view.empty_title == "“share” has no searchable designs yet"


def test_names_and_summaries_read_plainly(tmp_path):
    assert target_name(FileTarget(tmp_path / "x" / ".swimsearch.swimcat")) == "x"
    assert target_name(FileTarget(tmp_path / "spring.swimcat")) == "spring"
    assert target_name(FileTarget(tmp_path / "a.swimcat", root=tmp_path / "designs")) == "designs"
    assert target_name(FileTarget(tmp_path / "sample.swimcat", root=tmp_path / "shipped", sample=True)) == "sample"
    per_user = tmp_path / "user-data" / "catalogues" / "share-0123456789.swimcat"  # a read-only folder's
    assert target_name(FileTarget(per_user)) == "share"
    cancelled = Outcome("c", "spring", Report(added=24, indexed=24), cancelled=True)
    assert build_summary(cancelled) == "Stopped building “spring”: 24 designs are searchable. Press F5 to go on from there."
    assert build_summary(Outcome("c", "spring", Report(indexed=9))) == "“spring” is ready: 9 designs searchable (no changes, 0 s)."


# --- steering: several designs, not like this, decisions, the folder filter --------------------


class Memory:
    """The folder filter remembered per catalogue (what ui.settings.Settings keeps)."""

    def __init__(self, remembered=None):
        self.remembered = dict(remembered or {})

    def folders_for(self, catalogue):
        return list(self.remembered.get(catalogue, []))

    def remember_folders(self, catalogue, folders):
        self.remembered[catalogue] = list(folders)


def test_several_designs_are_one_query_and_not_like_this_is_a_new_history_entry(opened):
    from ui.queries import ExamplesQuery

    session, world = opened
    a, b = CatalogueImageQuery(1, "/designs/img0000.png"), CatalogueImageQuery(2, "/designs/img0001.png")
    session.search_together([a])
    assert world.searches()[-1] == a
    session.search_together([a, b])
    asked = world.searches()[-1]
    assert isinstance(asked, ExamplesQuery) and asked.like == (a, b)
    first = answer(session, world)
    match = first.matches[3]
    session.not_like(match)
    steered = world.searches()[-1]
    assert steered.unlike == (CatalogueImageQuery(match.image_id, match.path),) and steered.like == (a, b)
    answer(session, world)
    assert len(session.history) == 2 and session.view().results_title.endswith("(with 1 more design, not like 1 design)")
    session.go_back()
    assert session.shown.request == asked


def test_a_decision_is_kept_for_the_designs_searched_with_and_the_list_runs_again(opened):
    session, world = opened
    decided = []
    world.decide = lambda pairs, verdict: decided.append((pairs, verdict))
    session.search(CatalogueImageQuery(1, "/designs/img0000.png"))
    res = result("/designs/img0000.png")
    answer(session, world, SearchResult(**{**res.__dict__, "example_ids": (1,)}))
    assert session.view().can_decide
    session.decide(res.matches[2], "same")
    assert decided == [([(1, 3)], "same")]
    assert world.searches()[-1] == CatalogueImageQuery(1, "/designs/img0000.png")  # runs again, in its place
    answer(session, world)
    assert len(session.history) == 1
    session.search(FileQuery("/elsewhere/new.png"))
    answer(session, world, result("/elsewhere/new.png", query_id=None))
    assert not session.view().can_decide
    session.decide(res.matches[2], "different")
    assert len(decided) == 1 and "search from a design of the catalogue" in world.errors[-1]


def test_the_folder_filter_narrows_every_query_and_is_remembered_per_catalogue(designs):
    world, memory = World(), Memory({str(designs / ".swimsearch.swimcat"): ["winter", "gone"]})
    session = make_session(world)
    session._folder_memory = memory
    session.open(FileTarget(designs / ".swimsearch.swimcat"))
    folders = (("", 30), ("summer", 10), ("winter", 10))
    (designs / "summer").mkdir()
    (designs / "winter").mkdir()
    session.on_catalogue_opened(CatalogueState(**{**state(designs).__dict__, "folders": folders}))
    assert session.folders == ("winter",)  # a folder gone from the catalogue is let go, said, and forgotten
    assert world.messages[-1][0] == "The folder filter let go of the folder gone, gone from “designs”: searching winter."
    assert memory.remembered[str(designs / ".swimsearch.swimcat")] == ["winter"]
    view = session.view()
    assert view.folders_text == "winter" and view.has_subfolders
    session.search(FileQuery("/designs/img0003.png"))
    assert world.searches()[-1].folders == ("winter",)
    answer(session, world)
    session.set_folders(("winter", "summer"))
    assert world.searches()[-1].folders == ("summer", "winter") and session.view().folders_text == "2 folders"
    assert memory.remembered[str(designs / ".swimsearch.swimcat")] == ["summer", "winter"]
    answer(session, world)
    assert len(session.history) == 1  # ran again in its place
    session.set_folders(())
    assert session.view().folders_text == "All folders" and world.searches()[-1].folders == ()


def test_the_sample_summary_does_not_count_its_own_readme_as_a_file_not_read():
    from swimsearch.build_report import BuildReport

    report = BuildReport(added=36, indexed=36, skipped={".md": 1})
    assert build_summary(Outcome("c", "designs", report)).endswith("Not read: 1 .md file.")
    assert build_summary(Outcome("c", "sample", report), sample=True) == "“sample” is ready: 36 designs searchable (36 added, 0 s)."


def test_the_build_summary_says_what_an_update_kept_and_read_again():
    from swimsearch.build_report import BuildReport

    report = BuildReport(indexed=23, retried=3, came_back=20, held=5, unlisted_folders=("locked",),
                    held_reason="5 of the catalogue's 23 files are gone from its folder (a drive or network share that is not mounted?)")
    text = build_summary(Outcome("c", "share", report))
    assert "(3 read again, 20 back, 0 s)" in text
    assert "5 files that are gone were kept: 5 of the catalogue's 23 files are gone" in text
    assert "1 folder(s) could not be read; their designs were kept." in text
