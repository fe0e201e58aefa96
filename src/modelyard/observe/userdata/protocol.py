"""Wire types of a user's data on request: what is stored about one user, all of it as one
document, and what an erasure did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from modelyard.observe.protocol import RequestDetail


class UserSummary(BaseModel):
    """How much is stored about one user (what the console's lookup shows)."""

    user: str
    pseudonym: str = Field(description="What an erasure writes instead of the user id.")
    requests: int
    with_content: int = Field(description="Requests whose prompt and answer are stored.")
    feedback: int
    dataset_items: int = Field(description="Dataset items made from the user's requests.")
    datasets: list[str] = Field(description="The dataset versions holding them (`name@n`).")
    first_at: datetime | None
    last_at: datetime | None


class DatasetItemOut(BaseModel):
    """A dataset item made from one of the user's requests."""

    dataset: str
    version: int
    index: int
    request_id: str | None
    split: str | None
    data: dict[str, Any]
    created_at: datetime  # the version's


class ReviewCorrectionOut(BaseModel):
    """A reviewer's decision on such an item (its correction is text about it)."""

    review_id: int
    dataset: str
    version: int
    index: int
    decision: str | None
    correction: str | None
    decided_by: str | None
    decided_at: datetime | None


class LabelAnswerOut(BaseModel):
    """A teacher's answer to such an item, and the request that asked it."""

    run_id: int
    dataset: str
    version: int
    index: int
    label: str | None
    answer: str
    teacher_request_id: str | None


class UserExport(BaseModel):
    """Everything stored about one user: each request with its content decrypted and its
    feedback, the dataset items made from them, and what reviewers and teachers said of
    those items."""

    user: str
    exported_at: datetime
    requests: list[RequestDetail]
    dataset_items: list[DatasetItemOut]
    review_corrections: list[ReviewCorrectionOut]
    label_answers: list[LabelAnswerOut]


class ErasureCounts(BaseModel):
    requests: int = Field(description="Request-log rows whose user is now the pseudonym.")
    contents: int = Field(description="Stored prompts and answers erased.")
    feedback_comments: int
    dataset_items: int = Field(description="Items emptied in place (`erased: true`).")
    review_corrections: int
    label_answers: int
    teacher_contents: int = Field(
        description="Stored contents of the teacher requests that labelled those items."
    )
    report_examples: int = Field(
        description="Examples in curation reports (and their audit records) that quoted them."
    )


class UserErasure(BaseModel):
    """What ``erase`` did, as its audit record holds it (which names the pseudonym, never
    the user id)."""

    pseudonym: str
    erased_at: datetime
    actor: str
    counts: ErasureCounts
    datasets: list[str] = Field(description="Versions changed (`name@n`), each noting it.")
    audit_id: int
