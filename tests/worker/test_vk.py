"""The VK adapter against the VK API stand-in: sends, dedupe by random_id, errors classified."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from tests.support.fake_vk import FakeVk, message_new_event
from tests.support.net import free_port
from worker.provider_errors import ProviderError
from worker.vk import VkCommunity, classify_error, random_id_for

TOKEN = "vk1.a.unit-test-community-secret"
GROUP_ID = 229123456
PEER = "1234567"
VERSION = "5.199"


@pytest.fixture
def fake() -> Iterator[FakeVk]:
    """A VK API stand-in on a loopback port."""
    with FakeVk(TOKEN, GROUP_ID) as server:
        yield server


def community(fake: FakeVk, token: str = TOKEN, timeout: float = 5.0) -> VkCommunity:
    """The adapter pointed at the stand-in."""
    return VkCommunity(token, fake.url, VERSION, timeout)


def send_error(client: VkCommunity, text: str = "Hello", random_id: int = 1) -> ProviderError:
    """The ProviderError a send raises."""
    with pytest.raises(ProviderError) as caught:
        client.send_message(PEER, text, random_id)
    return caught.value


def assert_no_token(error: ProviderError, token: str = TOKEN) -> None:
    """The token appears nowhere in the error."""
    for text in (str(error), error.detail, repr(error), repr(error.args)):
        assert token not in text


# --- sending -------------------------------------------------------------------------


def test_send_message(fake: FakeVk) -> None:
    """messages.send as a form with the version, no link parsing; VK's id comes back."""
    message_id = community(fake).send_message(PEER, "Заявка принята: https://e.com/n/1", 77)
    (sent,) = fake.messages(PEER)
    assert message_id == str(sent.message_id)
    assert (sent.peer_id, sent.random_id, sent.message) == (
        PEER,
        77,
        "Заявка принята: https://e.com/n/1",
    )
    assert sent.params["v"] == VERSION
    assert sent.params["dont_parse_links"] == "1"
    assert sent.params["access_token"] == TOKEN


def test_a_resend_with_the_same_random_id_is_a_no_op(fake: FakeVk) -> None:
    """After a crash the same delivery is sent again: VK answers the first id, sends nothing."""
    client = community(fake)
    random_id = random_id_for("delivery-1")
    first = client.send_message(PEER, "Hello", random_id)
    again = client.send_message(PEER, "Hello", random_id)
    other = client.send_message(PEER, "Hello", random_id_for("delivery-2"))
    assert first == again != other
    assert len(fake.messages()) == 2
    assert fake.duplicates_suppressed == 1


def test_check_returns_the_community(fake: FakeVk) -> None:
    """groups.getById with a community token names the community, in both answer shapes."""
    assert community(fake).check()["id"] == GROUP_ID
    old = VkCommunity(TOKEN, fake.url, "5.131", 5.0)
    assert old.check()["id"] == GROUP_ID


# --- classification --------------------------------------------------------------------


@pytest.mark.parametrize(("code", "retry_after"), [(6, 1.0), (9, 5.0), (10, None), (1, None)])
def test_transient_errors_are_retry(fake: FakeVk, code: int, retry_after: float | None) -> None:
    """Too many requests, flood control, internal errors: later, with a wait where it helps."""
    fake.script_errors(code)
    error = send_error(community(fake))
    assert (error.kind, error.retry_after) == ("retry", retry_after)
    assert f"VK error {code}" in error.detail


@pytest.mark.parametrize("code", [901, 902])
def test_no_permission_is_unlink(fake: FakeVk, code: int) -> None:
    """The user forbade messages from the community: only they can undo it."""
    fake.script_errors(code)
    assert send_error(community(fake)).kind == "unlink"


def test_forbidden_peer_is_unlink(fake: FakeVk) -> None:
    """A peer that never allowed messages gets 901 every time."""
    fake.forbid(PEER, 901)
    assert send_error(community(fake)).kind == "unlink"
    assert fake.messages() == []


@pytest.mark.parametrize("code", [5, 15, 27, 28])
def test_token_refusals_are_auth(fake: FakeVk, code: int) -> None:
    """The community token is refused: an operator problem, the deliveries stay pending."""
    fake.script_errors(code)
    assert send_error(community(fake)).kind == "auth"


def test_wrong_token_is_auth_and_redacted(fake: FakeVk) -> None:
    """VK's answer to a bad token echoes request parameters; the token never shows."""
    wrong = "vk1.a.another-secret-token"
    error = send_error(community(fake, token=wrong))
    assert error.kind == "auth"
    assert "authorization failed" in error.detail
    assert_no_token(error, wrong)


@pytest.mark.parametrize("code", [100, 914, 7, 999])
def test_other_errors_are_failed(fake: FakeVk, code: int) -> None:
    """Bad parameters, a message too long, anything unknown: this message never goes out."""
    fake.script_errors(code)
    assert send_error(community(fake)).kind == "failed"


def test_stand_in_checks_the_message(fake: FakeVk) -> None:
    """Empty and too long messages get VK's own errors (100, 914)."""
    client = community(fake)
    assert "error 100" in send_error(client, text=" ").detail
    assert "error 914" in send_error(client, text="x" * 4097).detail


def test_scripted_errors_come_in_order(fake: FakeVk) -> None:
    """script_errors answers the next calls in order, then sends again."""
    fake.script_errors(6, 9, 10)
    client = community(fake)
    kinds = [send_error(client).retry_after for _ in range(3)]
    assert kinds == [1.0, 5.0, None]
    assert client.send_message(PEER, "finally", 5)
    assert len(fake.messages()) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retry(fake: FakeVk, status: int) -> None:
    """HTTP 5xx from VK's front may pass later."""
    fake.fail_5xx(1, status=status)
    error = send_error(community(fake))
    assert (error.kind, error.retry_after) == ("retry", None)
    assert str(status) in error.detail


def test_timeout_is_retry(fake: FakeVk) -> None:
    """A VK slower than the timeout is a retry (and random_id makes the resend safe)."""
    fake.latency = 1.0
    error = send_error(community(fake, timeout=0.2))
    assert error.kind == "retry"
    assert_no_token(error)


def test_connection_refused_is_retry() -> None:
    """Nothing listening is a retry."""
    client = VkCommunity(TOKEN, f"http://127.0.0.1:{free_port()}", VERSION, 1.0)
    error = send_error(client)
    assert error.kind == "retry"
    assert "unreachable" in error.detail
    assert_no_token(error)


def test_classify_error_without_a_body() -> None:
    """A malformed error object is a failure, not a crash."""
    assert classify_error(None).kind == "failed"
    assert classify_error({"error_code": 6}).retry_after == 1.0


def test_repr_hides_the_token(fake: FakeVk) -> None:
    """A community in a log line shows its API base and version only."""
    assert TOKEN not in repr(community(fake))


# --- random_id_for -------------------------------------------------------------------------


def test_random_id_is_stable_positive_int32() -> None:
    """The same delivery always gets the same id, a positive int32."""
    value = random_id_for("0b6f7c1e-1f7e-4d7e-9f55-0c9b0e6c1a11")
    assert value == random_id_for("0b6f7c1e-1f7e-4d7e-9f55-0c9b0e6c1a11")
    assert 0 < value < 2**31


def test_random_ids_are_distinct() -> None:
    """10,000 deliveries collide at most rarely (about 0.02 expected among 2**31 values)."""
    ids = [random_id_for(str(uuid.uuid4())) for _ in range(10_000)]
    assert all(0 < v < 2**31 for v in ids)
    assert len(ids) - len(set(ids)) < 3


# --- the stand-in's own checks ------------------------------------------------------------


def test_stand_in_counts_rate_limit_violations(fake: FakeVk) -> None:
    """More than 20 calls within a second is a violation."""
    client = community(fake)
    for n in range(21):
        client.send_message(str(100 + n), "burst", n + 1)
    assert fake.max_per_second() == 21
    assert len(fake.violations()) == 1


def test_stand_in_answers_like_vk() -> None:
    """Errors come with HTTP 200; a token in the Authorization header works too."""
    with FakeVk(TOKEN, GROUP_ID) as server:
        bad = requests.post(f"{server.url}/method/groups.getById", data={"v": VERSION}, timeout=5)
        assert bad.status_code == 200
        assert bad.json()["error"]["error_code"] == 5
        good = requests.post(
            f"{server.url}/method/groups.getById",
            data={"v": VERSION},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert good.json()["response"]["groups"][0]["id"] == GROUP_ID
    event = message_new_event(GROUP_ID, 42, "ABC123", secret="s")
    assert event["object"]["message"]["text"] == "ABC123"
    assert (event["group_id"], event["secret"]) == (GROUP_ID, "s")
