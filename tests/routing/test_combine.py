"""Combination routes (issue 18): a cascade, a vote and best-of-n, served through the API
over scripted engines (and the fake vLLM for token logprobs); what they log and count, the
policy's refusals, and the pure rules that decide."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from modelyard.engines import Chunk, GenerationRequest, Message, Need
from modelyard.registry import Registry
from modelyard.registry.protocol import VersionCreate
from modelyard.routing.combine import (
    asked_logprobs,
    best,
    judge_prompt,
    majority,
    probability,
    score,
    token_logprobs,
    with_logprobs,
    without_logprobs,
)
from modelyard.store.tables import RequestLogRow
from tests.conftest import AppClient, register_scripted
from tests.fake_vllm import MODEL, fake_vllm

pytestmark = pytest.mark.anyio
LABELS = ["billing", "refund", "other"]
SMALL_PRICE = {"input_per_million": 1.0, "output_per_million": 1.0}
LARGE_PRICE = {"input_per_million": 10.0, "output_per_million": 10.0}


# -- the known share: 20 questions, each with its true label ------------------------------
# The small model is right on 12, unsure (an answer outside the label set) on 5 and wrong
# with a valid label on 3; the large model is right on all. With the label set as the
# validator, the cascade escalates exactly the 5 unsure ones: an escalation rate of 25 %
# and a combined accuracy of (12 + 5) / 20 = 85 % (the small model alone: 60 %).
TRUTH = {f"q{i:02d}": LABELS[i % 3] for i in range(20)}
RIGHT, UNSURE, WRONG = range(12), range(12, 17), range(17, 20)


def small_reply(index: int, truth: str) -> str:
    if index in UNSURE:
        return "not sure"
    if index in WRONG:
        return next(label for label in LABELS if label != truth)
    return truth


SMALL = {q: small_reply(i, truth) for i, (q, truth) in enumerate(TRUTH.items())}


def cascade(**confidence: Any) -> dict[str, Any]:
    return {
        "combine": {
            "kind": "cascade",
            "small": "small",
            "large": "large@1",
            "confidence": confidence or {"labels": LABELS},
        }
    }


@pytest.fixture(autouse=True)
def models(home_registry: Registry) -> None:
    register_scripted(home_registry, "triage", replies=["the route's own version"])
    register_scripted(home_registry, "small", replies_by_message=SMALL, price=SMALL_PRICE)
    register_scripted(home_registry, "large", replies_by_message=TRUTH, price=LARGE_PRICE)


async def put(api: httpx.AsyncClient, policy: dict[str, Any]) -> httpx.Response:
    return await api.put("/api/routes/triage", json={"policy": policy, "reason": "test"})


async def ask(api: httpx.AsyncClient, text: str, **body: Any) -> httpx.Response:
    return await api.post(
        "/v1/chat/completions",
        json={"model": "triage", "messages": [{"role": "user", "content": text}], **body},
    )


def answer_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def streamed_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value in the Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def rows(api: AppClient) -> list[RequestLogRow]:
    with api.services.store.session() as session:
        return list(session.scalars(select(RequestLogRow).order_by(RequestLogRow.at)))


async def test_a_cascade_escalates_exactly_the_share_the_scripted_model_implies(
    api: AppClient,
) -> None:
    assert (await put(api, cascade())).status_code == 200, "policy refused"
    answers: dict[str, str] = {}
    decided: dict[str, tuple[str, str]] = {}
    for question in TRUTH:
        response = await ask(api, question)
        answers[question] = answer_of(response)
        headers = response.headers
        decided[question] = (headers["x-modelyard-variant"], headers["x-modelyard-version"])

    escalated = [q for q, (variant, _) in decided.items() if variant == "cascade:invalid"]
    accuracy = sum(answers[q] == truth for q, truth in TRUTH.items()) / len(TRUTH)
    assert len(escalated) / len(TRUTH) == 0.25
    assert accuracy == 0.85
    assert escalated == [f"q{i:02d}" for i in UNSURE]
    assert all(decided[f"q{i:02d}"] == ("cascade:confident", "small@1") for i in [*RIGHT, *WRONG])
    assert all(decided[q][1] == "large@1" for q in escalated)

    exposition = (await api.get("/metrics")).text
    combined = "modelyard_combined_requests_total"
    assert metric(exposition, combined, route="triage", decision="confident") == 15
    assert metric(exposition, combined, route="triage", decision="invalid") == 5
    # Tokens: "user: qNN" is 2 prompt words; a label 1 completion word, "not sure" 2.
    # Confident: 3 small tokens (1 $/M), against 3 large ones (10 $/M) had it gone large.
    # Escalated: 4 small tokens wasted plus 3 large ones, against the 3 large ones alone.
    spent = (15 * 3 * 1 + 5 * (4 * 1 + 3 * 10)) / 1e6
    large_only = 20 * 3 * 10 / 1e6
    cost = "modelyard_cascade_cost_total"
    assert metric(exposition, cost, route="triage", basis="cascade") == pytest.approx(spent)
    assert metric(exposition, cost, route="triage", basis="large_only") == pytest.approx(large_only)

    await api.logged()
    logged = rows(api)
    main = [r for r in logged if "." not in r.id]
    assert sorted((r.variant, r.version) for r in main) == sorted(decided.values())
    calls = [r for r in logged if r.id.endswith(".small0")]
    assert len(calls) == 5  # each escalation's small answer: logged and charged
    assert {(r.variant, r.version, r.status) for r in calls} == {("cascade.small", "small@1", 200)}
    assert sum(r.cost for r in logged) == pytest.approx(spent)


async def test_a_cascade_streams_the_chosen_answer(api: AppClient) -> None:
    assert (await put(api, cascade())).status_code == 200
    confident = await ask(api, "q00", stream=True)
    assert streamed_text(confident) == TRUTH["q00"]
    assert confident.headers["x-modelyard-version"] == "small@1"
    escalated = await ask(api, "q12", stream=True)
    assert streamed_text(escalated) == TRUTH["q12"]
    assert escalated.headers["x-modelyard-variant"] == "cascade:invalid"
    assert escalated.headers["x-modelyard-version"] == "large@1"


@pytest.mark.parametrize(
    ("confidence", "confident"),
    [
        ({"valid_json": True}, False),
        ({"pattern": "[a-z]+"}, True),  # a whole-answer match: "not sure" has a space
    ],
)
async def test_other_validators(
    api: AppClient, confidence: dict[str, Any], confident: bool
) -> None:
    assert (await put(api, cascade(**confidence))).status_code == 200
    sure, unsure = await ask(api, "q00"), await ask(api, "q12")
    assert sure.headers["x-modelyard-version"] == ("small@1" if confident else "large@1")
    assert unsure.headers["x-modelyard-version"] == "large@1"


async def test_a_cascade_serves_text_completions_too(api: AppClient) -> None:
    assert (await put(api, cascade())).status_code == 200
    for prompt, version in (("q00", "small@1"), ("q12", "large@1")):
        response = await api.post("/v1/completions", json={"model": "triage", "prompt": prompt})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["text"] == TRUTH[prompt]
        assert response.headers["x-modelyard-version"] == version


async def test_a_small_model_that_fails_escalates(api: AppClient, home_registry: Registry) -> None:
    register_scripted(home_registry, "small", fail_when_prompt_contains="q0")
    assert (await put(api, cascade())).status_code == 200
    response = await ask(api, "q01")
    assert answer_of(response) == TRUTH["q01"]
    assert response.headers["x-modelyard-variant"] == "cascade:small_failed"


async def test_the_small_answer_is_logged_and_charged_when_the_large_model_fails(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "broken", fail_when_prompt_contains="q")
    policy = cascade()
    policy["combine"]["large"] = "broken"
    assert (await put(api, policy)).status_code == 200
    response = await ask(api, "q12")
    assert response.status_code == 502, response.text
    await api.logged()
    ids = {r.id: r for r in rows(api)}
    request_id = response.headers["x-modelyard-request-id"]
    assert ids[request_id].status == 502
    small = ids[f"{request_id}.small0"]
    assert (small.status, small.version, small.completion_tokens) == (200, "small@1", 2)
    assert small.cost == pytest.approx(4 / 1e6)


async def test_a_field_no_member_can_honour_is_a_400_naming_it(api: AppClient) -> None:
    assert (await put(api, cascade())).status_code == 200
    for stream in (False, True):
        response = await ask(api, "q00", stream=stream, logprobs=True)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["param"], error["type"]) == ("logprobs", "invalid_request_error")
        assert "large@1" in error["message"]


# -- token logprobs: the fake vLLM gives each token logprob -0.25 (probability 0.78) -------


@pytest.fixture
def upstream(home_registry: Registry) -> Iterator[list[dict[str, Any]]]:
    with fake_vllm() as (url, received):
        version = home_registry.add_version(
            "remote",
            VersionCreate(engine_kind="upstream", artifact_uri=url, parameters={"model": MODEL}),
            actor="tests",
        )
        home_registry.set_alias("remote", "production", version.number, actor="tests", reason="t")
        yield received


@pytest.mark.parametrize(("threshold", "version"), [(0.7, "remote@1"), (0.8, "large@1")])
async def test_a_logprobs_cascade_asks_for_them_and_hides_them(
    api: AppClient, upstream: list[dict[str, Any]], threshold: float, version: str
) -> None:
    policy = cascade(min_probability=threshold)
    policy["combine"]["small"] = "remote"
    assert (await put(api, policy)).status_code == 200
    response = await ask(api, "q00")
    assert response.status_code == 200, response.text
    assert upstream[-1]["logprobs"] is True  # asked of the small model ...
    assert response.headers["x-modelyard-version"] == version
    if version == "remote@1":
        assert response.json()["choices"][0]["logprobs"] is None  # ... and not returned
    else:
        assert response.headers["x-modelyard-variant"] == "cascade:low_confidence"
        assert answer_of(response) == TRUTH["q00"]
    await api.logged()
    detail = (await api.get(f"/api/requests/{response.headers['x-modelyard-request-id']}")).json()
    decision = "confident" if version == "remote@1" else "low_confidence"
    assert detail["content"]["combination"] == {
        "kind": "cascade",
        "decision": decision,
        "confidence": pytest.approx(math.exp(-0.25)),  # the fake's one token, logprob -0.25
    }


async def test_a_small_answer_without_logprobs_is_not_confident(
    api: AppClient, upstream: list[dict[str, Any]]
) -> None:
    policy = cascade(min_probability=0.1)
    policy["combine"]["small"] = "remote"
    assert (await put(api, policy)).status_code == 200
    # The fake streams choice 0 (a tool call) without logprobs, though asked for them.
    response = await ask(api, "q00", stream=True)
    assert upstream[-1]["logprobs"] is True and upstream[-1]["stream"] is True
    assert streamed_text(response) == TRUTH["q00"]
    assert response.headers["x-modelyard-variant"] == "cascade:low_confidence"


async def test_logprobs_a_client_asked_for_are_returned(
    api: AppClient, upstream: list[dict[str, Any]]
) -> None:
    policy = cascade(min_probability=0.7)
    policy["combine"]["small"] = "remote"
    assert (await put(api, policy)).status_code == 200
    response = await ask(api, "q00", logprobs=True)
    assert response.status_code == 200, response.text
    logprobs = response.json()["choices"][0]["logprobs"]
    assert logprobs["content"][0]["logprob"] == -0.25


# -- vote and best-of-n ---------------------------------------------------------------------


async def test_a_vote_returns_the_majority_and_breaks_ties_by_target_order(
    api: AppClient, home_registry: Registry
) -> None:
    register_scripted(home_registry, "clf", replies=["Billing"])
    register_scripted(home_registry, "clf", replies=["refund"])
    register_scripted(home_registry, "clf", replies=["billing "], fail_when_prompt_contains="tie")
    policy = {"combine": {"kind": "vote", "targets": ["clf@2", "clf@1", "clf@3"]}}
    assert (await put(api, policy)).status_code == 200
    response = await ask(api, "which?")
    # "Billing" and "billing " are one answer (stripped, case-folded): 2 votes against 1;
    # the answer returned is the first target's among them, as it said it.
    assert answer_of(response) == "Billing"
    assert response.headers["x-modelyard-variant"] == "vote:majority"
    assert response.headers["x-modelyard-version"] == "clf@1"

    register_scripted(home_registry, "clf", replies=["other"])
    policy = {"combine": {"kind": "vote", "targets": ["clf@4", "clf@2", "clf@3"]}}
    assert (await put(api, policy)).status_code == 200
    tie = await ask(api, "a tie?")  # clf@3 fails: "other" and "refund" have one vote each
    assert answer_of(tie) == "other"
    assert tie.headers["x-modelyard-variant"] == "vote:tie"

    await api.logged()
    ids = {r.id: r for r in rows(api)}
    tie_id = tie.headers["x-modelyard-request-id"]
    assert {ids[f"{tie_id}.voter{i}"].status for i in (0, 1)} == {200, 502}

    unable = await ask(api, "which?", top_k=20)  # a field no voter's engine takes
    assert unable.status_code == 400, unable.text
    assert unable.json()["error"]["param"] == "top_k"


async def test_best_of_n_returns_the_answer_the_judge_scores_highest(
    api: AppClient, home_registry: Registry
) -> None:
    drafts = ["draft one", "draft two", "draft three"]
    register_scripted(home_registry, "writer", replies=drafts)
    verdicts = dict(zip(drafts, ["3", "9 - clear and complete", "no score"], strict=True))
    register_scripted(
        home_registry,
        "judge",
        replies_by_message={judge_prompt("user: write", d): v for d, v in verdicts.items()},
    )
    policy = {"combine": {"kind": "best_of_n", "target": "writer", "n": 3, "judge": "judge"}}
    assert (await put(api, policy)).status_code == 200
    for stream in (False, True):
        response = await ask(api, "write", stream=stream)
        text = streamed_text(response) if stream else answer_of(response)
        assert text == "draft two"
        assert response.headers["x-modelyard-variant"] == "best_of_n:best"
    await api.logged()
    roles = sorted(r.variant or "" for r in rows(api) if "." in r.id)
    assert roles == ["best_of_n.candidate"] * 4 + ["best_of_n.judge"] * 6


# -- the policy's refusals ------------------------------------------------------------------


def refused(response: httpx.Response, param: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["param"], error["type"]) == (param, "invalid_request_error"), error
    return str(error["message"])


@pytest.mark.parametrize(
    ("combine", "param", "says"),
    [
        (
            {"kind": "cascade", "small": "small", "large": "large", "confidence": {}},
            "policy.combine.cascade.confidence",
            "exactly one of",
        ),
        (
            {
                "kind": "cascade",
                "small": "small",
                "large": "large",
                "confidence": {"labels": ["a"], "valid_json": True},
            },
            "policy.combine.cascade.confidence",
            "got valid_json, labels",
        ),
        (
            {"kind": "cascade", "small": "small", "large": "large", "confidence": {"pattern": "("}},
            "policy.combine.cascade.confidence",
            "not a regular expression",
        ),
        ({"kind": "vote", "targets": ["small"]}, "policy.combine.vote.targets", "at least 2"),
        (
            {"kind": "best_of_n", "target": "small", "judge": "large", "n": 1},
            "policy.combine.best_of_n.n",
            "greater than or equal to 2",
        ),
        ({"kind": "mixture", "targets": ["a", "b"]}, "policy.combine", "kind"),
        (
            {"kind": "vote", "targets": ["small", "nowhere"]},
            "policy.combine.targets",
            "'nowhere'",
        ),
        (
            {"kind": "vote", "targets": ["small", "large:staging"]},
            "policy.combine.targets",
            "no alias 'staging'",
        ),
        (
            {
                "kind": "cascade",
                "small": "small",
                "large": "large",
                "confidence": {"min_probability": 0.5},
            },
            "policy.combine.confidence.min_probability",
            "cannot give token logprobs",
        ),
    ],
)
async def test_a_bad_combination_is_a_400_naming_the_field(
    api: AppClient, combine: dict[str, Any], param: str, says: str
) -> None:
    assert says in refused(await put(api, {"combine": combine}), param)


async def test_a_combination_has_no_candidates(api: AppClient) -> None:
    policy = {**cascade(), "candidates": [{"version": 2, "weight": 10}]}
    assert "no candidates" in refused(await put(api, policy), "policy")


async def test_the_policy_reads_back_and_changes_with_history(api: AppClient) -> None:
    assert (await put(api, cascade())).status_code == 200
    shown = (await api.get("/api/routes/triage")).json()
    assert shown["policy"]["combine"]["confidence"]["labels"] == LABELS
    assert (await put(api, shown["policy"])).status_code == 200  # sent back as read
    history = (await api.get("/api/routes/triage/history")).json()["data"]
    assert history[0]["after"]["combine"]["kind"] == "cascade"
    assert (await api.delete("/api/routes/triage")).status_code == 204
    assert answer_of(await ask(api, "q00")) == "the route's own version"


# -- the rules, alone -----------------------------------------------------------------------


def test_majority_ties_go_to_the_first_answer_given() -> None:
    assert majority(["b", "a", "B "]) == (0, "majority")
    assert majority(["x", "y"]) == (0, "tie")
    assert majority(["x", "y", "y", "x", "z"]) == (0, "tie")
    assert majority(["z", "y", "x", "y"]) == (1, "majority")


def test_best_is_the_highest_score_and_the_earliest_on_a_tie() -> None:
    assert best([3.0, 9.0, 9.0]) == 1
    assert best([None, 2.0]) == 1
    assert best([None, None]) == 0
    assert [score(v) for v in ["8", "Score: 7.5/10", "none", "-1"]] == [8.0, 7.5, None, -1.0]


def test_probability_is_the_geometric_mean_of_token_probabilities() -> None:
    chat = {"choices": [{"index": 0, "logprobs": {"content": [{"logprob": -0.1}]}}]}
    more = {"choices": [{"index": 0, "logprobs": {"content": [{"logprob": -0.3}]}}]}
    other_choice = {"choices": [{"index": 1, "logprobs": {"content": [{"logprob": -9.0}]}}]}
    chunks = [Chunk("a", openai=chat), Chunk("b", openai=more), Chunk("", openai=other_choice)]
    assert token_logprobs(chunks) == [-0.1, -0.3]
    assert probability(chunks) == pytest.approx(math.exp(-0.2))
    text = {"choices": [{"index": 0, "logprobs": {"token_logprobs": [-1.0, -3.0]}}]}
    assert probability([Chunk("ab", openai=text)]) == pytest.approx(math.exp(-2.0))
    assert probability([Chunk("plain")]) is None


def test_logprobs_a_client_did_not_ask_for_are_nulled_and_the_rest_kept() -> None:
    whole = {"id": "x", "choices": [{"index": 0, "message": {"content": "hi"}, "logprobs": {}}]}
    chunk = without_logprobs(Chunk("hi", "stop", openai=whole))
    assert chunk.openai == {
        "id": "x",
        "choices": [{"index": 0, "message": {"content": "hi"}, "logprobs": None}],
    }
    assert (chunk.text, chunk.finish_reason) == ("hi", "stop")
    assert without_logprobs(Chunk("plain")) == Chunk("plain")


def test_logprobs_are_asked_as_each_endpoint_asks_for_them() -> None:
    chat = GenerationRequest(messages=[Message("user", "hi")], openai={"seed": 1})
    text = GenerationRequest(prompt="hi")
    assert not asked_logprobs(chat) and not asked_logprobs(text)
    assert with_logprobs(chat).openai == {"seed": 1, "logprobs": True}
    assert with_logprobs(text).openai == {"logprobs": 0}
    assert with_logprobs(text).needs == (Need("logprobs", "logprobs"),)
    assert asked_logprobs(with_logprobs(text))  # 0 alternatives is still asking
    assert not asked_logprobs(GenerationRequest(prompt="hi", openai={"logprobs": False}))
