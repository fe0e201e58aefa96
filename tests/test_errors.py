"""One error type: every error modelyard raises on purpose says how it leaves the API."""

from __future__ import annotations

import pytest

from modelyard.engines.base import ContextLengthExceeded, EngineError, EngineNotReady
from modelyard.engines.llamacpp.scheduler import EngineOverloaded
from modelyard.errors import ModelyardError, error_responses, type_of
from modelyard.evaluate.compare import NotComparable
from modelyard.evaluate.datasets import DatasetNotFound, InvalidDataset
from modelyard.evaluate.runs import RunNotFound
from modelyard.guard.auth import Forbidden, LoginRequired
from modelyard.guard.errors import KeyNotFound
from modelyard.guard.gate import Refusal
from modelyard.guard.keyring import AuthenticationFailed
from modelyard.observe.alerts.errors import AlertRuleExists, AlertRuleNotFound
from modelyard.observe.drift_jobs import DriftReportNotFound, NotEnoughData
from modelyard.observe.feedback import FeedbackRefused
from modelyard.observe.queries import RequestNotFound
from modelyard.registry import InvalidRegistration, ModelNotFound
from modelyard.registry.errors import ImmutableRecord
from modelyard.release.errors import ReleaseError
from modelyard.routing import ModelNotRoutable
from modelyard.routing.policies import PolicyRefused
from modelyard.serving.errors import APIError


class Gone(ModelyardError):
    status = 410
    code = "gone"


def test_class_attributes_are_defaults_a_raise_may_override() -> None:
    error = Gone("it left")
    assert (error.status, error.code, error.openai_type, error.param) == (
        410,
        "gone",
        "server_error",
        None,
    )
    moved = Gone("elsewhere", status=404, param="id", headers={"x-why": "moved"})
    assert (moved.status, moved.openai_type, moved.param, dict(moved.headers)) == (
        404,
        "not_found_error",
        "id",
        {"x-why": "moved"},
    )
    assert Gone.status == 410 and not Gone("again").headers  # the class is untouched
    assert moved.body() == {
        "error": {"message": "elsewhere", "type": "not_found_error", "param": "id", "code": "gone"}
    }


@pytest.mark.parametrize(
    ("error", "status", "code", "type_", "param"),
    [
        (EngineError("x"), 500, "engine_error", "server_error", None),
        (EngineNotReady("x"), 503, "engine_not_ready", "server_error", None),
        (ContextLengthExceeded("x"), 400, "context_length_exceeded", "invalid_request_error", None),
        (
            Refusal(429, "slow down", "rate_limit_exceeded"),
            429,
            "rate_limit_exceeded",
            "rate_limit_error",
            None,
        ),
        (Forbidden("no"), 403, "permission_denied", "permission_error", None),
        (KeyNotFound("k"), 404, "key_not_found", "not_found_error", None),
        (ModelNotFound("m"), 404, "not_found", "not_found_error", None),
        (InvalidRegistration("x"), 400, "invalid_registration", "invalid_request_error", None),
        (ImmutableRecord("x"), 409, "conflict", "invalid_request_error", None),
        (
            ReleaseError("x", status=409, code="conflict"),
            409,
            "conflict",
            "invalid_request_error",
            None,
        ),
        (PolicyRefused("x"), 400, "invalid_policy", "invalid_request_error", None),
        (ModelNotRoutable("m"), 404, "model_not_found", "not_found_error", "model"),
        (NotComparable("x"), 400, "not_comparable", "invalid_request_error", None),
        (DatasetNotFound("d"), 404, "dataset_not_found", "not_found_error", None),
        (InvalidDataset("x"), 400, "invalid_dataset", "invalid_request_error", None),
        (RunNotFound(1), 404, "not_found", "not_found_error", None),
        (FeedbackRefused("r"), 404, "request_not_found", "not_found_error", "request_id"),
        (RequestNotFound("r"), 404, "request_not_found", "not_found_error", None),
        (NotEnoughData("x"), 400, "not_enough_data", "invalid_request_error", None),
        (DriftReportNotFound(1), 404, "not_found", "not_found_error", None),
        (AlertRuleNotFound("a"), 404, "alert_rule_not_found", "not_found_error", None),
        (AlertRuleExists("a"), 409, "alert_rule_exists", "invalid_request_error", None),
        (APIError(504, "late"), 504, None, "timeout", None),
    ],
)
def test_each_error_says_how_it_leaves(
    error: ModelyardError, status: int, code: str | None, type_: str, param: str | None
) -> None:
    assert isinstance(error, ModelyardError)
    assert (error.status, error.code, error.openai_type, error.param) == (
        status,
        code,
        type_,
        param,
    )


def test_errors_stay_catchable_as_the_builtin_errors_they_were() -> None:
    assert isinstance(ModelNotRoutable("m"), LookupError)
    assert isinstance(DatasetNotFound("d"), LookupError)
    assert isinstance(InvalidDataset("x"), ValueError)
    assert isinstance(NotEnoughData("x"), ValueError)


def test_headers_travel_with_the_error() -> None:
    assert dict(EngineOverloaded("busy").headers) == {"retry-after": "1"}
    assert "www-authenticate" in AuthenticationFailed("who?").headers
    assert isinstance(LoginRequired("log in"), AuthenticationFailed)
    assert AuthenticationFailed("who?", code="expired_api_key").code == "expired_api_key"


def test_responses_document_the_error_body() -> None:
    entries = error_responses(401, 404)
    assert set(entries) == {401, 404}
    assert entries[404]["model"].__name__ == "ErrorBody"
    assert type_of(418) == "server_error" and type_of(429) == "rate_limit_error"
