"""Linking Telegram and VK end to end: the settings API, the bot's webhook, VK's Callback API.

A real web process is sent what Telegram and VK send: updates with the webhook's secret
header, Callback API events with their `secret`. Telegram's answer is read from the webhook
response (the Bot API performs it); VK's is a task left in Redis for a worker (none runs here).
"""

from __future__ import annotations

import base64
import json
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import requests

from tests.support.clients import Account, Api
from tests.support.stack import Stack

TG_SECRET = "tg-webhook_Secret-123"
BOT = "admarket_test_bot"
VK_GROUP = 4242
VK_SECRET = "vk-callback-secret"
VK_CONFIRMATION = "5f3a9c1e"
ENV = {
    "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
    "TELEGRAM_BOT_USERNAME": BOT,
    "VK_GROUP_ID": str(VK_GROUP),
    "VK_CALLBACK_SECRET": VK_SECRET,
    "VK_CONFIRMATION_CODE": VK_CONFIRMATION,
}
TG_WEBHOOK = "/api/integrations/telegram/webhook"
VK_CALLBACK = "/api/integrations/vk/callback"
LINKED_EN = "Done: notifications will arrive here. Send /stop to turn them off."
NOT_VALID_EN = (
    "This link code is not valid or has expired. Get a new link in the notification settings."
)
NOT_VALID_RU = (
    "Этот код привязки недействителен или устарел. Получите новую ссылку в настройках уведомлений."
)
TAKEN_EN = "This chat is already linked to another account."
STOPPED_EN = "Notifications to this chat are turned off."
HOW_TO_LINK_RU = "Откройте настройки уведомлений на бирже и нажмите «Привязать Telegram»."
LINKED_RU = "Готово: уведомления будут приходить сюда. Чтобы отключить их, отправьте /stop."


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    """One web process with both messengers set up, and no worker: VK replies stay queued."""
    return make_stack(extra_env=ENV).start(web=1, workers=0)


def chat_id() -> int:
    """A chat id no other test (sharing the session's database) links."""
    return random.randrange(10**8, 2 * 10**9)


# --- Telegram helpers ---------------------------------------------------------------------


def telegram_link(api: Api, who: Account) -> str:
    """POST /api/users/me/telegram/link; returns the code from its t.me URL."""
    answer = api.as_user(who).post("/api/users/me/telegram/link")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    match = re.fullmatch(rf"https://t\.me/{BOT}\?start=([A-Za-z0-9_-]{{1,64}})", body["url"])
    assert match, body
    assert body["expires_at"]
    return match.group(1)


def update(
    text: str, chat: int, username: str | None = "anna", language: str | None = "en"
) -> dict[str, Any]:
    """A Bot API update carrying one private message."""
    sender: dict[str, Any] = {"id": chat, "is_bot": False, "first_name": "Anna"}
    if username:
        sender["username"] = username
    if language:
        sender["language_code"] = language
    return {
        "update_id": random.randrange(10**9),
        "message": {
            "message_id": 1,
            "from": sender,
            "chat": {"id": chat, "type": "private", "first_name": "Anna"},
            "date": int(time.time()),
            "text": text,
        },
    }


def to_bot(
    api: Api, body: Any, secret: str | None = TG_SECRET, content_type: str = "application/json"
) -> requests.Response:
    """POST to the bot's webhook as Telegram does (JSON, the secret header)."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    if isinstance(body, (bytes, str)):
        headers["Content-Type"] = content_type
        return api.request("POST", TG_WEBHOOK, data=body, headers=headers)
    return api.request("POST", TG_WEBHOOK, json=body, headers=headers)


def bot_says(answer: requests.Response, chat: int) -> str:
    """The text of the sendMessage the webhook answered with."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["method"], body["chat_id"]) == ("sendMessage", chat), body
    return body["text"]


def links(api: Api, who: Account) -> dict[str, Any]:
    """The `links` of GET /api/users/me."""
    me = api.as_user(who).get("/api/users/me")
    assert me.status_code == 200, me.text
    return me.json()["links"]


def unlinked(api: Api, who: Account) -> bool:
    """Neither messenger is linked."""
    return not any(state["linked"] for state in links(api, who).values())


# --- Telegram -----------------------------------------------------------------------------


def test_telegram_links_with_start_and_unlinks_with_stop_or_the_api(stack: Stack) -> None:
    api = stack.api()
    owner = api.register(locale="en")
    other = api.register(locale="ru")
    assert links(api, owner) == {
        "telegram": {"linked": False, "display_name": None, "linked_at": None},
        "vk": {"linked": False, "display_name": None, "linked_at": None},
    }
    chat, stranger = chat_id(), chat_id()
    code = telegram_link(api, owner)

    # The sender's Telegram is in Russian; the linked user reads English.
    answer = to_bot(api, update(f"/start {code}", chat, language="ru"))
    assert bot_says(answer, chat) == LINKED_EN
    linked = links(api, owner)["telegram"]
    assert linked["linked"] is True and linked["display_name"] == "@anna" and linked["linked_at"]
    assert links(api, owner)["vk"]["linked"] is False

    # The spent code from another chat: refused in that chat's language, nothing changes.
    reused = to_bot(api, update(f"/start {code}", stranger, username=None, language="ru"))
    assert bot_says(reused, stranger) == NOT_VALID_RU
    assert links(api, owner)["telegram"] == linked

    # Another user's code cannot take the linked chat.
    taken = to_bot(api, update(f"/start {telegram_link(api, other)}", chat))
    assert bot_says(taken, chat) == TAKEN_EN
    assert unlinked(api, other) and links(api, owner)["telegram"] == linked

    # /start alone explains; addressed with @bot as groups do, it is still ours.
    how = to_bot(api, update(f"/start@{BOT}", stranger, language="ru"))
    assert bot_says(how, stranger) == HOW_TO_LINK_RU
    assert to_bot(api, update(f"/start@another_bot {code}", chat)).json() == {}

    assert bot_says(to_bot(api, update("/stop", chat)), chat) == STOPPED_EN
    assert unlinked(api, owner)

    # Linked again, then unlinked from the settings page.
    again = to_bot(api, update(f"/start {telegram_link(api, owner)}", chat, username=None))
    assert bot_says(again, chat) == LINKED_EN
    assert links(api, owner)["telegram"]["display_name"] == "Anna"
    assert api.as_user(owner).request("DELETE", "/api/users/me/telegram").status_code == 204
    assert unlinked(api, owner)
    gone = api.as_user(owner).request("DELETE", "/api/users/me/telegram")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_linked"
    vk_gone = api.as_user(owner).request("DELETE", "/api/users/me/vk")
    assert vk_gone.status_code == 404 and vk_gone.json()["error"]["code"] == "not_linked"
    assert api.post("/api/users/me/telegram/link").status_code == 401


def test_telegram_webhook_refuses_what_telegram_did_not_send(stack: Stack) -> None:
    api = stack.api()
    owner = api.register(locale="en")
    chat = chat_id()
    code = telegram_link(api, owner)
    start = update(f"/start {code}", chat)

    missing = to_bot(api, start, secret=None)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_secret"
    wrong = to_bot(api, start, secret=TG_SECRET + "x")
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "invalid_secret"
    assert to_bot(api, start, secret="").status_code == 401
    assert unlinked(api, owner)

    # Bodies Telegram never sends: 4xx, never a 500, and nothing read from them.
    for body in (b"{not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe"):
        refused = to_bot(api, body)
        assert refused.status_code == 400, (body[:10], refused.text)
        assert refused.json()["error"]["code"] == "invalid_json"
    # Nested past what json can parse. Not as application/json: web/errors.py's NUL guard
    # parses those first, and answers this one 500 on every route (its own bug, reported).
    deep = to_bot(api, b"[" * 100_000, content_type="text/plain")
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "invalid_json"
    # A chat id no chat has (it would not fit the column), sent past the NUL guard likewise.
    too_big = json.dumps(update(f"/start {code}", 2**60))
    assert to_bot(api, too_big, content_type="text/plain").json() == {}
    huge = to_bot(api, b'{"a": "' + b"x" * (1024 * 1024) + b'"}')
    assert huge.status_code == 413
    nul = to_bot(api, update("/start \u0000", chat))
    assert 400 <= nul.status_code < 500

    # Updates it does not act on: acknowledged and ignored.
    ignored = [
        {"update_id": 1},
        {"update_id": 2, "edited_message": start["message"]},
        {"update_id": 3, "callback_query": {"id": "1", "data": "x"}},
        {"update_id": 4, "message": "not an object"},
        {"update_id": 5, "message": {"chat": {"id": "777"}, "text": f"/start {code}"}},
        {"update_id": 6, "message": {"chat": {"id": True}, "text": f"/start {code}"}},
        {"update_id": 7, "message": {"chat": [], "text": f"/start {code}"}},
        {"update_id": 8, "message": {"chat": {"id": chat}, "text": 42}},
        {"update_id": 9, "message": {"chat": {"id": chat}, "photo": []}},
        update("hello", chat),
        update(f"/help {code}", chat),
    ]
    for body in ignored:
        answer = to_bot(api, body)
        assert answer.status_code == 200 and answer.json() == {}, (body, answer.text)
    assert unlinked(api, owner)

    # Strange but usable shapes still link: no `from`, a sender that is not an object.
    odd = {"message": {"chat": {"id": chat, "title": "Team"}, "from": [], "text": f"/start {code}"}}
    assert bot_says(to_bot(api, odd), chat) == LINKED_EN
    assert links(api, owner)["telegram"]["display_name"] == "Team"
    # A NUL and a lone surrogate in the name (JSON-escaped: plain ASCII on the wire), past
    # the NUL guard: stored without them, as PostgreSQL can.
    odd_name = json.dumps(update(f"/start {telegram_link(api, owner)}", chat, "a\u0000b\ud800"))
    assert bot_says(to_bot(api, odd_name, content_type="text/plain"), chat) == LINKED_EN
    assert links(api, owner)["telegram"]["display_name"] == "@ab?"

    # Without TELEGRAM_WEBHOOK_SECRET the webhook is off, whatever is sent.
    off = stack.start_web(extra_env={"TELEGRAM_WEBHOOK_SECRET": ""})
    disabled = to_bot(stack.api(off), update("/stop", chat))
    assert disabled.status_code == 403 and disabled.json()["error"]["code"] == "webhook_disabled"
    assert links(api, owner)["telegram"]["linked"] is True


# --- VK -----------------------------------------------------------------------------------


def vk_link(api: Api, who: Account) -> str:
    """POST /api/users/me/vk/link; returns the code to type."""
    answer = api.as_user(who).post("/api/users/me/vk/link")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["url"] == f"https://vk.me/club{VK_GROUP}" and body["expires_at"]
    assert re.fullmatch(r"[A-Z2-9]{8}", body["code"]), body
    return body["code"]


def vk_message(text: str, peer: int, secret: str | None = VK_SECRET) -> dict[str, Any]:
    """A message_new event as the Callback API (version 5.199) posts it."""
    event: dict[str, Any] = {
        "type": "message_new",
        "event_id": f"{random.randrange(16**16):016x}",
        "v": "5.199",
        "group_id": VK_GROUP,
        "object": {
            "message": {"date": int(time.time()), "from_id": peer, "peer_id": peer, "id": 1,
                        "text": text},
            "client_info": {"lang_id": 3},
        },
    }  # fmt: skip
    if secret is not None:
        event["secret"] = secret
    return event


def to_vk(api: Api, event: Any) -> requests.Response:
    """POST one Callback API event."""
    return api.post(VK_CALLBACK, json=event)


def queued(stack: Stack, task: str) -> list[list[Any]]:
    """The args of every `task` message waiting in Redis, whatever queue it was routed to."""
    client = redis.Redis.from_url(stack.redis_url)
    found = []
    for key in client.scan_iter(count=1000):
        if client.type(key) != b"list":
            continue
        # kombu LPUSHes and workers BRPOP: the oldest is last.
        for raw in reversed(client.lrange(key, 0, -1)):
            try:
                message = json.loads(raw)
                if message["headers"]["task"] == task:
                    found.append(json.loads(base64.b64decode(message["body"]))[0])
            except (ValueError, KeyError, TypeError):
                continue
    return found


def vk_replies(stack: Stack) -> list[list[Any]]:
    """The args ([peer id, text]) of the community's replies left for a worker."""
    return queued(stack, "messengers.vk_reply")


def refused_as(answer: requests.Response, code: str) -> bool:
    """A 403 in the API's error shape with this code (VK reads only the status)."""
    assert answer.status_code == 403, answer.text
    return answer.json()["error"]["code"] == code


def test_vk_confirms_the_server_and_links_a_dialog_that_sends_a_code(stack: Stack) -> None:
    api = stack.api()
    owner = api.register(locale="en")
    peer = chat_id()

    confirm = to_vk(api, {"type": "confirmation", "group_id": VK_GROUP})
    assert confirm.status_code == 200 and confirm.text == VK_CONFIRMATION
    assert confirm.headers["Content-Type"].startswith("text/plain")
    other_group = to_vk(api, {"type": "confirmation", "group_id": VK_GROUP + 1})
    assert refused_as(other_group, "wrong_group")

    code = vk_link(api, owner)
    for secret in (None, "wrong", "", VK_SECRET.upper()):
        assert refused_as(to_vk(api, vk_message(code, peer, secret=secret)), "invalid_secret")
    assert unlinked(api, owner) and vk_replies(stack) == []

    # Typed as people type: lower case, a space in the middle.
    typed = f" {code[:4].lower()} {code[4:].lower()} "
    linked = to_vk(api, vk_message(typed, peer))
    assert linked.status_code == 200 and linked.text == "ok"
    state = links(api, owner)["vk"]
    assert state["linked"] is True and state["display_name"] == f"id{peer}"
    assert links(api, owner)["telegram"]["linked"] is False
    assert vk_replies(stack) == [[peer, LINKED_EN]]

    # Chatter, group conversations and other events: ok, nothing else.
    for event in (
        vk_message("hello, is anyone there?", chat_id()),
        {**vk_message(code, 2_000_000_001), "object": {"message": {"from_id": 5, "peer_id":
         2_000_000_001, "text": code}}},
        {"type": "message_reply", "group_id": VK_GROUP, "secret": VK_SECRET, "object": {}},
        {"type": "message_new", "group_id": VK_GROUP, "secret": VK_SECRET, "object": []},
        {"type": "wall_post_new", "group_id": VK_GROUP, "secret": VK_SECRET},
        {**vk_message(code, peer), "group_id": VK_GROUP + 1},
    ):  # fmt: skip
        answer = to_vk(api, event)
        assert answer.status_code == 200 and answer.text == "ok", (event, answer.text)
    assert vk_replies(stack) == [[peer, LINKED_EN]]
    for body in (b"{not json", b"[]"):
        bad = api.request(
            "POST", VK_CALLBACK, data=body, headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"

    assert api.as_user(owner).request("DELETE", "/api/users/me/vk").status_code == 204
    assert unlinked(api, owner)

    # Not set up: nothing is confirmed, no event is read.
    off = stack.api(
        stack.start_web(extra_env={"VK_CALLBACK_SECRET": "", "VK_CONFIRMATION_CODE": ""})
    )
    assert refused_as(
        to_vk(off, {"type": "confirmation", "group_id": VK_GROUP}), "webhook_disabled"
    )
    assert refused_as(to_vk(off, vk_message(vk_link(api, owner), peer)), "webhook_disabled")
    assert unlinked(api, owner)


def test_an_expired_vk_code_links_nothing(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(extra_env={**ENV, "LINK_CODE_TTL_SECONDS": "1"}).start(web=1, workers=0)
    api = stack.api()
    owner = api.register(locale="ru")
    peer = chat_id()
    code = vk_link(api, owner)
    time.sleep(1.5)

    answer = to_vk(api, vk_message(code, peer))

    assert answer.status_code == 200 and answer.text == "ok"
    assert unlinked(api, owner)
    # Nobody's dialog yet: the client's language (lang_id 3) is English.
    assert vk_replies(stack) == [[peer, NOT_VALID_EN]]
    fresh = vk_link(api, owner)
    assert to_vk(api, vk_message(fresh, peer)).text == "ok"
    assert links(api, owner)["vk"]["linked"] is True
    assert vk_replies(stack)[-1] == [peer, LINKED_RU]


# --- the CLI ------------------------------------------------------------------------------


def test_telegram_set_webhook_needs_the_token_and_queues_the_registration(stack: Stack) -> None:
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "telegram-set-webhook", *args],
            cwd=stack.cwd, env={**stack.env, **env}, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip

    without = run()
    assert without.returncode != 0 and "TELEGRAM_BOT_TOKEN" in without.stderr
    no_secret = run(TELEGRAM_BOT_TOKEN="123:abc", TELEGRAM_WEBHOOK_SECRET="")
    assert no_secret.returncode != 0 and "TELEGRAM_WEBHOOK_SECRET" in no_secret.stderr
    plain = run("--url", "http://bot.example.com/hook", TELEGRAM_BOT_TOKEN="123:abc")
    assert plain.returncode != 0 and "https://" in plain.stderr

    explicit = run("--url", "https://bot.example.com/hook", TELEGRAM_BOT_TOKEN="123:abc")
    assert explicit.returncode == 0, explicit.stderr
    default = run(TELEGRAM_BOT_TOKEN="123:abc", FRONTEND_URL="https://app.example.com/")
    assert default.returncode == 0, default.stderr
    assert queued(stack, "messengers.telegram_set_webhook") == [
        ["https://bot.example.com/hook"],
        ["https://app.example.com/api/integrations/telegram/webhook"],
    ]


# --- the edge -----------------------------------------------------------------------------


@pytest.mark.one_backend
def test_the_webhooks_have_a_limit_of_their_own(make_stack: Callable[..., Stack]) -> None:
    limits = {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_WRITES": "2/minute",
        "RATE_LIMIT_MESSENGER_WEBHOOKS": "4/minute",
    }
    stack = make_stack(extra_env={**ENV, **limits}).start(web=1, workers=0)
    api = stack.api()
    ignored = {"update_id": 1}

    # Past the user's write limit (not counted against it), up to the webhook's own.
    assert [to_bot(api, ignored).status_code for _ in range(4)] == [200] * 4
    limited = to_bot(api, ignored)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    chatter = {"type": "wall_post_new", "group_id": VK_GROUP, "secret": VK_SECRET}
    assert [to_vk(api, chatter).status_code for _ in range(5)] == [200] * 4 + [429]
