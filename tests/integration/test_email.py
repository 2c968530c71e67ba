"""Emails from real workers reach the SendGrid stand-in exactly once, whatever goes wrong."""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import text

from core.services import emails
from tests.support.clients import Account, Api, unique_email
from tests.support.fake_sendgrid import Accepted, FakeSendGrid
from tests.support.flows import act, create_campaign, create_channel
from tests.support.stack import Stack

KEY = "SG.integration-test-key"
CYRILLIC = re.compile("[а-яА-ЯёЁ]")


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    """The SendGrid stand-in the stack's workers send to."""
    with FakeSendGrid(api_key=KEY) as server:
        yield server


def email_env(fake: FakeSendGrid, **extra: str) -> dict[str, str]:
    """Settings that point the stack at the stand-in and trust its webhook key."""
    return {
        "SENDGRID_API_KEY": KEY,
        "SENDGRID_API_HOST": fake.url,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": fake.public_key,
        **extra,
    }


def start(stack: Stack, fake: FakeSendGrid | None, **kwargs: object) -> Api:
    """Start the stack; the stand-in posts its events to the stack's webhook endpoint."""
    stack.start(**kwargs)  # type: ignore[arg-type]
    if fake is not None:
        fake.post_events_to(stack.base_url() + "/api/webhooks/sendgrid")
    return stack.api()


def lifecycle(api: Api) -> tuple[Account, Account, str]:
    """Registration of both parties and one campaign from request to payout: five emails."""
    advertiser = api.register(role="advertiser", locale="en", name="Ada <b>Advertiser</b>")
    owner = api.register(role="channel_owner", locale="ru", name="Олег")
    channel = create_channel(api, owner, price="1500.00")
    campaign = create_campaign(api, advertiser, channel["id"], title="<script>x</script> Sale")
    act(api, owner, campaign["id"], "accept")
    act(api, advertiser, campaign["id"], "complete")
    return advertiser, owner, campaign["id"]


def to_parties(fake: FakeSendGrid, advertiser: Account, owner: Account) -> list[Accepted]:
    """The accepted emails addressed to this test's two parties.

    The session's database is shared, so a delivery an earlier test left pending may reach
    this test's stand-in; only the parties' own emails say anything here.
    """
    return [m for m in fake.messages() if m.to in (advertiser.email, owner.email)]


def wait_for_lifecycle(
    fake: FakeSendGrid, advertiser: Account, owner: Account, timeout: float
) -> list[Accepted]:
    """Wait for the lifecycle's five emails to the parties, and return every accepted one."""
    wait_until(lambda: len(to_parties(fake, advertiser, owner)) >= 5, timeout, "five emails")
    return fake.messages()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def email_states(stack: Stack, since: datetime) -> list[tuple[str, str, str | None]]:
    """(status, notification id, error) of the email deliveries this test created.

    The database is shared by the session's tests, so only rows created since `since` count.
    """
    query = text(
        "SELECT status, notification_id, error FROM deliveries"
        " WHERE channel = 'email' AND created_at >= :since"
    )
    stamp = since if stack.database_url.startswith("postgresql") else since.replace(tzinfo=None)
    with stack.engine().connect() as conn:
        return [tuple(r) for r in conn.execute(query, {"since": stamp})]  # type: ignore[misc]


def all_settled(stack: Stack, since: datetime) -> bool:
    """None of this test's email deliveries is pending or sending any more."""
    return all(status in ("sent", "failed") for status, _, _ in email_states(stack, since))


def assert_lifecycle_emails(messages: list[Accepted], advertiser: Account, owner: Account) -> None:
    """SPEC.md's five emails, once each, text and HTML, in each recipient's language."""
    ids = [m.custom_args["notification_id"] for m in messages]
    assert len(ids) == len(set(ids)), f"an email was sent twice: {Counter(ids)}"
    mine = [m for m in messages if m.to in (advertiser.email, owner.email)]
    by_to = {
        who.email: sorted(m.subject for m in mine if m.to == who.email)
        for who in (advertiser, owner)
    }
    assert [s.split(":")[0] for s in by_to[advertiser.email]] == [
        "Campaign accepted",
        "Welcome to the advertising marketplace, Ada <b>Advertiser</b>!",
    ]
    owner_subjects = by_to[owner.email]
    assert len(owner_subjects) == 3 and all(CYRILLIC.search(s) for s in owner_subjects)
    assert any(s.startswith("Новая заявка") for s in owner_subjects)
    assert any(s.startswith("Выплата 1\xa0350,00\xa0₽") for s in owner_subjects)
    for message in mine:
        types = [c["type"] for c in message.body["content"]]
        assert types == ["text/plain", "text/html"]
        html = message.content("text/html")
        assert "<script>" not in html and "<b>Advertiser</b>" not in html
        assert 'lang="en"' in html if message.to == advertiser.email else 'lang="ru"' in html


def test_lifecycle_sends_five_emails_once_and_reports_their_state(
    make_stack: Callable[..., Stack], fake: FakeSendGrid
) -> None:
    """Five emails at the stand-in; SendGrid's events come back and show in the API."""
    stack = make_stack(extra_env=email_env(fake))
    # The Procfile's layout: live pushes on their own worker, emails on the bulk one.
    live = stack.start_worker("live", queues="realtime", wait=False)
    bulk = stack.start_worker("bulk", queues="email,messengers,maintenance", wait=False)
    api = start(stack, fake, web=1, workers=2)
    live.wait_ready()
    bulk.wait_ready()
    advertiser, owner, _ = lifecycle(api)
    assert_lifecycle_emails(wait_for_lifecycle(fake, advertiser, owner, 30), advertiser, owner)
    time.sleep(1.0)
    assert len(to_parties(fake, advertiser, owner)) == 5
    # The bulk worker compiled every template before forking its pool (worker/celery_app.py);
    # the live one, which sends no email, did not spend the time.
    warm = f"email templates warm: {len(emails.kinds()) * len(emails.locales())} rendered"
    assert warm in bulk.log_text(), stack.logs()
    assert "email templates warm" not in live.log_text(), stack.logs()

    def delivered() -> bool:
        inbox = api.as_user(owner).get("/api/notifications").json()
        states = [d for n in inbox for d in n["deliveries"] if d["channel"] == "email"]
        return len(states) == 3 and all(d["provider_status"] == "delivered" for d in states)

    wait_until(delivered, 15, "delivered events to show in the owner's inbox")
    inbox = api.as_user(owner).get("/api/notifications").json()
    new_campaign = next(n for n in inbox if n["type"] == "new_campaign")
    states = {d["channel"]: d["status"] for d in new_campaign["deliveries"]}
    # Telegram and VK are not linked: recorded as such, never sent.
    assert states == {
        "email": "sent",
        "inbox": "sent",
        "telegram": "skipped",
        "vk": "skipped",
    }

    # The webhook refuses what SendGrid did not sign, or signed too long ago.
    url = stack.base_url() + "/api/webhooks/sendgrid"
    body = json.dumps([{"event": "bounce", "notification_id": new_campaign["id"]}]).encode()
    stale = str(int(time.time()) - 600)
    for headers in (
        {},
        {
            "X-Twilio-Email-Event-Webhook-Signature": fake.signer.sign(b"other", stale),
            "X-Twilio-Email-Event-Webhook-Timestamp": stale,
        },
        {
            "X-Twilio-Email-Event-Webhook-Signature": fake.signer.sign(body, stale),
            "X-Twilio-Email-Event-Webhook-Timestamp": stale,
        },
    ):
        answer = requests.post(url, data=body, headers=headers, timeout=10)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "invalid_signature"


def test_rate_limits_and_server_errors_still_mean_once_each(
    make_stack: Callable[..., Stack], fake: FakeSendGrid
) -> None:
    """First answers 429 and 500: every email is accepted exactly once; a refusal asks once."""
    fake.rate_limit_seconds = 1.0
    fake.script(429, 500, 500)
    refused = unique_email("refused")
    fake.refuse(refused, 400, "The email address is not valid.")
    stack = make_stack(extra_env=email_env(fake))
    api = start(stack, fake, web=1, workers=1, beat=True)
    since = datetime.now(UTC)
    advertiser, owner, _ = lifecycle(api)
    api.register(role="advertiser", email=refused)
    assert_lifecycle_emails(wait_for_lifecycle(fake, advertiser, owner, 60), advertiser, owner)
    wait_until(lambda: all_settled(stack, since), 30, "every email delivery to settle")
    time.sleep(1.0)
    assert len(to_parties(fake, advertiser, owner)) == 5
    # The scripted answers went to the first requests (the refused address aside).
    assert [a.status for a in fake.answered if a.status != 400][:3] == [429, 500, 500]
    assert len(fake.requests_to(refused)) == 1
    failed = [error for status, _, error in email_states(stack, since) if status == "failed"]
    assert failed == [
        "SendGrid 400: personalizations.0.to.0.email: The email address is not valid."
    ]


def test_a_worker_killed_mid_burst_loses_and_repeats_nothing(
    make_stack: Callable[..., Stack], fake: FakeSendGrid
) -> None:
    """kill -9 with sends in flight: the rest go out once, the in-doubt ones are not repeated."""
    fake.latency = 0.3
    env = email_env(fake, EMAIL_CONCURRENCY="4", DELIVERY_LEASE_SECONDS="5")
    stack = make_stack(extra_env=env)
    api = start(stack, fake, web=1, workers=1, beat=True)
    since = datetime.now(UTC)
    burst = 30
    for _ in range(burst):
        api.register(role="advertiser")
    advertiser, owner, _ = lifecycle(api)
    fake.wait_for(8, timeout=30)
    stack.kill_worker(0)
    killed_at = len(fake.messages())
    assert killed_at < burst + 5, "the burst finished before the kill; slow the stand-in down"
    stack.start_worker("worker1")
    messages = fake.wait_for(burst + 5, timeout=90)
    wait_until(lambda: all_settled(stack, since), 30, "every email delivery to settle")
    time.sleep(1.0)
    messages = fake.messages()
    ids = Counter(m.custom_args["notification_id"] for m in messages)
    assert len(messages) == burst + 5 and max(ids.values()) == 1, ids.most_common(3)
    assert_lifecycle_emails(messages, advertiser, owner)
    states = email_states(stack, since)
    assert len(states) == burst + 5
    unsent = [row for row in states if row[0] != "sent"]
    assert unsent == []


# The outbox writer instead of SendGrid; the deliveries' storage is the same as above, where
# both backends are tested.
@pytest.mark.one_backend
def test_without_a_key_the_lifecycle_leaves_five_eml_files(
    make_stack: Callable[..., Stack],
) -> None:
    """Local development: five .eml files in the outbox, text and HTML, in each language."""
    stack = make_stack()
    api = start(stack, None, web=1, workers=1)
    advertiser, owner, _ = lifecycle(api)
    wait_until(lambda: len(list(stack.outbox_dir.glob("*.eml"))) >= 5, 30, "five .eml files")
    time.sleep(1.0)
    files = sorted(stack.outbox_dir.glob("*.eml"))
    assert len(files) == 5
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    recipients = Counter(m["To"].addresses[0].addr_spec for m in parsed)
    assert recipients == {advertiser.email: 2, owner.email: 3}
    for message in parsed:
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        russian = message["To"].addresses[0].addr_spec == owner.email
        assert bool(CYRILLIC.search(str(message["Subject"]))) == russian
    assert "written to" in stack.workers[0].log_text()


# Every email in every locale.
TEMPLATES = len(emails.kinds()) * len(emails.locales())


@pytest.mark.one_backend  # templates rendered in every locale; the database is not involved
def test_previews_and_the_test_email_command(
    make_stack: Callable[..., Stack], fake: FakeSendGrid
) -> None:
    """Admins see every template in every locale; send-test-email sends one of each."""
    stack = make_stack(extra_env=email_env(fake))
    api = start(stack, fake, web=1, workers=1)
    assert api.get("/api/emails/previews").status_code == 401
    user = api.register()
    assert api.as_user(user).get("/api/emails/previews").status_code == 403
    admin = api.as_user(stack.create_admin())
    index = admin.get("/api/emails/previews")
    assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
    assert index.text.count(".txt") == TEMPLATES
    page = admin.get("/api/emails/previews/campaign_completed/ru")
    assert page.status_code == 200 and "13&nbsp;500,00&nbsp;₽" in page.text
    plain = admin.get("/api/emails/previews/welcome/en.txt")
    assert plain.text.startswith("Subject: Welcome")
    assert admin.get("/api/emails/previews/broadcast/en").status_code == 404

    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "send-test-email", "qa@example.com",
         "--locale", "all"],
        cwd=stack.cwd, env=stack.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # One of each, and the registered user's welcome.
    everything = fake.wait_for(TEMPLATES + 1, timeout=30)
    messages = [m for m in everything if m.to == "qa@example.com"]
    assert len(messages) == TEMPLATES and len({m.subject for m in messages}) == TEMPLATES
