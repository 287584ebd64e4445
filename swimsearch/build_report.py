"""What a build or update did, in counts a person reads: `BuildReport` and its summary line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from .images import skipped_summary


@dataclass(frozen=True)
class BuildReport:
    """What a build or update did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unreadable: int = 0
    unchanged: int = 0
    indexed: int = 0
    refitted: bool = False
    cancelled: bool = False
    seconds: float = 0.0
    embed_seconds: float = 0.0
    network_seconds: float = 0.0  # of embed_seconds, the time spent inside the network
    decode_wait_seconds: float = 0.0  # of embed_seconds, the time the network waited for a decoded picture
    commit_seconds: float = 0.0  # of embed_seconds, the time spent committing batches
    decode_seconds: float = 0.0  # decoding time summed over the decoder threads (beside the network)
    decoders: int = 0  # decoder threads used
    errors: tuple[tuple[str, str], ...] = ()  # (relative path, reason) of files unreadable this run
    retried: int = 0  # files read again because their last read failed for a passing reason
    came_back: int = 0  # files gone before and back again: not read again
    moved: int = 0  # files found at a new place in the folder by their content: not read again
    held: int = 0  # files gone from the folder but kept, until a person confirms (`held_reason`)
    held_reason: str = ""
    #: Files in the folder that SwimSearch does not read, by kind (".indd": 3); recounted on every scan.
    skipped: Mapping[str, int] = field(default_factory=dict)
    #: Subfolders (relative, "." for the root) that could not be listed, so their files were not seen.
    unlisted_folders: tuple[str, ...] = ()
    unseen: int = 0  # files the catalogue holds inside those folders: kept as they were
    detailed: int = 0  # images of an older catalogue read again for their details (details.py)

    @property
    def read_nothing(self) -> bool:
        """Finished with every picture unreadable and none in the catalogue (a new one of such a folder is refused)."""
        kept = self.added + self.updated + self.unchanged + self.came_back + self.moved + self.held + self.unseen
        return not self.cancelled and self.unreadable > 0 and kept == 0

    @property
    def images_per_second(self) -> float:
        done = self.added + self.updated + self.unreadable
        return done / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def summary(self) -> str:
        state = "cancelled" if self.cancelled else "done"
        extras = "".join(
            f", {count} {words}"
            for count, words in ((self.retried, "retried"), (self.came_back, "came back"), (self.moved, "moved"),
                                 (self.detailed, "read again for their details"))
            if count
        )
        text = (
            f"{state}: {self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unreadable} unreadable, {self.unchanged} unchanged{extras}; {self.indexed} images searchable"
        )
        if self.skipped:
            text += f"; not read: {skipped_summary(self.skipped)}"
        if self.unlisted_folders:
            text += f"; {len(self.unlisted_folders)} folder(s) could not be listed"
            if self.unseen:
                text += f" ({self.unseen} files in them kept as they were)"
        if self.held:
            text += f"; {self.held} gone files kept until confirmed"
        return text


def as_dict(report: BuildReport) -> dict[str, Any]:
    """A JSON-ready dict of a build report."""
    out = asdict(report)
    out["errors"] = [list(e) for e in report.errors]
    out["images_per_second"] = report.images_per_second
    return out


@dataclass
class BuildCounts:
    """The running counts of one build's embedding phase."""

    added: int = 0
    updated: int = 0
    unreadable: int = 0
    retried: int = 0
    network_seconds: float = 0.0
    commit_seconds: float = 0.0
    errors: list[tuple[str, str]] = field(default_factory=list)
