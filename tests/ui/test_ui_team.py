"""The window on a team catalogue: Connect to team catalogue…, a viewer's window, the shared folder mapped per computer."""

from __future__ import annotations

import shutil

import pytest

from ui_helpers import WAIT_MS, drop_and_wait, error_texts, make_pattern_images


@pytest.fixture
def team(pg_database, tmp_path, fake_embedder, small_config):
    """A team catalogue of 30 designs, its address, and an editor and a viewer login (password "secret")."""
    from swimsearch.catalogue import Catalogue
    from swimsearch.stores.pg_schema import CatalogueNames

    folder = tmp_path / "share" / "designs"
    make_pattern_images(folder, 30, family=3)
    address = pg_database.url() + "&catalogue=swim"
    with Catalogue.create(address, folder) as catalogue:
        catalogue.update(fake_embedder, small_config)
    names = CatalogueNames.of("swim", pg_database.name)
    editor, viewer = pg_database.create_role("anna"), pg_database.create_role("bert")
    with pg_database.connect() as conn:
        conn.execute(f'GRANT "{names.editor}" TO "{editor}"')
        conn.execute(f'GRANT "{names.viewer}" TO "{viewer}"')

    def url(user: str) -> str:
        return pg_database.url(user) + "&catalogue=swim"  # no password: it is typed in the dialog

    return folder, url(editor), url(viewer)


@pytest.fixture
def forget_passwords():
    from swimsearch.stores import pg_address

    yield
    pg_address._session_passwords.clear()
    pg_address._session_roots.clear()


def connect(qtbot, window, monkeypatch, address, password="secret", person="Anna Lind"):
    """Catalogue ▸ Connect to team catalogue…, the dialog answered with `address` and `password`."""
    from ui import team
    from ui.team import Connection

    monkeypatch.setattr(team, "ask_connection", lambda parent, last, name: Connection(address, password, person))
    window.connect_team_action.trigger()


def connected(qtbot, make_window, monkeypatch, address):
    """A new window connected to the team catalogue at `address`: (window, its CatalogueState)."""
    window = make_window()
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as ready:
        connect(qtbot, window, monkeypatch, address)
    return window, ready.args[0]


def searched_from_a_design(qtbot, window, path):
    """`path` dropped, then its first match searched from (a catalogue design: decisions could be kept)."""
    drop_and_wait(qtbot, window, path)
    with qtbot.waitSignal(window.results_shown, timeout=WAIT_MS):
        window.search_match(window.model.match_at(0))
    qtbot.waitUntil(lambda: window.model.result.example_ids != (), timeout=WAIT_MS)
    return {a.text(): a for a in window.context_menu(window.model.match_at(1)).actions()}


def test_connecting_opens_the_team_catalogue_and_remembers_its_address_without_the_password(
        qtbot, make_window, team, monkeypatch, forget_passwords):
    folder, editor, _ = team
    window, state = connected(qtbot, make_window, monkeypatch, editor)
    assert state.team and state.searchable == 30 and not state.readonly and not state.root_note
    assert window.windowTitle().startswith("swim on this computer") and window.map_root_action.isEnabled()
    assert window.update_action.isEnabled()
    result = drop_and_wait(qtbot, window, folder / "img0007.png")
    assert result.matches[0].path == str(folder / "img0007.png") and result.matches[0].score == 1.0
    saved = window.settings["team/last_address"]
    assert saved == state.path and "secret" not in saved and saved.endswith("catalogue=swim")
    assert window.settings["catalogue/last"] == saved and window.settings["team/person"] == "Anna Lind"

    window.close()  # the next start opens it again, with the password typed in this session
    again = make_window()
    with qtbot.waitSignal(again.catalogue_ready, timeout=WAIT_MS) as reopened:
        again.open_start()
    assert reopened.args[0].path == saved and reopened.args[0].team


def test_a_viewer_searches_and_cannot_update_and_a_wrong_password_is_one_plain_sentence(
        qtbot, make_window, team, monkeypatch, forget_passwords):
    folder, _, viewer = team
    window, state = connected(qtbot, make_window, monkeypatch, viewer)
    assert state.readonly and not window.update_action.isEnabled()
    assert "read-only" in window.catalogue_label.full_text()
    assert drop_and_wait(qtbot, window, folder / "img0011.png").matches[0].score == 1.0

    other = make_window()
    connect(qtbot, other, monkeypatch, viewer.replace("bert", "carl"), password="wrong-password")
    qtbot.waitUntil(lambda: bool(error_texts(other)), timeout=WAIT_MS)
    [message] = error_texts(other)
    assert "wrong-password" not in message and "\n" not in message
    assert "refused the password" in message or "no account named" in message


def test_a_malformed_address_is_said_in_the_dialog_which_stays_open(qtbot):
    from ui.team import ConnectDialog

    dialog = ConnectDialog("", "")
    qtbot.addWidget(dialog)
    dialog.address_edit.setText("postgresql://anna:hunter2@server/db?catalogue=Not Valid")
    dialog.accept()
    assert dialog.result() == 0 and dialog.error_label.isVisibleTo(dialog)
    assert "must start with a letter" in dialog.error_label.text() and "hunter2" not in dialog.error_label.text()


def test_an_unmapped_shared_folder_is_said_once_and_mapping_it_is_remembered(
        qtbot, make_window, team, monkeypatch, tmp_path, forget_passwords):
    from ui import dialogs

    folder, editor, _ = team
    mounted = tmp_path / "Volumes" / "designs"
    shutil.copytree(folder, mounted)
    shutil.rmtree(folder)  # this computer mounts the share elsewhere
    window, state = connected(qtbot, make_window, monkeypatch, editor)
    assert state.root_note and not state.root_exists
    qtbot.waitUntil(lambda: bool(error_texts(window)), timeout=WAIT_MS)
    assert len(error_texts(window)) == 1 and "not reachable here" in error_texts(window)[0]
    result = drop_and_wait(qtbot, window, mounted / "img0004.png")
    assert all(m.missing for m in result.matches)  # searched all the same, the files shown as missing

    monkeypatch.setattr(dialogs, "choose_folder", lambda parent, start, title="": str(mounted))
    with qtbot.waitSignal(window.catalogue_ready, timeout=WAIT_MS) as remapped:
        window.map_root_action.trigger()
    state = remapped.args[0]
    assert state.root == str(mounted) and state.root_exists and not state.root_note
    assert window.settings["team/roots"] == {state.path: str(mounted)}
    qtbot.waitUntil(lambda: window.model.rowCount() > 0 and not window.model.match_at(0).missing, timeout=WAIT_MS)
    first = window.model.match_at(0)
    assert first.path == str(mounted / "img0004.png")  # thumbnails and Open use this computer's path
    assert len(error_texts(window)) <= 1  # nothing new said


def test_the_next_start_asks_for_the_password_and_a_team_catalogue_that_failed_to_open_stays_recent(
        qtbot, make_window, team, monkeypatch, forget_passwords):
    from swimsearch.stores import pg_address
    from ui import team as team_module
    from ui.team import Connection

    _, editor, _ = team
    window, state = connected(qtbot, make_window, monkeypatch, editor)
    saved = state.path
    window.close()
    pg_address._session_passwords.clear()  # SwimSearch closed: the typed password is gone
    monkeypatch.delenv("PGPASSWORD", raising=False)

    asked = []
    monkeypatch.setattr(team_module, "ask_connection",
                        lambda parent, last, name: asked.append(last) or Connection(last, "secret", name))
    again = make_window()
    with qtbot.waitSignal(again.catalogue_ready, timeout=WAIT_MS) as reopened:
        again.open_start()  # the window asks, as the error said it would, instead of leaving no catalogue open
    assert asked == [saved] and reopened.args[0].path == saved and not reopened.args[0].readonly
    assert saved in again.settings["catalogue/recent"]

    pg_address._session_passwords.clear()
    monkeypatch.setattr(team_module, "ask_connection", lambda parent, last, name: None)  # asked, and cancelled
    third = make_window()
    third.open_start()
    qtbot.waitUntil(lambda: bool(error_texts(third)), timeout=WAIT_MS)
    assert "asks for a password" in error_texts(third)[0]
    assert saved in third.settings["catalogue/recent"]  # still the team's catalogue: offered again next time


def test_a_viewers_window_offers_no_change_and_each_says_why(qtbot, make_window, team, monkeypatch, forget_passwords):
    """Same design / Not similar / Update / Watch are greyed out for a viewer, their tooltips saying why;
    an editor's window on the same catalogue offers them with their own tips."""
    folder, editor, viewer = team
    changes = ("update", "watch", "mark_same", "mark_different")
    decisions = ("Same design as the query", "Not similar to the query")
    window, _ = connected(qtbot, make_window, monkeypatch, viewer)
    menu = searched_from_a_design(qtbot, window, folder / "img0011.png")
    for name in changes:
        action = getattr(window, f"{name}_action")
        assert not action.isEnabled(), name
        assert "viewer rights" in action.toolTip() and "viewer rights" in action.statusTip(), name
    for text in decisions:
        assert not menu[text].isEnabled() and "viewer rights" in menu[text].toolTip()
    assert menu["Not like this"].isEnabled()  # steering a search changes nothing: offered

    other, _ = connected(qtbot, make_window, monkeypatch, editor)
    menu = searched_from_a_design(qtbot, other, folder / "img0011.png")
    for name in changes:
        action = getattr(other, f"{name}_action")
        assert action.isEnabled() and "viewer" not in action.toolTip(), name
    assert all(menu[text].isEnabled() for text in decisions)
