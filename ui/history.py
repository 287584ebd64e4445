"""Back and forward through the queries of this session (Alt+Left / Alt+Right)."""

from __future__ import annotations

from dataclasses import dataclass

from swimsearch.search import SearchResult

from .queries import Query


@dataclass(frozen=True)
class HistoryEntry:
    """A query as the window showed it: the request (to run it again) and its result."""

    request: Query  # what the user asked, as it runs again
    result: SearchResult
    version: int = 0  # which opening of the catalogue produced the result


class History:
    """A browser-style history: going back then making a new query drops the forward entries."""

    def __init__(self, limit: int = 200):
        self._entries: list[HistoryEntry] = []
        self._index = -1
        self._limit = limit

    @property
    def current(self) -> HistoryEntry | None:
        return self._entries[self._index] if self._index >= 0 else None

    def push(self, entry: HistoryEntry) -> None:
        del self._entries[self._index + 1 :]
        self._entries.append(entry)
        if len(self._entries) > self._limit:
            del self._entries[0]
        self._index = len(self._entries) - 1

    def replace_current(self, entry: HistoryEntry) -> None:
        """The current query ran again (after an update): keep its place."""
        if self._index < 0:
            self.push(entry)
        else:
            self._entries[self._index] = entry

    def can_go_back(self) -> bool:
        return self._index > 0

    def can_go_forward(self) -> bool:
        return self._index < len(self._entries) - 1

    def back(self) -> HistoryEntry | None:
        if not self.can_go_back():
            return None
        self._index -= 1
        return self.current

    def forward(self) -> HistoryEntry | None:
        if not self.can_go_forward():
            return None
        self._index += 1
        return self.current

    def clear(self) -> None:
        self._entries.clear()
        self._index = -1

    def __len__(self) -> int:
        return len(self._entries)
