"""A review's three faces: the JSON API (who may do what, OpenAI-shaped errors), the CLI
(a terminal reviewer through a whole review) and the console pages."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from markupsafe import escape

from modelyard.cli import main
from modelyard.evaluate.datasets import DatasetService
from modelyard.registry import Registry
from modelyard.services import local_actor
from tests.conftest import AppClient, bearer, new_key
from tests.improve.review.items import answer_items, register_answers

pytestmark = pytest.mark.anyio


def error_of(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    return error


async def test_reviewers_take_turns_through_the_api(api: AppClient) -> None:
    register_answers(api.services.store, 4)
    made = await api.post("/api/reviews", json={"dataset": "qa", "version": 1})
    assert made.status_code == 201, made.text
    review = made.json()
    assert review["progress"]["items"] == 4 and review["status"] == "open"
    base = f"/api/reviews/{review['id']}"
    viewer = bearer(await new_key(api, "viewer", name="reviewer-a"))
    developer = bearer(await new_key(api, "developer"))

    assert (await api.post(f"{base}/next", headers=developer)).status_code == 403
    mine = (await api.post(f"{base}/next", headers=viewer)).json()
    theirs = (await api.post(f"{base}/next")).json()  # the admin's key: another reviewer
    assert (mine["item"]["index"], theirs["item"]["index"]) == (0, 1)
    assert mine["item"]["view"]["question"] == "What is question 0?"

    held = await api.post(f"{base}/items/1/decision", json={"decision": "accept"}, headers=viewer)
    assert held.status_code == 409
    assert error_of(held)["code"] == "item_leased"
    assert error_of(held)["type"] == "invalid_request_error"
    empty = await api.post(f"{base}/items/0/decision", json={"decision": "correct"}, headers=viewer)
    assert empty.status_code == 400 and error_of(empty)["code"] == "invalid_request"
    wrong = await api.post(f"{base}/items/0/decision", json={"decision": "maybe"}, headers=viewer)
    assert wrong.status_code == 400
    fixed = await api.post(
        f"{base}/items/0/decision",
        json={"decision": "correct", "correction": "zero"},
        headers=viewer,
    )
    assert fixed.status_code == 200, fixed.text
    reviewer = next(iter(fixed.json()["progress"]["by_reviewer"]))
    assert reviewer.endswith("(reviewer-a)") and reviewer.startswith("key:")
    assert (await api.post(f"{base}/items/1/decision", json={"decision": "reject"})).is_success
    assert (await api.post(f"{base}/undo", headers=developer)).status_code == 403
    undone = await api.post(f"{base}/undo", headers=viewer)
    assert undone.json()["item"]["index"] == 0 and undone.json()["item"]["decision"] is None
    again = await api.post(
        f"{base}/items/0/decision",
        json={"decision": "correct", "correction": "zero"},
        headers=viewer,
    )
    assert again.status_code == 200
    nothing = await api.post("/api/reviews/99/undo", headers=viewer)
    assert nothing.status_code == 404 and error_of(nothing)["code"] == "review_not_found"

    listed = (await api.get(f"{base}/items?decision=undecided", headers=viewer)).json()
    assert [item["index"] for item in listed["data"]] == [2, 3]
    assert (await api.post(f"{base}/finish", json={}, headers=viewer)).status_code == 403
    undecided = await api.post(f"{base}/finish", json={})
    assert undecided.status_code == 400
    assert error_of(undecided)["code"] == "undecided_items"
    assert error_of(undecided)["param"] == "undecided"
    finished = await api.post(f"{base}/finish", json={"undecided": "drop"})
    assert finished.status_code == 200, finished.text
    assert finished.json()["result"]["dataset"] == "qa@2"
    items = answer_items(4)
    assert DatasetService(api.services.store).items("qa", 2) == [{**items[0], "corrected": "zero"}]
    late = await api.post(f"{base}/next", headers=viewer)
    assert late.status_code == 409 and error_of(late)["code"] == "review_finished"
    shown = (await api.get("/api/reviews?status=finished")).json()["data"]
    assert [r["id"] for r in shown] == [review["id"]]


async def test_refusals_name_the_field(api: AppClient) -> None:
    register_answers(api.services.store, 2)
    missing = await api.post("/api/reviews", json={"dataset": "nope"})
    assert missing.status_code == 404 and error_of(missing)["code"] == "dataset_not_found"
    empty = await api.post("/api/reviews", json={"dataset": "qa", "filter": {"split": "dev"}})
    assert empty.status_code == 400
    assert error_of(empty)["code"] == "invalid_review" and error_of(empty)["param"] == "filter"
    viewer = bearer(await new_key(api, "viewer"))
    assert (
        await api.post("/api/reviews", json={"dataset": "qa"}, headers=viewer)
    ).status_code == 403
    review = (await api.post("/api/reviews", json={"dataset": "qa"})).json()
    gone = await api.post(f"/api/reviews/{review['id']}/items/7/lease")
    assert gone.status_code == 404 and error_of(gone)["code"] == "review_item_not_found"


def test_a_terminal_reviewer_goes_through_a_review(home_registry: Registry) -> None:
    register_answers(home_registry._store, 3)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["review", *args])
        assert result.exit_code == 0, result.output
        return result.output

    made = json.loads(run("create", "qa@1", "--instructions", "Check the answers", "--json"))
    review = str(made["id"])
    shown = run("next", review)
    assert "item 0 (undecided" in shown and "question: What is question 0?" in shown
    assert "answer: answer 0" in shown
    run("decide", review, "0", "correct", "--correction", "nought")
    run("decide", review, "1", "reject")
    step = json.loads(run("next", review, "--json"))
    assert step["item"]["index"] == 2
    run("decide", review, "2", "skip")
    assert f"review {review}: qa@1, open" in run("show", review, "--items")
    shown = json.loads(run("show", review, "--items", "--json"))
    assert shown["progress"]["by_reviewer"][local_actor()]["skip"] == 1
    assert [(i["index"], i["decision"], i["correction"]) for i in shown["items"]] == [
        (0, "correct", "nought"),
        (1, "reject", None),
        (2, None, None),
    ]
    refused = runner.invoke(main, ["review", "finish", review])
    assert refused.exit_code == 1 and "undecided" in refused.output
    out = json.loads(run("finish", review, "--undecided", "keep", "--json"))
    assert out["result"]["dataset"] == "qa@2" and out["result"]["items"] == 2
    items = answer_items(3)
    assert DatasetService(home_registry._store).items("qa", 2) == [
        {**items[0], "corrected": "nought"},
        items[2],
    ]
    late = runner.invoke(main, ["review", "next", review])
    assert late.exit_code == 1 and "finished" in late.output
    listed = run("list")
    assert "qa@1" in listed and "qa@2" in listed


async def test_the_pages_render_their_twins(api: AppClient) -> None:
    register_answers(api.services.store, 3)
    body = {"dataset": "qa", "instructions": "Is the answer <right>?"}
    review = (await api.post("/api/reviews", json=body)).json()
    await api.post(f"/api/reviews/{review['id']}/items/0/decision", json={"decision": "reject"})
    listing = await api.get("/ui/reviews")
    assert listing.status_code == 200
    assert f'href="/ui/reviews/{review["id"]}"' in listing.text and "1/3" in listing.text
    assert 'id="create-review"' in listing.text  # the admin's form
    page = await api.get(f"/ui/reviews/{review['id']}")
    assert page.status_code == 200
    assert (
        page.headers["link"]
        == f'</api/reviews/{review["id"]}>; rel="alternate"; type="application/json"'
    )
    assert str(escape(body["instructions"])) in page.text
    assert 'id="reviewer"' in page.text and 'id="finish"' in page.text
    assert "/static/review.js" in page.text
    viewer = bearer(await new_key(api, "viewer"))
    as_viewer = await api.get(f"/ui/reviews/{review['id']}", headers=viewer)
    assert 'id="reviewer"' in as_viewer.text and 'id="finish"' not in as_viewer.text
    script = await api.get("/static/review.js")
    assert script.status_code == 200 and "keydown" in script.text
