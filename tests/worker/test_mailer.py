"""The SendGrid adapter's classification, the stand-in's checks, and the dev outbox."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from core.services.deliveries import PermanentFailure, RetryLater
from core.settings import Settings
from tests.support.fake_sendgrid import FakeSendGrid
from worker.mailer import (
    OutboxMailer,
    OutgoingEmail,
    SendGridMailer,
    build_mailer,
    provider_message,
)

KEY = "SG.unit-test-key"
MESSAGE = OutgoingEmail(
    to_email="anna@example.com",
    to_name="Анна",
    subject="Заявка принята",
    text="Текст письма",
    html="<p>Письмо</p>",
    key="n-1",
    custom_args={"notification_id": "n-1"},
)


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    """A SendGrid stand-in on a loopback port."""
    with FakeSendGrid(api_key=KEY) as server:
        yield server


def sendgrid(fake: FakeSendGrid) -> SendGridMailer:
    """The adapter pointed at the stand-in."""
    return SendGridMailer(KEY, fake.url, "noreply@example.com", "Ad Marketplace", 5.0)


def test_202_returns_the_message_id(fake: FakeSendGrid) -> None:
    """The X-Message-Id of the answer is what gets stored."""
    result = sendgrid(fake).send(MESSAGE)
    (accepted,) = fake.messages()
    assert result == {"provider_message_id": accepted.message_id}
    assert accepted.to == "anna@example.com"
    assert accepted.custom_args == {"notification_id": "n-1"}
    assert accepted.content("text/plain") == "Текст письма"


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_refusals_are_permanent(fake: FakeSendGrid, status: int) -> None:
    """No retry can fix a bad request, key, permission or size."""
    fake.script(status)
    with pytest.raises(PermanentFailure, match=f"SendGrid {status}"):
        sendgrid(fake).send(MESSAGE)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(fake: FakeSendGrid, status: int) -> None:
    """5xx may pass later; no reset time is implied."""
    fake.script(status)
    with pytest.raises(RetryLater) as caught:
        sendgrid(fake).send(MESSAGE)
    assert caught.value.not_before is None


def test_429_pauses_the_mailer_until_the_reset(fake: FakeSendGrid) -> None:
    """The reset time is read from X-RateLimit-Reset; meanwhile sends do not hit the API."""
    fake.rate_limit_seconds = 2
    fake.script(429)
    mailer = sendgrid(fake)
    with pytest.raises(RetryLater) as caught:
        mailer.send(MESSAGE)
    reset = caught.value.not_before
    assert reset is not None and time.time() < reset <= time.time() + 3.5
    with pytest.raises(RetryLater):
        mailer.send(MESSAGE)
    assert len(fake.answered) == 1


def test_the_stand_in_checks_requests_like_sendgrid(fake: FakeSendGrid) -> None:
    """Auth, personalizations, from, subject and content order are checked."""
    url = f"{fake.url}/v3/mail/send"
    good = {
        "personalizations": [{"to": [{"email": "a@example.com"}]}],
        "from": {"email": "noreply@example.com"},
        "subject": "Hi",
        "content": [{"type": "text/plain", "value": "t"}, {"type": "text/html", "value": "h"}],
    }
    auth = {"Authorization": f"Bearer {KEY}"}

    def post(body: object, headers: dict[str, str] = auth) -> requests.Response:
        return requests.post(url, json=body, headers=headers, timeout=5)

    assert post(good).status_code == 202
    assert post(good, {"Authorization": "Bearer nope"}).status_code == 401
    cases = {
        "personalizations": {**good, "personalizations": []},
        "from": {**good, "from": {"email": "not-an-address"}},
        "subject": {**good, "subject": "Hi\r\nBcc: x@example.com"},
        "content": {**good, "content": list(reversed(good["content"]))},  # type: ignore[call-overload]
    }
    for field_name, body in cases.items():
        answer = post(body)
        assert answer.status_code == 400, field_name
        assert answer.json()["errors"][0]["field"].startswith(field_name)
    assert len(fake.messages()) == 1


def test_provider_message_reads_sendgrid_errors() -> None:
    """Each error's field and message, or the raw text."""
    body = b'{"errors":[{"message":"bad","field":"from"},{"message":"worse","field":null}]}'
    assert provider_message(body) == "from: bad; worse"
    assert provider_message(b"<html>oops</html>") == "<html>oops</html>"


def test_the_outbox_writes_one_eml_per_key(tmp_path: Path) -> None:
    """A multipart/alternative file, text then HTML; the same key overwrites, never adds."""
    outbox = OutboxMailer(tmp_path, "noreply@example.com", "Ad Marketplace")
    outbox.send(MESSAGE)
    outbox.send(MESSAGE)
    (path,) = tmp_path.glob("*.eml")
    assert path.name == "n-1.eml"
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Заявка принята" and parsed["To"].addresses[0].username == "anna"
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]


def test_no_key_means_the_outbox(tmp_path: Path) -> None:
    """Local development needs no SendGrid account."""
    base = {"_env_file": None, "APP_ENV": "test", "OUTBOX_DIR": tmp_path}
    assert isinstance(build_mailer(Settings(**base)), OutboxMailer)
    assert isinstance(build_mailer(Settings(**base, SENDGRID_API_KEY="SG.x")), SendGridMailer)
