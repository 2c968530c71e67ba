"""Telegram and VK deliveries from real workers: once each, in the user's language, within limits.

Real web, worker and beat processes on real Redis send to the stand-ins of the Bot API and the
VK API (tests/support/fake_telegram.py, fake_vk.py), which check what the real APIs check and
count every breach of their rate limits. Accounts are linked the way users link them: `/start
<code>` through the bot's webhook, the code typed to the community through the Callback API.
Bursts too big for the REST API are stored directly with the core services, as the platform's
own jobs store them, and left to beat's sweeper (or a task) to send.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from celery import Celery
from kombu import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Delivery, MessengerLink, User
from core.models.base import utcnow
from core.services.dispatch import DELIVERY_TASKS, batches
from core.services.notifications import notify
from tests.integration.test_email import wait_until
from tests.support.clients import Account, Api, unique_email
from tests.support.environment import TEST_HEALTH_TOKEN
from tests.support.fake_telegram import FakeTelegram, SentMessage, message_update
from tests.support.fake_vk import FakeVk, VkMessage, message_new_event
from tests.support.flows import act, create_campaign, create_channel
from tests.support.stack import Stack

TG_TOKEN = "123456:TEST-token"
BOT = "admarket_test_bot"
TG_SECRET = "tg-webhook_Secret-123"
TG_WEBHOOK = "/api/integrations/telegram/webhook"
VK_TOKEN = "vk1.a.test-community-token"
VK_GROUP = 229000001
VK_SECRET = "vk-callback-secret"
VK_CALLBACK = "/api/integrations/vk/callback"
FRONTEND = "http://frontend.test"
NASTY_TITLE = '<script>alert(1)</script> & "quotes"'
CYRILLIC = re.compile("[а-яА-ЯёЁ]")
NOTIFICATION_LINK = re.compile(r"\?notification=([0-9A-Za-z-]+)")
WAIT = 30.0
FINAL = ("sent", "failed", "suppressed", "skipped")


# --- the stand-ins and the stack's settings -----------------------------------------------


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    """The Bot API stand-in the stack's workers send to."""
    with FakeTelegram(token=TG_TOKEN, username=BOT) as fake:
        yield fake


@pytest.fixture
def vk() -> Iterator[FakeVk]:
    """The VK API stand-in the stack's workers send to."""
    with FakeVk(token=VK_TOKEN, group_id=VK_GROUP) as fake:
        yield fake


def messenger_env(telegram: FakeTelegram | None, vk: FakeVk | None, **extra: str) -> dict[str, str]:
    """Both webhooks set up; the tokens (and API bases) of the stand-ins given."""
    env = {
        "TELEGRAM_BOT_USERNAME": BOT,
        "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
        "VK_GROUP_ID": str(VK_GROUP),
        "VK_CALLBACK_SECRET": VK_SECRET,
        "VK_CONFIRMATION_CODE": "5f3a9c1e",
    }
    if telegram is not None:
        env |= {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_BASE": telegram.url}
    if vk is not None:
        env |= {"VK_COMMUNITY_TOKEN": vk.token, "VK_API_BASE": vk.url}
    return env | extra


def chat_ids(count: int) -> list[int]:
    """Chat (and peer) ids no other test sharing the session's database links."""
    return random.sample(range(10**8, 2 * 10**9 - 1), count)


# --- linking, as users do it ---------------------------------------------------------------


def link_telegram(api: Api, who: Account, chat: int) -> None:
    """The user opens the link's bot and presses Start: `/start <code>` reaches the webhook."""
    answer = api.as_user(who).post("/api/users/me/telegram/link")
    assert answer.status_code == 201, answer.text
    code = re.fullmatch(rf"https://t\.me/{BOT}\?start=(\S+)", answer.json()["url"]).group(1)
    update = message_update(chat, f"/start {code}", update_id=random.randrange(10**9))
    reply = api.post(
        TG_WEBHOOK, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    )
    assert reply.status_code == 200 and reply.json()["chat_id"] == chat, reply.text
    assert linked(api, who)["telegram"]


def link_vk(api: Api, who: Account, peer: int) -> None:
    """The user types the code to the community: a message_new reaches the Callback API."""
    answer = api.as_user(who).post("/api/users/me/vk/link")
    assert answer.status_code == 201, answer.text
    event = message_new_event(VK_GROUP, peer, answer.json()["code"], secret=VK_SECRET)
    reply = api.post(VK_CALLBACK, json=event)
    assert reply.status_code == 200 and reply.text == "ok", reply.text
    assert linked(api, who)["vk"]


def linked(api: Api, who: Account) -> dict[str, bool]:
    """Which messengers GET /api/users/me shows linked."""
    me = api.as_user(who).get("/api/users/me")
    assert me.status_code == 200, me.text
    return {channel: state["linked"] for channel, state in me.json()["links"].items()}


# --- reading what happened ---------------------------------------------------------------


def notification_of(link: str) -> str:
    """The notification id in the link a message carries (its button, or VK's text)."""
    match = NOTIFICATION_LINK.search(link)
    assert match, link
    return match.group(1)


def tg_notification(message: SentMessage) -> str:
    """The notification a Telegram message is about, from its button."""
    (button,) = message.buttons
    return notification_of(button["url"])


def vk_notification(message: VkMessage) -> str | None:
    """The notification a VK message is about; None for the community's replies to a code."""
    match = NOTIFICATION_LINK.search(message.message)
    return match.group(1) if match else None


def vk_notices(vk: FakeVk) -> list[VkMessage]:
    """The accepted VK messages that are notifications (not the community's link replies)."""
    return [m for m in vk.messages() if vk_notification(m) is not None]


def inbox(api: Api, who: Account) -> dict[str, dict[str, Any]]:
    """The user's notifications by type (one of each type is all these tests create)."""
    answer = api.as_user(who).get("/api/notifications")
    assert answer.status_code == 200, answer.text
    return {n["type"]: n for n in answer.json()}


def deliveries(api: Api, who: Account, notification_id: str) -> dict[str, dict[str, Any]]:
    """GET /api/notifications/<id>: its deliveries by channel."""
    answer = api.as_user(who).get(f"/api/notifications/{notification_id}")
    assert answer.status_code == 200, answer.text
    return {d["channel"]: d for d in answer.json()["deliveries"]}


def settled(api: Api, who: Account, notification_id: str, *channels: str) -> bool:
    """The notification's deliveries on these channels reached a final state."""
    states = deliveries(api, who, notification_id)
    return all(states[c]["status"] in FINAL for c in channels)


def rows(stack: Stack, ids: list[str]) -> dict[str, tuple[str, str | None, str | None]]:
    """(status, error, provider message id) of these deliveries, read from the database."""
    found: dict[str, tuple[str, str | None, str | None]] = {}
    query = select(Delivery.id, Delivery.status, Delivery.error, Delivery.provider_message_id)
    with stack.engine().connect() as conn:
        for chunk in batches(ids):
            for delivery_id, status, error, message_id in conn.execute(
                query.where(Delivery.id.in_(chunk))
            ):
                found[delivery_id] = (status, error, message_id)
    return found


def all_sent(stack: Stack, ids: list[str]) -> bool:
    """Every one of these deliveries is `sent`."""
    states = rows(stack, ids)
    return len(states) == len(ids) and all(s == "sent" for s, _, _ in states.values())


def per_chat_max_per_second(times: dict[str, list[float]]) -> int:
    """The most messages any one chat got within a 1.0 s window."""
    best = 0
    for stamps in times.values():
        stamps = sorted(stamps)
        start = 0
        for end, at in enumerate(stamps):
            while at - stamps[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
    return best


# --- bursts stored in the database --------------------------------------------------------


@dataclass
class Burst:
    """Notifications stored for linked users: their deliveries on the messenger under test."""

    channel: str
    # delivery id -> the chat (peer) it goes to; notification id -> its delivery id.
    chat_of: dict[str, str] = field(default_factory=dict)
    delivery_of: dict[str, str] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        """The deliveries' ids."""
        return list(self.chat_of)


def store_burst(stack: Stack, channel: str, chats: list[int], per_chat: int) -> Burst:
    """One user per chat, linked on `channel` only, with `per_chat` new_campaign notifications.

    Stored with notify() through a plain session: its after-commit dispatch never runs, so the
    deliveries stay pending for the sweeper (or enqueue()). Email and the other messenger are
    turned off in each user's preferences; the inbox push always goes.
    """
    other = "vk" if channel == "telegram" else "telegram"
    burst = Burst(channel)
    stack.migrate()
    with Session(stack.engine()) as session:
        for i, chat in enumerate(chats):
            user = User(
                email=unique_email("burst"),
                name=f"Burst {i}",
                role="channel_owner",
                locale="ru" if i % 2 else "en",
                password_hash="unused",
                notification_prefs={"new_campaign": {"email": False, other: False}},
                # What core/services/messengers.py keeps beside the link row it adds below.
                linked_messengers=[channel],
            )
            session.add(user)
            session.flush()
            session.add(
                MessengerLink(
                    user_id=user.id, channel=channel, external_id=str(chat), created_at=utcnow()
                )
            )
            session.flush()
            for k in range(per_chat):
                payload = {
                    "campaign_title": f"Burst <{i}> & {k}",
                    "channel_name": "Tech News",
                    "price": "1500.00",
                    "advertiser_name": "Acme",
                }
                note = notify(session, user, "new_campaign", payload)
                (delivery,) = [d for d in note.deliveries if d.channel == channel]
                assert delivery.status == "pending"
                burst.chat_of[delivery.id] = str(chat)
                burst.delivery_of[note.id] = delivery.id
        session.commit()
    return burst


def enqueue(stack: Stack, channel: str, ids: list[str]) -> None:
    """Send delivery ids to their task as the web tier's dispatcher does, in its batches."""
    client = Celery("messenger-tests", broker=stack.redis_url, set_as_current=False)
    client.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_queues=[Queue("messengers", routing_key="messengers")],
        broker_connection_retry_on_startup=True,
    )
    try:
        for batch in batches(ids):
            client.send_task(DELIVERY_TASKS[channel], args=[batch], queue="messengers")
    finally:
        client.close()


# --- 1. a lifecycle -----------------------------------------------------------------------


def test_a_lifecycle_reaches_both_messengers_once_each_in_each_language(
    make_stack: Callable[..., Stack], telegram: FakeTelegram, vk: FakeVk
) -> None:
    stack = make_stack(extra_env=messenger_env(telegram, vk)).start(web=1, workers=1)
    api = stack.api()
    owner = api.register(role="channel_owner", locale="ru", name="Олег")
    advertiser = api.register(role="advertiser", locale="en")
    owner_chat, advertiser_chat, owner_peer, advertiser_peer = chat_ids(4)
    link_telegram(api, owner, owner_chat)
    link_telegram(api, advertiser, advertiser_chat)
    link_vk(api, owner, owner_peer)
    link_vk(api, advertiser, advertiser_peer)

    channel = create_channel(api, owner, price="1500.00")
    campaign = create_campaign(api, advertiser, channel["id"], title=NASTY_TITLE)
    act(api, owner, campaign["id"], "accept")
    act(api, advertiser, campaign["id"], "complete")

    expected = [
        (owner, "new_campaign"),
        (owner, "campaign_completed"),
        (advertiser, "campaign_accepted"),
    ]

    def notes() -> dict[str, tuple[Account, dict[str, Any]]]:
        by_id = {}
        for who, kind in expected:
            note = inbox(api, who).get(kind)
            if note is not None:
                by_id[note["id"]] = (who, note)
        return by_id

    wait_until(lambda: len(notes()) == 3, WAIT, "the three notifications")
    by_id = notes()
    for note_id, (who, _) in by_id.items():
        wait_until(
            lambda n=note_id, w=who: settled(api, w, n, "telegram", "vk"),
            WAIT,
            "the messenger deliveries to settle",
        )

    # Telegram: each chat got exactly its own notifications, once each.
    sent = telegram.messages()
    by_chat = defaultdict(list)
    for message in sent:
        by_chat[message.chat_id].append(tg_notification(message))
    kinds = {note_id: note["type"] for note_id, (_, note) in by_id.items()}
    assert sorted(kinds[n] for n in by_chat[str(owner_chat)]) == [
        "campaign_completed",
        "new_campaign",
    ]
    assert [kinds[n] for n in by_chat[str(advertiser_chat)]] == ["campaign_accepted"]
    assert len(sent) == 3 and set(by_chat) == {str(owner_chat), str(advertiser_chat)}
    assert telegram.violations() == []
    for message in sent:
        note_id = tg_notification(message)
        who, note = by_id[note_id]
        russian = who is owner
        assert message.parse_mode == "HTML"
        # The stand-in refuses bad HTML: the title reached it escaped, and only ours is markup.
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in message.text, message.text
        assert "<script>" not in message.text
        assert message.text.startswith(f"<b>{note['title']}</b>\n")
        assert bool(CYRILLIC.search(message.text)) == russian, message.text
        (button,) = message.buttons
        assert button == {
            "text": "Открыть на бирже" if russian else "Open in the marketplace",
            "url": f"{FRONTEND}/?notification={note_id}",
        }

    # VK: the same three, once each, each with its own random_id, as plain text.
    notices = vk_notices(vk)
    assert sorted(vk_notification(m) for m in notices) == sorted(by_id)
    assert len({m.random_id for m in notices}) == 3
    for message in notices:
        note_id = vk_notification(message)
        assert note_id is not None
        who, note = by_id[note_id]
        assert message.peer_id == str(owner_peer if who is owner else advertiser_peer)
        assert NASTY_TITLE in message.message and "&lt;" not in message.message
        assert bool(CYRILLIC.search(message.message)) == (who is owner)
        assert f"{FRONTEND}/?notification={note['id']}" in message.message
    assert vk.duplicates_suppressed == 0 and vk.violations() == []

    # The timeline shows both messengers sent, with the providers' message ids.
    by_message = {tg_notification(m): str(m.message_id) for m in sent}
    by_vk = {vk_notification(m): str(m.message_id) for m in notices}
    for note_id, (who, _) in by_id.items():
        states = deliveries(api, who, note_id)
        assert states["telegram"]["status"] == "sent" and states["vk"]["status"] == "sent"
        assert states["telegram"]["provider_message_id"] == by_message[note_id]
        assert states["vk"]["provider_message_id"] == by_vk[note_id]
        assert states["telegram"]["last_error"] is None


# --- 2. 429 retry_after -------------------------------------------------------------------


@pytest.mark.one_backend
def test_retry_after_is_waited_out_and_nothing_is_sent_twice(
    make_stack: Callable[..., Stack], telegram: FakeTelegram
) -> None:
    """Six notifications to three chats, the first six answers 429 retry_after=3."""
    stack = make_stack(extra_env=messenger_env(telegram, None))
    burst = store_burst(stack, "telegram", chat_ids(3), per_chat=2)
    telegram.script_retry_after(len(burst.ids), 3)
    # No beat: its sweeper re-sends a held delivery whatever its retry_after (reported), so
    # here the task's own retry, due after the wait, is what sends them again.
    stack.start(web=0, workers=1)
    started = time.monotonic()
    enqueue(stack, "telegram", burst.ids)

    wait_until(lambda: all_sent(stack, burst.ids), 60, "every delivery to be sent")
    took = time.monotonic() - started
    messages = telegram.messages()
    counts = Counter(burst.delivery_of[tg_notification(m)] for m in messages)
    assert sorted(counts) == sorted(burst.ids) and set(counts.values()) == {1}, counts
    for message in messages:
        assert burst.chat_of[burst.delivery_of[tg_notification(message)]] == message.chat_id
    limited = [r for r in telegram.requests_for("sendMessage") if r.status == 429]
    assert len(limited) == len(burst.ids)
    first_429 = min(r.at for r in limited)
    waited = min(m.at for m in messages) - first_429
    assert waited >= 3.0, f"a message was accepted {waited:.2f} s after the first 429"
    # Each later 429 was waited out too: no request came within 3 s of one to the same chat.
    for request in telegram.requests_for("sendMessage"):
        earlier = [r.at for r in limited if r.chat_id == request.chat_id and r.at < request.at]
        if earlier:
            assert request.at - max(earlier) >= 3.0, (request, earlier)
    assert telegram.violations() == []
    print(
        f"429 x{len(limited)}: first message accepted {waited:.2f} s after the first 429; "
        f"all {len(burst.ids)} sent once in {took:.1f} s"
    )


# --- 3. the limits ------------------------------------------------------------------------


@pytest.mark.one_backend
def test_a_burst_to_ten_chats_stays_within_the_bot_and_chat_limits(
    make_stack: Callable[..., Stack], telegram: FakeTelegram
) -> None:
    """60 notifications to 10 chats, sent by beat's sweeper: once each, no breach."""
    env = messenger_env(telegram, None, SWEEP_INTERVAL_SECONDS="1", SWEEP_GRACE_SECONDS="0.5")
    stack = make_stack(extra_env=env)
    chats = chat_ids(10)
    burst = store_burst(stack, "telegram", chats, per_chat=6)
    stack.start(web=0, workers=1, beat=True)

    wait_until(lambda: all_sent(stack, burst.ids), 90, "every delivery to be sent")
    messages = telegram.messages()
    counts = Counter(burst.delivery_of[tg_notification(m)] for m in messages)
    assert len(counts) == 60 and set(counts.values()) == {1}, counts.most_common(3)
    assert Counter(m.chat_id for m in messages) == {str(c): 6 for c in chats}
    assert telegram.violations() == []
    times: dict[str, list[float]] = defaultdict(list)
    for message in messages:
        times[message.chat_id].append(message.at)
    per_chat = per_chat_max_per_second(times)
    assert per_chat == 1
    # Each chat's notifications arrive in the order they were made.
    for chat in chats:
        in_order = [m.text for m in sorted(telegram.messages(chat), key=lambda m: m.at)]
        assert in_order == sorted(in_order, key=lambda t: int(re.search(r"&amp; (\d)", t)[1]))
    span = max(m.at for m in messages) - min(m.at for m in messages)
    print(
        f"60 messages to 10 chats in {span:.1f} s: max {telegram.max_per_second()}/s per bot, "
        f"{per_chat}/s per chat, violations {telegram.violations()}"
    )


# --- 4. kill -9 mid-burst -----------------------------------------------------------------

KILL_ENV = {
    "EMAIL_CONCURRENCY": "8",
    "DELIVERY_LEASE_SECONDS": "5",
    "SWEEP_INTERVAL_SECONDS": "1",
    "SWEEP_GRACE_SECONDS": "0.5",
}
# The worker's send threads (EMAIL_CONCURRENCY) in its one pool process: the sends in flight.
IN_FLIGHT_BOUND = int(KILL_ENV["EMAIL_CONCURRENCY"])
# 300 keeps CI short (25 messages/s); TEST_TELEGRAM_KILL_BURST=500 is the full burst.
KILL_BURST = int(os.environ.get("TEST_TELEGRAM_KILL_BURST", "300"))


@pytest.mark.one_backend
def test_a_telegram_worker_killed_mid_burst_repeats_at_most_its_sends_in_flight(
    make_stack: Callable[..., Stack], telegram: FakeTelegram
) -> None:
    """KILL_BURST chats, kill -9 after ~50 sends: every chat gets its message; few get it twice."""
    telegram.latency = 0.2
    stack = make_stack(extra_env=messenger_env(telegram, None, **KILL_ENV))
    chats = chat_ids(KILL_BURST)
    burst = store_burst(stack, "telegram", chats, per_chat=1)
    stack.start(web=0, workers=0, beat=True)
    # One pool process, so the sends in flight are its EMAIL_CONCURRENCY threads at most.
    stack.start_worker(concurrency=1)
    telegram.wait_for(50, timeout=60)
    killed_at = time.monotonic()
    stack.kill_worker(0)
    at_kill = len(telegram.messages())
    assert at_kill < 200, "the burst was nearly over before the kill"
    stack.start_worker("worker1", concurrency=1)

    wait_until(lambda: all_sent(stack, burst.ids), 120, "every delivery to be sent")
    messages = telegram.messages()
    per_chat = Counter(m.chat_id for m in messages)
    assert set(per_chat) == {str(c) for c in chats}
    duplicates = sorted(chat for chat, n in per_chat.items() if n > 1)
    assert max(per_chat.values()) <= 2, per_chat.most_common(3)
    # Accepted after the kill (and before any new worker could send): the requests in flight.
    in_flight = sum(1 for m in messages if killed_at <= m.at < killed_at + 1.0)
    first_at: dict[str, float] = {}
    for message in messages:
        first_at.setdefault(message.chat_id, message.at)
    offsets = sorted(first_at[chat] - killed_at for chat in duplicates) or [0.0]
    print(
        f"Telegram kill -9 after {at_kill} accepted: {len(duplicates)} chats got a duplicate "
        f"({in_flight} sends answered after the kill; bound {IN_FLIGHT_BOUND}); their first "
        f"sends were accepted {offsets[0]:+.2f}..{offsets[-1]:+.2f}"
        f" s around the kill; max {telegram.max_per_second()}/s per bot"
    )
    assert len(duplicates) <= IN_FLIGHT_BOUND
    # Only sends the dead worker had in flight (or had just seen answered) were repeated.
    assert all(-0.5 < offset < 1.0 for offset in offsets), offsets
    assert telegram.violations() == []


@pytest.mark.one_backend
def test_a_burst_longer_than_the_lease_is_sent_once_by_two_pool_processes(
    make_stack: Callable[..., Stack], telegram: FakeTelegram
) -> None:
    """300 chats at 25/s outlast a 5 s lease: the engine renews it, so no one sends twice."""
    stack = make_stack(extra_env=messenger_env(telegram, None, **KILL_ENV))
    chats = chat_ids(300)
    burst = store_burst(stack, "telegram", chats, per_chat=1)
    stack.start(web=0, workers=0, beat=True)
    stack.start_worker(concurrency=2)

    wait_until(lambda: all_sent(stack, burst.ids), 120, "every delivery to be sent")
    per_chat = Counter(m.chat_id for m in telegram.messages())
    assert set(per_chat) == {str(c) for c in chats}
    assert max(per_chat.values()) == 1, per_chat.most_common(3)
    assert telegram.violations() == []


@pytest.mark.one_backend
def test_a_vk_worker_killed_mid_burst_repeats_nothing_thanks_to_random_id(
    make_stack: Callable[..., Stack], vk: FakeVk
) -> None:
    """100 peers, kill -9 after ~30 sends: VK drops every resend by its random_id."""
    vk.latency = 0.2
    stack = make_stack(extra_env=messenger_env(None, vk, **KILL_ENV))
    peers = chat_ids(100)
    burst = store_burst(stack, "vk", peers, per_chat=1)
    stack.start(web=0, workers=0, beat=True)
    stack.start_worker(concurrency=1)
    vk.wait_for(30, timeout=60)
    stack.kill_worker(0)
    at_kill = len(vk.messages())
    assert at_kill < 90, "the burst was nearly over before the kill"
    stack.start_worker("worker1", concurrency=1)

    wait_until(lambda: all_sent(stack, burst.ids), 120, "every delivery to be sent")
    messages = vk.messages()
    per_peer = Counter(m.peer_id for m in messages)
    duplicates = sum(1 for n in per_peer.values() if n > 1)
    print(
        f"VK kill -9 after {at_kill} accepted: duplicates {duplicates}, "
        f"duplicates_suppressed {vk.duplicates_suppressed} (resends VK dropped by random_id); "
        f"max {vk.max_per_second()}/s"
    )
    assert per_peer == {str(p): 1 for p in peers}
    assert duplicates == 0
    assert len({m.random_id for m in messages}) == 100
    # A resend VK dropped answers the first message's id, so the timeline shows that one.
    states = rows(stack, burst.ids)
    by_peer = {m.peer_id: str(m.message_id) for m in messages}
    assert all(states[d][2] == by_peer[burst.chat_of[d]] for d in burst.ids)
    assert vk.violations() == []


# --- 5. blocked, no permission -------------------------------------------------------------


def test_a_blocked_bot_or_a_forbidden_dialog_unlinks_and_later_ones_are_skipped(
    make_stack: Callable[..., Stack], telegram: FakeTelegram, vk: FakeVk
) -> None:
    stack = make_stack(extra_env=messenger_env(telegram, vk)).start(web=1, workers=1)
    api = stack.api()
    owner = api.register(role="channel_owner", locale="en")
    advertiser = api.register(role="advertiser", locale="en")
    chat, peer = chat_ids(2)
    link_telegram(api, owner, chat)
    link_vk(api, owner, peer)
    telegram.block(chat)
    vk.forbid(peer)

    channel = create_channel(api, owner)
    create_campaign(api, advertiser, channel["id"], title="First")
    first = inbox(api, owner)["new_campaign"]["id"]
    wait_until(lambda: settled(api, owner, first, "telegram", "vk"), WAIT, "the refusals")
    states = deliveries(api, owner, first)
    assert states["telegram"]["status"] == "failed"
    assert states["telegram"]["last_error"] == (
        "unlinked: Telegram 403: Forbidden: bot was blocked by the user"
    )
    assert states["vk"]["status"] == "failed"
    assert states["vk"]["last_error"].startswith("unlinked: VK error 901: ")
    assert linked(api, owner) == {"telegram": False, "vk": False}

    def to_chat() -> tuple[int, int]:
        tg = [r for r in telegram.requests_for("sendMessage") if r.chat_id == str(chat)]
        to_peer = [r for r in vk.requests if r.method == "messages.send" and r.peer_id == str(peer)]
        return len(tg), len(to_peer)

    refused = to_chat()
    assert refused[0] == 1 and refused[1] >= 1

    create_campaign(api, advertiser, channel["id"], title="Second")
    second = next(
        n["id"]
        for n in api.as_user(owner).get("/api/notifications").json()
        if n["type"] == "new_campaign" and n["id"] != first
    )
    later = deliveries(api, owner, second)
    assert later["telegram"]["status"] == "skipped"
    assert later["telegram"]["last_error"] == "no telegram account linked"
    assert later["vk"]["status"] == "skipped"
    assert later["vk"]["last_error"] == "no vk account linked"
    # Recorded as skipped when stored: no row, no task. Once its push went out, anything
    # sent to the blocked chat would have reached the stand-ins.
    wait_until(lambda: settled(api, owner, second, "inbox"), WAIT, "the owner's push")
    assert to_chat() == refused
    assert telegram.messages() == [] and vk_notices(vk) == []


# --- 6. a refused token -------------------------------------------------------------------


def deep_health(api: Api) -> dict[str, Any]:
    """GET /health?deep=1 as monitoring calls it."""
    answer = api.get("/health?deep=1", headers={"X-Health-Token": TEST_HEALTH_TOKEN}, timeout=30)
    assert answer.status_code in (200, 503), answer.text
    return answer.json()


@pytest.mark.one_backend
def test_a_refused_token_keeps_deliveries_pending_and_fails_health_until_fixed(
    make_stack: Callable[..., Stack], telegram: FakeTelegram
) -> None:
    env = messenger_env(
        telegram,
        None,
        TELEGRAM_BOT_TOKEN="123456:WRONG-token",
        DELIVERY_LEASE_SECONDS="5",
        SWEEP_INTERVAL_SECONDS="1",
        SWEEP_GRACE_SECONDS="0.5",
    )
    stack = make_stack(extra_env=env).start(web=1, workers=1, beat=True)
    api = stack.api()
    owner = api.register(role="channel_owner", locale="en")
    advertiser = api.register(role="advertiser", locale="en")
    chat = chat_ids(1)[0]
    link_telegram(api, owner, chat)
    create_campaign(api, advertiser, create_channel(api, owner)["id"])
    note = inbox(api, owner)["new_campaign"]["id"]

    def refusals() -> int:
        return sum(1 for r in telegram.requests_for("sendMessage") if r.status == 401)

    def state(note_id: str) -> dict[str, Any]:
        return deliveries(api, owner, note_id)["telegram"]

    wait_until(lambda: refusals() >= 1, WAIT, "the refused send")
    wait_until(lambda: state(note)["status"] == "pending", WAIT, "the delivery to be pending")
    assert state(note)["last_error"].startswith("auth: Telegram 401: Unauthorized")
    assert "WRONG" not in state(note)["last_error"]
    # Several sweeps later it still waits for a working token: never given up on.
    watch_until = time.monotonic() + 3.0
    while time.monotonic() < watch_until:
        assert state(note)["status"] in ("pending", "sending"), state(note)
        time.sleep(0.2)
    health = deep_health(api)
    assert health["checks"]["telegram"]["status"] == "fail", health["checks"]["telegram"]
    assert "refused" in health["checks"]["telegram"]["error"]
    assert health["status"] == "fail"
    assert telegram.messages() == []
    print(f"refused token: {refusals()} sends refused with 401, the delivery still pending")

    # The operator fixes the token: the next send goes through and health turns ok.
    stack.kill_worker(0)
    stack.start_worker("worker1", extra_env={"TELEGRAM_BOT_TOKEN": TG_TOKEN})
    create_campaign(api, advertiser, create_channel(api, owner)["id"], title="After the fix")
    after = next(
        n["id"]
        for n in api.as_user(owner).get("/api/notifications").json()
        if n["type"] == "new_campaign" and n["id"] != note
    )
    wait_until(lambda: state(after)["status"] == "sent", WAIT, "the next message to be sent")
    assert after in {tg_notification(m) for m in telegram.messages(chat)}
    assert deep_health(api)["checks"]["telegram"]["status"] == "ok"
    # The one held back is sent in its turn (when its wait is over), never failed.
    assert state(note)["status"] in ("pending", "sending", "sent")


# --- 7. no token: the outbox --------------------------------------------------------------


@pytest.mark.one_backend
def test_without_a_token_telegram_messages_go_to_the_outbox(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(extra_env=messenger_env(None, None)).start(web=1, workers=1)
    api = stack.api()
    owner = api.register(role="channel_owner", locale="ru")
    advertiser = api.register(role="advertiser", locale="en")
    chat = chat_ids(1)[0]
    link_telegram(api, owner, chat)
    create_campaign(api, advertiser, create_channel(api, owner)["id"], title=NASTY_TITLE)
    note = inbox(api, owner)["new_campaign"]["id"]

    wait_until(lambda: settled(api, owner, note, "telegram"), WAIT, "the telegram delivery")
    state = deliveries(api, owner, note)["telegram"]
    assert state["status"] == "sent", state
    files = list(stack.outbox_dir.glob("telegram-*.json"))
    assert len(files) == 1
    assert state["provider_message_id"] == f"outbox:{files[0].name}"
    written = json.loads(files[0].read_text())
    assert written["to"] == str(chat)
    assert "&lt;script&gt;" in written["text"] and CYRILLIC.search(written["text"])
    assert written["button"] == ["Открыть на бирже", f"{FRONTEND}/?notification={note}"]
