"""What exporting and registering a fine-tune refuse, each with its status and param."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class FineTuneError(ModelyardError):
    """Any refusal of an export or a fine-tune's registration (the CLI prints its message)."""


class InvalidExport(FineTuneError, ValueError):
    """An export that cannot be made as asked (nothing converts, say); ``param`` names the
    field to change."""

    status = 400
    code = "invalid_export"


class ExportNotFound(FineTuneError, LookupError):
    status = 404
    code = "export_not_found"

    def __init__(self, export_id: int) -> None:
        super().__init__(
            f"no export {export_id} (see `modelyard finetune list` or GET /api/finetune)",
            param="from_export",
        )


class InvalidFineTune(FineTuneError, ValueError):
    """A fine-tune that cannot be registered as given; ``param`` names the field."""

    status = 400
    code = "invalid_finetune"


class FineTuneNotFound(FineTuneError, LookupError):
    status = 404
    code = "finetune_not_found"

    def __init__(self, version: str) -> None:
        super().__init__(f"{version} was not registered as a fine-tune (see GET /api/finetune)")
