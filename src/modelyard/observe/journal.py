"""The request log's journal: each row appended to a local file before its request is
answered, so that a replica killed without warning (SIGKILL, an OOM kill) loses no row.

The writer's queue lives in memory and is written to the store about once a second; what it
held when the process died would be gone. The journal keeps the same rows on local disk:
``append`` is one ``write`` to a file opened for appending, which reaches the operating
system's page cache, and the page cache outlives the process (not the machine: there is no
fsync; a power cut loses what a crash of the whole host would). No database and no network
on the request path.

Rows go to numbered segment files, each locked (``flock``) by the process that writes it.
Once the writer has stored every row of a segment, the segment is deleted. A process that
dies leaves its segments behind, unlocked: the next process started on the same home
(the restarted replica, the container restarted in its pod) ``replay``s them into the store
before it serves, skipping rows already there (the row id is the key), so each answered
request is in the log exactly once.

Content is sealed with the content cipher before it is written (the journal never holds a
prompt in clear), and dropped when the server stores no content.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import from_json

log = logging.getLogger(__name__)
SUFFIX = ".jsonl"
JOURNAL_DIR = "journal"  # under the home
# Rows per segment file: at a high rate a segment is deleted once its last row is stored.
JOURNAL_SEGMENT_ROWS = 5_000
Seal = Callable[[bytes], bytes]


@dataclass
class _Segment:
    path: Path
    fd: int
    first: int  # the sequence number of its first row
    end: int  # one past its last row's
    kept: bool = False  # a row in it was not stored: left for the next replay


class RequestJournal:
    """Segments of journaled rows in ``directory``; used from the event loop only."""

    def __init__(self, directory: Path, *, seal: Seal | None, segment_rows: int) -> None:
        """``seal`` encrypts each row's content (None: content is journaled as JSON, as
        the store would hold it)."""
        self._directory = directory
        self._seal = seal
        self._segment_rows = segment_rows
        self._segments: deque[_Segment] = deque()
        self._appended = 0  # rows appended by this process
        self._settled = 0  # of those, rows the writer is done with (stored or given up)
        self._opened = 0
        self._stem = f"{os.getpid()}-{os.urandom(4).hex()}"

    def append(self, record: bytes, content: bytes | None) -> bool:
        """Journal one row (its record's JSON without content, and the content's JSON);
        False if the disk refused it."""
        sealed = content
        if content is not None and self._seal is not None:
            sealed = self._seal(content)
        line = b'{"record":' + record + b',"content":'
        line += b"null" if sealed is None else b'"' + base64.b64encode(sealed) + b'"'
        try:
            segment = self._current()
            os.write(segment.fd, line + b"}\n")
        except OSError as error:  # a full or read-only disk: the row still goes to the store
            log.warning("request log journal: could not append a row: %s", error)
            self._appended += 1  # keeps the count in step with the writer's queue
            return False
        self._appended += 1
        segment.end = self._appended
        return True

    def settled(self, rows: int, *, stored: bool) -> None:
        """The writer is done with the next ``rows`` rows (in the order they were
        appended): stored, or given up after its retries (``stored=False``: the segments
        holding them are kept for the next replay)."""
        start = self._settled
        self._settled += rows
        for segment in self._segments:
            if not stored and segment.first < self._settled and segment.end > start:
                segment.kept = True
        # A segment all of whose rows are settled goes, the one being written included
        # (the next row opens a new one): at a low rate, each flush removes its segment.
        while self._segments and self._segments[0].end <= self._settled:
            self._close(self._segments.popleft())

    def close(self) -> None:
        """Release every segment (at shutdown, after the writer's last batch): stored
        segments are deleted, the others stay for the next start."""
        while self._segments:
            segment = self._segments.popleft()
            if segment.end > self._settled:
                segment.kept = True
            self._close(segment)

    def _current(self) -> _Segment:
        if self._segments:
            last = self._segments[-1]
            if last.end - last.first < self._segment_rows:
                return last
        self._directory.mkdir(parents=True, exist_ok=True)
        self._opened += 1
        path = self._directory / f"{self._stem}-{self._opened:08d}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours alone: a new file
        segment = _Segment(path, fd, self._appended, self._appended)
        self._segments.append(segment)
        return segment

    def _close(self, segment: _Segment) -> None:
        try:
            if not segment.kept:
                segment.path.unlink(missing_ok=True)
        finally:
            os.close(segment.fd)  # and with it the lock


@dataclass(frozen=True)
class Leftover:
    """A segment left by a process that is gone, locked by this one while it is replayed."""

    path: Path
    fd: int

    def rows(self, open_sealed: Seal | None) -> Iterator[tuple[dict[str, Any], bytes | None]]:
        """Each journaled row: its record's fields and its content's JSON (opened). A line
        cut short by the kill, or unreadable, is skipped with a warning."""
        with self.path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    entry = from_json(line)
                    record = entry["record"]
                    sealed = entry["content"]
                    content = None if sealed is None else base64.b64decode(sealed)
                    if content is not None and open_sealed is not None:
                        content = open_sealed(content)
                except (ValueError, KeyError, TypeError) as error:
                    log.warning("journal %s line %d skipped: %s", self.path, number, error)
                    continue
                yield record, content

    def done(self) -> None:
        """Replayed: delete it and release the lock."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)

    def keep(self) -> None:
        """Not replayed (the store refused it): release the lock and leave it for later."""
        os.close(self.fd)


def leftovers(directory: Path) -> list[Leftover]:
    """The segments in ``directory`` that no live process holds, oldest first, each locked
    now by this process (two replicas sharing a home never replay the same segment)."""
    if not directory.is_dir():
        return []
    found: list[Leftover] = []
    for path in sorted(directory.glob(f"*{SUFFIX}"), key=_age):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # replayed by another process meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live process writes it
            os.close(fd)
            continue
        if not path.exists():  # replayed and deleted between the listing and the lock
            os.close(fd)
            continue
        found.append(Leftover(path, fd))
    return found


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
