"""What can go wrong in release; each error says what to do and maps to an HTTP status."""

from __future__ import annotations


class ReleaseError(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_release") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
