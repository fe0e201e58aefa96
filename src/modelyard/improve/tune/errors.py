"""What tuning refuses, each with its status and the parameter at fault."""

from __future__ import annotations

from modelyard.errors import ModelyardError


class TuneError(ModelyardError):
    """Any refusal of a study (the CLI prints its message)."""


class InvalidStudy(TuneError, ValueError):
    """A study that cannot run as asked; ``param`` names the field to change."""

    status = 400
    code = "invalid_study"


class StudyNotFound(TuneError, LookupError):
    status = 404
    code = "not_found"

    def __init__(self, study_id: int) -> None:
        super().__init__(f"no study {study_id} (see `modelyard tune list`)")


class StudyBusy(TuneError):
    """A study that is running here, or done, cannot be resumed; one not running here
    cannot be stopped."""

    status = 409
    code = "study_state"
