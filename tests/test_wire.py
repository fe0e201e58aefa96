"""The shared wire types refuse what JSON does not call a number, where pydantic's lax mode
would coerce it, and keep their bounds in the schema."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from modelyard.release.protocol import Step
from modelyard.routing.protocol import Candidate
from modelyard.wire import JSON_INTEGER, Number


class Sample(BaseModel):
    ratio: Number = Field(ge=0, le=1)
    count: Annotated[int, Field(ge=1), JSON_INTEGER] = 1


@pytest.mark.parametrize("value", [True, False, "0.5", "1"])
def test_a_number_is_not_a_boolean_or_text(value: object) -> None:
    with pytest.raises(ValidationError, match="expected a number"):
        Sample(ratio=value)


def test_numbers_and_integers_pass_with_their_bounds() -> None:
    assert Sample(ratio=1).ratio == 1.0 and Sample(ratio=0.25, count=3).count == 3
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        Sample(ratio=1.5)
    with pytest.raises(ValidationError, match="expected an integer"):
        Sample(ratio=0.5, count=True)
    schema = Sample.model_json_schema()["properties"]["ratio"]
    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("number", 0, 1)


def test_release_and_routing_inputs_are_strict() -> None:
    with pytest.raises(ValidationError, match="expected a number"):
        Step.model_validate({"set_weight": True})
    with pytest.raises(ValidationError, match="expected a number"):
        Candidate.model_validate({"version": 1, "weight": "50"})
