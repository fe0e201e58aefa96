"""The console's start form for eval runs: an admin's page has it, a viewer's has not, and
what the form posts with the session cookie starts a run that follows on its page."""

from __future__ import annotations

import pytest

from modelyard.guard.sessions import COOKIE
from modelyard.registry import Registry
from tests.conftest import AppClient, bearer, new_key
from tests.evaluate.test_start import ITEMS, TASK, register_qa

pytestmark = pytest.mark.anyio
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def session_of(api: AppClient) -> dict[str, str]:
    """The headers of a browser logged in with ``api``'s admin key: the cookie, no key."""
    admin = api.headers["authorization"].removeprefix("Bearer ")
    anonymous = {"authorization": ""}
    logged_in = await api.post("/ui/login", content=f"key={admin}", headers={**anonymous, **FORM})
    assert logged_in.status_code == 303
    cookie = logged_in.headers["set-cookie"].split(";")[0]
    assert cookie.startswith(f"{COOKIE}=")
    return {**anonymous, "cookie": cookie}


async def test_an_admin_gets_the_start_form_and_a_viewer_does_not(api: AppClient) -> None:
    page = await api.get("/ui/eval")
    assert page.status_code == 200
    assert 'id="start-eval"' in page.text and 'name="task_yaml"' in page.text
    assert "registered: support" in page.text  # the example task
    assert "/static/eval.js" in page.text
    script = await api.get("/static/eval.js")
    assert script.status_code == 200 and "/api/eval/runs" in script.text
    viewer = await api.get("/ui/eval", headers=bearer(await new_key(api, "viewer")))
    assert viewer.status_code == 200 and 'id="start-eval"' not in viewer.text


async def test_what_the_form_posts_with_the_session_cookie_starts_a_run(
    api: AppClient, home_registry: Registry
) -> None:
    register_qa(home_registry)
    await api.reload_routes()
    browser = await session_of(api)
    body = {"task_yaml": TASK, "model": "echo", "limit": 4, "seed": 0, "concurrency": 4}
    started = await api.post("/api/eval/runs", json=body, headers=browser)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    await api.app.state.eval_jobs.wait(f"eval:{run_id}")  # its requests carried the cookie
    run = (await api.get(f"/api/eval/runs/{run_id}", headers=browser)).json()
    assert run["status"] == "done" and run["done"] == 4 < ITEMS
    items = (await api.get(f"/api/eval/runs/{run_id}/items", headers=browser)).json()
    assert [i["error"] for i in items] == [None] * 4 and all(i["request_id"] for i in items)
    page = await api.get(f"/ui/eval/runs/{run_id}", headers=browser)
    assert page.status_code == 200 and 'id="status">done<' in page.text
    assert "exact_match" in page.text and "/static/eval.js" not in page.text
    assert "<td>echo@1</td><td>4</td>" in page.text  # the items per version
    listing = await api.get("/ui/eval", headers=browser)
    assert f'href="/ui/eval/runs/{run_id}"' in listing.text
