"""PII detection and redaction: Chinese and international identifiers, checksum-validated
where the identifier has a check digit. See docs/pii.md."""

from typing import Literal

from modelyard.guard.pii.detector import Finding, PiiDetector, UnknownEntity
from modelyard.guard.pii.phones import DEFAULT_PHONE_REGIONS, UnknownRegion
from modelyard.guard.pii.recognizers import ENTITIES
from modelyard.guard.pii.redaction import Redaction, StreamRestorer

PiiPolicy = Literal["off", "detect", "redact", "block"]

__all__ = [
    "DEFAULT_PHONE_REGIONS",
    "ENTITIES",
    "Finding",
    "PiiDetector",
    "PiiPolicy",
    "Redaction",
    "StreamRestorer",
    "UnknownEntity",
    "UnknownRegion",
]
