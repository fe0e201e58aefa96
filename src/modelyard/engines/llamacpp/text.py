"""Turning a stream of token bytes into text: UTF-8 across token boundaries, stop strings."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StopScanner:
    """Holds back text that could be the start of a stop string; reports when one appears."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stopped = False

    def push(self, data: bytes) -> str:
        """Feed a token's bytes; return the text that is safe to emit now."""
        self._pending += self._decoder.decode(data)
        return self._release()

    def flush(self) -> str:
        """End of generation: whatever is still held back is ordinary text."""
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(b"", final=True)
        out, self._pending = self._pending, ""
        return out

    def _release(self) -> str:
        cuts = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if cuts:
            self.stopped = True
            out, self._pending = self._pending[: min(cuts)], ""
            return out
        hold = max((self._overlap(s) for s in self._stops), default=0)
        cut = len(self._pending) - hold
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return out

    def _overlap(self, stop: str) -> int:
        """Length of the longest suffix of the pending text that is a prefix of ``stop``."""
        for size in range(min(len(stop) - 1, len(self._pending)), 0, -1):
            if self._pending.endswith(stop[:size]):
                return size
        return 0
