"""Naming catalogues: team catalogue addresses (never showing a password) and SQLite files on network drives."""

from __future__ import annotations

import pytest

from swimsearch.errors import CatalogueError
from swimsearch.stores import network_fs
from swimsearch.stores.pg_address import TeamAddress, display_address, is_team_address


def test_an_address_names_server_database_and_catalogue_and_hides_its_password():
    address = TeamAddress.parse("postgresql://anna:s3cr%40t@db.example.com:5433/designs?catalogue=swimwear&sslmode=require")
    assert (address.user, address.host, address.port, address.database) == ("anna", "db.example.com", 5433, "designs")
    assert address.catalogue == "swimwear" and address.password == "s3cr@t"
    assert address.display == "postgresql://anna@db.example.com:5433/designs?sslmode=require&catalogue=swimwear"
    assert "s3cr" not in address.display and "s3cr" not in address.conninfo()
    assert "catalogue" not in address.conninfo() and "sslmode=require" in address.conninfo()
    assert address.server == "db.example.com"


def test_the_catalogue_defaults_to_main_and_a_socket_address_works():
    address = TeamAddress.parse("postgres:///designs?host=/var/run/postgresql")
    assert address.catalogue == "main" and address.database == "designs" and address.server == "this computer"
    assert address.display == "postgresql:///designs?host=/var/run/postgresql&catalogue=main"  # as written, not %2F
    assert TeamAddress.parse(address.display) == address  # what the window saves opens the same catalogue


@pytest.mark.parametrize("bad", ["postgresql://a@host/db?catalogue=Drop Table", "postgresql://a@host:99999/db"])
def test_a_bad_address_is_one_sentence_without_the_password(bad):
    with pytest.raises(CatalogueError) as refused:
        TeamAddress.parse(bad.replace("a@", "a:hunter2@"))
    assert "hunter2" not in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("bad", ["postgresql://anna:hunter2/x@host/db", "postgresql://anna:hunter2#x@host/db", "postgresql://anna:hunter2?x@host/db"])
def test_a_password_with_unescaped_characters_is_never_echoed(bad):
    # urllib reads what follows the ":" as the port: its own message quoted the password
    with pytest.raises(CatalogueError) as refused:
        TeamAddress.parse(bad)
    assert "hunter2" not in str(refused.value) and "%40" in str(refused.value)


def test_only_postgresql_addresses_are_team_catalogues():
    assert is_team_address("postgresql://x/y") and is_team_address("POSTGRES://x/y")
    assert not is_team_address("/home/anna/designs.swimcat") and not is_team_address("postgresql.swimcat")
    assert display_address("postgresql://anna:pw@h/db") == "postgresql://anna@h/db?catalogue=main"


# --- SQLite catalogues on network drives -----------------------------------------------------------------

PROC_MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
server:/export/designs /mnt/designs nfs4 rw,relatime,vers=4.2 0 0
//nas/shared\\040drive /mnt/shared\\040drive cifs rw,relatime 0 0
anna@host:/srv /home/anna/remote fuse.sshfs rw,nosuid 0 0
tmpfs /tmp tmpfs rw 0 0
"""

MAC_MOUNT = """\
/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)
//anna@nas._smb._tcp.local/Designs on /Volumes/Designs (smbfs, nodev, nosuid, mounted by anna)
"""


def test_network_file_systems_are_found_in_the_mount_table():
    mounts = network_fs.parse_proc_mounts(PROC_MOUNTS)
    assert network_fs.network_file_system("/mnt/designs/summer/a.swimcat", mounts) == "nfs4"
    assert network_fs.network_file_system("/mnt/shared drive/x.swimcat", mounts) == "cifs"
    assert network_fs.network_file_system("/home/anna/remote/c.swimcat", mounts) == "fuse.sshfs"
    assert network_fs.network_file_system("/home/anna/local.swimcat", mounts) is None
    assert network_fs.network_file_system("/mnt/designs-local/c.swimcat", mounts) is None  # a prefix is not a parent
    mac = network_fs.parse_mount_output(MAC_MOUNT)
    assert network_fs.network_file_system("/Volumes/Designs/c.swimcat", mac) == "smbfs"
    assert network_fs.network_file_system("/Users/anna/c.swimcat", mac) is None


def test_a_share_mounted_over_another_mount_point_is_found():
    # autofs (a company's usual way to mount shares on demand) lists its trigger, then the share on the same point
    mounts = network_fs.parse_proc_mounts(
        "/dev/sda1 / ext4 rw 0 0\n/etc/auto.direct /mnt/team autofs rw 0 0\nnas:/team /mnt/team nfs4 rw 0 0\n"
    )
    assert network_fs.network_file_system("/mnt/team/designs.swimcat", mounts) == "nfs4"


@pytest.mark.parametrize("kind", ["vboxsf", "fuse.vmhgfs-fuse", "fuse.smbnetfs", "fuse.gcsfuse"])
def test_a_virtual_machines_shared_folder_and_fuse_shares_count_as_network_drives(kind):
    mounts = network_fs.parse_proc_mounts(f"/dev/sda1 / ext4 rw 0 0\nshare /media/sf_designs {kind} rw 0 0\n")
    assert network_fs.network_file_system("/media/sf_designs/designs.swimcat", mounts) == kind


@pytest.fixture
def on_a_share(tmp_path, monkeypatch):
    """tmp_path/share behaves as an NFS mount (an injected mount table)."""
    share = tmp_path / "share"
    share.mkdir()
    table = [("/", "ext4"), (str(tmp_path.resolve()), "ext4"), (str(share.resolve()), "nfs4")]
    monkeypatch.setattr(network_fs, "mount_table", lambda: table)
    return share


def test_a_catalogue_on_a_network_drive_is_searched_but_an_update_is_refused(tmp_path, on_a_share, fake_embedder, small_config):
    import shutil

    from helpers import build_pattern_catalogue
    from swimsearch.catalogue import Catalogue
    from swimsearch.search import SearchEngine

    folder, path = build_pattern_catalogue(tmp_path / "pics", tmp_path / "local.swimcat", fake_embedder, small_config, 20)
    shared = on_a_share / "team.swimcat"
    shutil.copy(path, shared)
    before = shared.read_bytes()
    with Catalogue.open(shared) as catalogue:
        assert catalogue.readonly
        best = SearchEngine(catalogue, fake_embedder, small_config).search(folder / "img0004.png", top_n=1).matches[0]
        assert best.relpath == "img0004.png"
        with pytest.raises(CatalogueError) as refused:
            catalogue.update(fake_embedder, small_config)
    message = str(refused.value)
    assert "network drive (nfs4)" in message and "team catalogue" in message and "swimsearch copy" in message
    assert shared.read_bytes() == before and not (on_a_share / "team.swimcat-wal").exists()


def test_no_catalogue_is_created_on_a_network_drive_and_a_folder_there_gets_one_per_user(tmp_path, on_a_share):
    from swimsearch import locations
    from swimsearch.catalogue import Catalogue

    with pytest.raises(CatalogueError, match="keeps no catalogue file there"):
        Catalogue.create(on_a_share / "new.swimcat", on_a_share)
    chosen = locations.catalogue_for_folder(on_a_share, tmp_path / "user-data")
    assert chosen.parent == tmp_path / "user-data" / "catalogues"  # on this computer, as for a read-only folder


def test_the_driver_is_loaded_only_when_a_team_catalogue_is_opened(tmp_path):
    import subprocess
    import sys

    from helpers import REPO

    script = (
        "import sys\n"
        "from swimsearch import cli\n"
        "from swimsearch.catalogue import Catalogue\n"
        "from swimsearch.errors import CatalogueError\n"
        f"Catalogue.create({str(tmp_path / 'c.swimcat')!r}, {str(tmp_path)!r}).close()\n"
        "print('before', 'psycopg' in sys.modules)\n"
        "try:\n"
        "    Catalogue.open('postgresql://nobody@127.0.0.1:1/none?connect_timeout=1')\n"
        "except CatalogueError as exc:\n"
        "    print('refused:', exc)\n"
        "print('after', 'psycopg' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "before False" and lines[-1] == "after True"
    assert "cannot be reached; check the address and the network" in lines[1]


@pytest.mark.parametrize("address, said", [
    ("postgresql://anna@nosuchhost.invalid/designs?connect_timeout=2", "The server named in the address of the team catalogue main cannot be found"),
    ("postgresql://anna@127.0.0.1:1/designs?sslmode=bogus", "sets sslmode to 'bogus', which PostgreSQL does not accept"),
    ("postgresql://anna@127.0.0.1:1/designs?bogus=1", 'is not valid: invalid URI query parameter: "bogus".'),
])
def test_a_connection_refused_before_the_server_answers_is_one_sentence_without_log_lines(address, said):
    import subprocess
    import sys

    from helpers import REPO

    done = subprocess.run([sys.executable, "-m", "swimsearch.cli", "info", "--catalogue", address],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("swimsearch: ") and said in done.stderr
    assert done.stderr.count("\n") == 1 and "\\n" not in done.stderr and "ERROR" not in done.stderr and "Errno" not in done.stderr, done.stderr


def test_a_server_that_dies_mid_update_is_a_lost_connection_in_one_sentence(caplog):
    from swimsearch.stores.pg_schema import describe_pg_error

    class Killed(Exception):  # what psycopg raises when the server process serving an update is killed
        sqlstate = None

    text = ("consuming input failed: server closed the connection unexpectedly\n\tThis probably means the server "
            "terminated abnormally\n\tbefore or while processing the request.")
    with caplog.at_level("WARNING"):
        said = str(describe_pg_error(Killed(text), "team"))
    assert said == "The connection to the team catalogue team was lost; what was saved before is kept. Try again."
    assert not caplog.records  # nothing printed before the sentence
