"""Redaction of one request: placeholders that stay the same across all of its texts, and
their restoration in the response, streamed or not."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

from modelyard.guard.pii.detector import Finding, PiiDetector

PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*_[0-9]+>")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")


def placeholder(entity: str, number: int) -> str:
    return f"<{entity}_{number}>"


def _canonical(finding: Finding) -> str:
    """What makes two findings the same value: "138 1234 5678" is "13812345678"."""
    if finding.entity == "EMAIL":
        return finding.text.lower()
    if finding.entity == "IP_ADDRESS":
        return str(ipaddress.ip_address(finding.text))
    return _NOT_ALNUM.sub("", finding.text).upper()


class Redaction:
    """One per request: replaces PII by ``<ENTITY_n>``, the same value by the same
    placeholder in every text of the request, and puts the originals back on the way out.

    A value written two ways ("138 1234 5678", "13812345678") gets one placeholder, which
    restores to the way it was first written."""

    def __init__(self, detector: PiiDetector) -> None:
        self._detector = detector
        self._placeholders: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._numbers: Counter[str] = Counter()
        self._findings: list[Finding] = []

    def redact(self, text: str) -> str:
        findings = self._detector.detect(text)
        if not findings:
            return text
        parts: list[str] = []
        position = 0
        for finding in findings:
            parts += (text[position : finding.start], self._placeholder_for(finding))
            position = finding.end
        parts.append(text[position:])
        self._findings += findings
        return "".join(parts)

    @property
    def findings(self) -> list[Finding]:
        """Everything redacted so far, text by text."""
        return list(self._findings)

    def counts(self) -> dict[str, int]:
        """Entity type -> number of findings (not of distinct values)."""
        return dict(Counter(f.entity for f in self._findings))

    @property
    def placeholders(self) -> dict[str, str]:
        """Placeholder -> the original it stands for."""
        return dict(self._originals)

    def restore(self, text: str) -> str:
        """Placeholders back to their originals; placeholders this request never made stay."""
        if not self._originals or "<" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self._originals.get(m.group(), m.group()), text)

    def stream_restorer(self) -> StreamRestorer:
        return StreamRestorer(self)

    def unfinished_placeholder(self, text: str) -> int:
        """Where a tail of ``text`` that may grow into one of this request's placeholders
        starts ("... call <PHO"), or ``len(text)`` when there is none."""
        if not self._originals:
            return len(text)
        longest = max(map(len, self._originals))
        start = text.rfind("<", max(0, len(text) - longest + 1))
        if start == -1:
            return len(text)
        tail = text[start:]
        if any(len(p) > len(tail) and p.startswith(tail) for p in self._originals):
            return start
        return len(text)

    def _placeholder_for(self, finding: Finding) -> str:
        key = (finding.entity, _canonical(finding))
        made = self._placeholders.get(key)
        if made is None:
            self._numbers[finding.entity] += 1
            made = placeholder(finding.entity, self._numbers[finding.entity])
            self._placeholders[key] = made
            self._originals[made] = finding.text
        return made


class StreamRestorer:
    """Restores placeholders in a streamed response whose chunks may split one: holds back
    a tail that could still become a placeholder of this request, and nothing else."""

    def __init__(self, redaction: Redaction) -> None:
        self._redaction = redaction
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """The text that is safe to emit now, restored."""
        text = self._pending + chunk
        cut = self._redaction.unfinished_placeholder(text)
        self._pending = text[cut:]
        return self._redaction.restore(text[:cut])

    def flush(self) -> str:
        """What is still held back, at the end of the stream."""
        text, self._pending = self._pending, ""
        return self._redaction.restore(text)
