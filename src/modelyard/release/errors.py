"""What can go wrong in release; each error says what to do and maps to an HTTP status."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class ReleaseError(ModelyardError):
    status = 400
    code = "invalid_release"

    def __init__(self, message: str, status: int = 400, code: str = "invalid_release") -> None:
        super().__init__(message, status=status, code=code)
