"""The console in English and 简体中文: every text the templates, routes and scripts mark is
in the Chinese catalogue (no entry empty or fuzzy), every page renders in Chinese with no
English left in what a reader sees, and the language comes from the switch's cookie, else
from ``Accept-Language``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from modelyard.console import i18n
from tests.conftest import AppClient, bearer, new_key
from tests.console.test_twins import pages
from tests.console.untranslated import untranslated

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "src" / "modelyard" / "console"
CHINESE = {"cookie": f"{i18n.COOKIE}=zh_Hans"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
# Pages without a JSON twin (test_twins.pages lists the others).
OWN_PAGES = ("/", "/ui/playground", "/ui/rollouts/plan")


def chinese() -> Catalog:
    with (i18n.LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "messages.po").open("rb") as file:
        return read_po(file, locale="zh_Hans")


def extracted() -> set[tuple[str, str | None]]:
    """Every msgid in the console's sources, extracted as ``scripts/i18n.sh update`` does."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as file:
        method_map, options_map = parse_mapping_cfg(file)
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "phrase": None, "pN_": ((1, "c"), 2)}
    found = extract_from_dir(str(CONSOLE), method_map, options_map, keywords=keywords)
    return {
        (message if isinstance(message, str) else message[0], context)
        for _, _, message, _, context in found
    }


def test_every_marked_text_has_a_chinese_translation() -> None:
    catalogue = chinese()
    marked = extracted()
    assert len(marked) > 500  # the extraction found the templates, routes and scripts
    missing = sorted(
        (msgid, context)
        for msgid, context in marked
        if not ((entry := catalogue.get(msgid, context=context)) and entry.string)
    )
    assert not missing, f"run scripts/i18n.sh update and translate: {missing}"


def test_the_chinese_catalogue_has_no_empty_fuzzy_or_broken_entry() -> None:
    catalogue = chinese()
    assert not catalogue.fuzzy
    empty = [m.id for m in catalogue if m.id and not m.string]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    # Babel's checks: the same %(name)s placeholders in msgid and msgstr.
    broken = [(m.id, errors) for m in catalogue if (errors := list(m.check(catalogue)))]
    assert not empty and not fuzzy and not broken, (empty, fuzzy, broken)
    # {name} fields (the routes' titles, the scripts' messages) survive translation too.
    fields = [
        m.id
        for m in catalogue
        if m.id and sorted(_fields(str(m.id))) != sorted(_fields(str(m.string)))
    ]
    assert not fields, fields


def _fields(text: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", text)


def test_the_checker_finds_an_untranslated_string() -> None:
    page = (
        "<h1>模型</h1><p>设置了流量策略的路由 Start a rollout now.</p>"
        "<nav><a href='/'>调试台</a><a href='/x'>Redteam</a></nav>"
        "<table><tr><th>Status</th><th>状态</th></tr></table>"
        "<p><code>modelyard rollout start</code> <span class='mono'>set weight</span>"
        "<span lang='en'>Rollout started by ops</span> <span translate='no'>two words</span>"
        " JSON API</p><input placeholder='name or version'>"
    )
    assert untranslated(page) == [
        "Start a rollout now",
        "Redteam",
        "Status",
        "name or version",
    ]
    assert (
        untranslated("<p>用 <code>POST /api/rollouts</code> 启动；JSON 格式，UTC 时间。</p>") == []
    )


async def test_every_page_in_chinese_shows_no_english(api: AppClient, tmp_path: Path) -> None:
    urls = [*(await pages(api, tmp_path)).values(), *OWN_PAGES]
    left: dict[str, list[str]] = {}
    for url in urls:
        page = await api.get(url, headers=CHINESE)
        assert page.status_code == 200, (url, page.text[:300])
        assert '<html lang="zh-Hans">' in page.text, url
        if found := untranslated(page.text):
            left[url] = found
    login = await api.get("/ui/login", headers={"authorization": "", **CHINESE})
    if found := untranslated(login.text):
        left["/ui/login"] = found
    assert not left, "\n".join(f"{url}: {found}" for url, found in left.items())


async def test_the_language_follows_accept_language_then_the_switch(api: AppClient) -> None:
    anonymous = {"authorization": ""}
    english = await api.get("/ui/login", headers={**anonymous, "accept-language": "fr, en;q=0.8"})
    assert '<html lang="en">' in english.text and "Paste an API key" in english.text
    for header in ("zh-CN,zh;q=0.9,en;q=0.8", "zh", "zh-Hans-SG", "de;q=0.9, zh;q=0.5"):
        page = await api.get("/ui/login", headers={**anonymous, "accept-language": header})
        assert '<html lang="zh-Hans">' in page.text and "粘贴一个 API 密钥" in page.text, header
    traditional = await api.get("/ui/login", headers={**anonymous, "accept-language": "zh-TW"})
    assert '<html lang="en">' in traditional.text  # no Traditional catalogue: the source

    switched = await api.post(
        "/ui/language", content="language=zh_Hans&next=/ui/keys?x=1", headers={**anonymous, **FORM}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/ui/keys?x=1"
    cookie = switched.headers["set-cookie"]
    assert cookie.startswith(f"{i18n.COOKIE}=zh_Hans;") and "HttpOnly" in cookie
    # The cookie beats the header, on every page, the login form's included.
    chosen = {"cookie": f"{i18n.COOKIE}=zh_Hans", "accept-language": "en"}
    keys = await api.get("/ui/keys", headers=chosen)
    assert "创建密钥" in keys.text and "Create key" not in keys.text
    login = await api.get("/ui/login", headers={**anonymous, **chosen})
    assert "登录" in login.text

    back = await api.post("/ui/language", content="language=en&next=/", headers=FORM)
    assert back.headers["set-cookie"].startswith(f"{i18n.COOKIE}=en;")


async def test_a_bad_switch_changes_nothing_and_stays_on_the_site(api: AppClient) -> None:
    for body in ("language=klingon&next=/ui/keys", "language=zh_Hans&next=//evil.example/"):
        answer = await api.post("/ui/language", content=body, headers=FORM)
        assert answer.status_code == 303
        assert answer.headers["location"] in ("/ui/keys", "/")
    refused = await api.post("/ui/language", content="language=klingon&next=/", headers=FORM)
    assert "set-cookie" not in refused.headers
    bogus = await api.get("/ui/keys", headers={"cookie": f"{i18n.COOKIE}=klingon"})
    assert bogus.status_code == 200 and '<html lang="en">' in bogus.text


async def test_the_scripts_get_their_messages_in_the_page_language(api: AppClient) -> None:
    def messages(html: str) -> dict[str, str]:
        found = re.search(
            r'<script id="console-messages" type="application/json">(.*?)</script>', html
        )
        assert found is not None
        return dict(json.loads(found.group(1)))

    handed = messages((await api.get("/ui/keys", headers=CHINESE)).text)
    assert handed["Could not create the key: {reason}"] == "无法创建密钥：{reason}"
    assert "Log in" not in handed  # only what the scripts show, not every template's text
    assert messages((await api.get("/ui/keys")).text) == {}


async def test_a_refused_key_is_told_in_the_page_language(api: AppClient) -> None:
    refused = await api.post(
        "/ui/login",
        content="key=my_nope&next=/",
        headers={"authorization": "", **FORM, **CHINESE},
    )
    assert refused.status_code == 401 and "API 密钥不正确" in refused.text


def test_negotiation_prefers_quality_then_order() -> None:
    assert i18n.negotiate("en;q=0.4, zh-CN;q=0.9") == "zh_Hans"
    assert i18n.negotiate("zh-CN;q=0, en") == "en"
    assert i18n.negotiate("*, x-pig-latin, zh;q=oops") == "en"
    assert i18n.negotiate(None) == "en"
    assert i18n.chosen("zh_Hans", "en") == "zh_Hans"
    assert i18n.chosen("../../etc", "zh") == "zh_Hans"


async def test_a_user_s_choice_follows_them_to_another_browser(api: AppClient) -> None:
    """The switch, used while logged in, is stored for that key: logging in anywhere else
    brings it back; another key, or the switch on the login page, stores nothing."""
    viewer = await new_key(api, "viewer")
    other = await new_key(api, "viewer")
    anonymous = {"authorization": ""}

    async def log_in(key: str) -> str | None:
        """A fresh browser's login: the language cookie it is handed, if any."""
        answer = await api.post(
            "/ui/login", content=f"key={key}&next=/", headers={**anonymous, **FORM}
        )
        assert answer.status_code == 303, answer.text
        cookies = answer.headers.get_list("set-cookie")
        found = [c for c in cookies if c.startswith(f"{i18n.COOKIE}=")]
        return found[0].split(";")[0].split("=", 1)[1] if found else None

    assert await log_in(viewer) is None  # nothing chosen yet
    anonymous_switch = await api.post(
        "/ui/language", content="language=zh_Hans&next=/", headers={**anonymous, **FORM}
    )
    assert anonymous_switch.status_code == 303
    assert await log_in(viewer) is None  # the login page's switch stays in that browser
    switched = await api.post(
        "/ui/language", content="language=zh_Hans&next=/", headers={**bearer(viewer), **FORM}
    )
    assert switched.status_code == 303
    assert await log_in(viewer) == "zh_Hans"
    assert await log_in(other) is None
    page = await api.get("/ui/keys", headers={**bearer(viewer), "cookie": f"{i18n.COOKIE}=zh_Hans"})
    assert '<html lang="zh-Hans">' in page.text
    await api.post("/ui/language", content="language=en&next=/", headers={**bearer(viewer), **FORM})
    assert await log_in(viewer) == "en"
