"""The errors of labelling and distillation, each with its status and code."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class InvalidLabelling(ModelyardError, ValueError):
    """A labelling that cannot run as asked, with what to change."""

    status = 400
    code = "invalid_labelling"


class InvalidDistillation(ModelyardError, ValueError):
    """A distillation that cannot train as asked, with what to change."""

    status = 400
    code = "invalid_distillation"


class LabelRunNotFound(ModelyardError, LookupError):
    status = 404
    code = "label_run_not_found"

    def __init__(self, run_id: int) -> None:
        super().__init__(f"no label run {run_id} (see GET /api/label)")


class DistillationNotFound(ModelyardError, LookupError):
    status = 404
    code = "distillation_not_found"

    def __init__(self, distillation_id: int) -> None:
        super().__init__(f"no distillation {distillation_id} (see GET /api/distil)")


class LabelRunActive(ModelyardError):
    """The run is being labelled by another job or process right now."""

    status = 409
    code = "label_run_active"


class GatewayFailed(ModelyardError):
    """The serving path refused or failed a request a job depends on."""

    status = 502
    code = "gateway_failed"
