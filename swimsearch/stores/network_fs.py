"""Whether a file lives on a network file system (NFS, SMB/CIFS, sshfs...), where SQLite must not be written.

SQLite's own documentation warns against writing a database over a network
file system: its locks are advisory and unreliable there (NFS, SMB), and WAL
mode needs shared memory that a network share cannot provide. A catalogue
found on one is therefore opened for searching only (without locks or WAL:
read as an immutable file), and an update is refused with a sentence that
points to the team catalogue, which is made for sharing.

Detected from the mount table: /proc/mounts on Linux, the `mount` command's
output elsewhere on Unix (macOS lists "(smbfs, ...)"), the drive type on
Windows. Tests pass a mount table of their own.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from ..errors import CatalogueError

log = logging.getLogger(__name__)

#: File system types that are network shares (Linux names; macOS's smbfs/afpfs/webdav too).
NETWORK_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs", "afpfs", "webdav", "davfs", "9p",
    "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "fuse.sshfs", "sshfs", "fuse.glusterfs", "fuse.cephfs",
    "fuse.s3fs", "fuse.rclone", "fuse.davfs2", "fuse.gvfsd-fuse", "osxfuse",
    # more shares reached through FUSE, and a virtual machine's folders shared by its host (whose locks SQLite
    # cannot trust either: VirtualBox's vboxsf is the classic case)
    "fuse.smbnetfs", "fuse.curlftpfs", "fuse.juicefs", "fuse.gcsfuse", "fuse.s3ql", "fuse.goofys", "fuse.mountpoint-s3",
    "vboxsf", "fuse.vmhgfs-fuse", "vmhgfs", "prl_fs",
})


def _unescape(field: str) -> str:
    """/proc/mounts writes spaces, tabs, newlines and backslashes in paths as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_proc_mounts(text: str) -> list[tuple[str, str]]:
    """(mount point, file system type) of each line of /proc/mounts (or /etc/mtab)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            mounts.append((_unescape(fields[1]), fields[2].lower()))
    return mounts


def parse_mount_output(text: str) -> list[tuple[str, str]]:
    """(mount point, type) from BSD/macOS `mount`: "//anna@server/designs on /Volumes/designs (smbfs, nodev, ...)"."""
    mounts = []
    for line in text.splitlines():
        if " on " not in line or "(" not in line:
            continue
        rest = line.split(" on ", 1)[1]
        point, _, options = rest.rpartition(" (")
        kind = options.split(",")[0].strip(" )").lower()
        mounts.append((point, kind))
    return mounts


def mount_table() -> list[tuple[str, str]]:
    """This computer's mounts (empty when they cannot be read: then nothing counts as a network share)."""
    try:
        return parse_proc_mounts(Path("/proc/mounts").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        pass
    try:
        done = subprocess.run(["mount"], capture_output=True, text=True, timeout=5)  # noqa: S603, S607
        return parse_mount_output(done.stdout)
    except (OSError, subprocess.SubprocessError):
        return []


def file_system_of(path: str | os.PathLike, mounts: list[tuple[str, str]]) -> str | None:
    """The type of the file system holding `path`: that of the longest mount point above it.

    Of several mounts on the same point the last one listed wins: it hides the ones before it
    (autofs lists its trigger, then the NFS share it mounts there).
    """
    target = os.path.realpath(path)
    best, kind = -1, None
    for point, fs_type in mounts:
        inside = target == point or target.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and len(point) >= best:
            best, kind = len(point), fs_type
    return kind


def network_file_system(path: str | os.PathLike, mounts: list[tuple[str, str]] | None = None) -> str | None:
    """The network file system type `path` is on ("nfs4", "cifs", "fuse.sshfs", "smb share"...), or None if local.

    Args:
        mounts: (mount point, type) pairs; default: this computer's mount table.
    """
    if sys.platform == "win32" and mounts is None:
        return _windows_share(path)
    kind = file_system_of(path, mount_table() if mounts is None else mounts)
    if kind is None:
        return None
    if kind in NETWORK_TYPES or kind.startswith(("nfs", "smb", "cifs")):
        return kind
    return None


def _windows_share(path: str | os.PathLike) -> str | None:
    text = os.path.abspath(path)
    if text.startswith("\\\\"):
        return "smb share"
    try:
        import ctypes

        drive = os.path.splitdrive(text)[0] + "\\"
        if ctypes.windll.kernel32.GetDriveTypeW(drive) == 4:  # type: ignore[attr-defined]  # DRIVE_REMOTE
            return "network drive"
    except (OSError, AttributeError, ValueError):
        log.debug("cannot tell the drive type of %s", text, exc_info=True)
    return None


def updates_refused(path: str | os.PathLike, kind: str) -> str:
    """Why a catalogue file on a network file system is searched but not updated (one sentence)."""
    return (
        f"The catalogue {path} is on a network drive ({kind}), where SQLite's locking is not safe, so it can be "
        "searched but not updated there. For a catalogue several people update, use a team catalogue on a "
        f"PostgreSQL server: swimsearch copy --catalogue {path} --to postgresql://USER@SERVER/DATABASE"
    )


def refuse_network_folder(folder: Path) -> None:
    """Refuse to create a catalogue file in a folder on a network file system."""
    kind = network_file_system(folder) if folder.is_dir() else None
    if kind:
        raise CatalogueError(
            f"The folder {folder} is on a network drive ({kind}), where SQLite's locking is not safe, so SwimSearch "
            "keeps no catalogue file there: keep it on this computer, or use a team catalogue on a PostgreSQL server "
            "for a catalogue several people update."
        )
