"""The errors of compression, each with its status and code."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class InvalidCompression(ModelyardError, ValueError):
    """A compression that cannot run as asked, with what to change."""

    status = 400
    code = "invalid_compression"


class CompressionNotFound(ModelyardError, LookupError):
    status = 404
    code = "compression_not_found"

    def __init__(self, compression_id: int) -> None:
        super().__init__(f"no compression {compression_id} (see GET /api/compress)")


class MeasurementFailed(ModelyardError):
    """A variant could not be measured (its probe process failed); the message has its
    last lines of output."""

    status = 500
    code = "measurement_failed"
