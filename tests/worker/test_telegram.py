"""The Telegram adapter against the Bot API stand-in: sends, errors classified, token redacted."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
import requests

from tests.support.fake_telegram import FakeTelegram, message_update, visible_text
from tests.support.net import free_port
from worker.provider_errors import ProviderError
from worker.telegram import TelegramBot, classify

TOKEN = "700100200:AAH-unit-test-secret-token"
CHAT = "424242"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    """A Bot API stand-in on a loopback port."""
    with FakeTelegram(TOKEN, username="admarket_test_bot") as server:
        yield server


def bot(fake: FakeTelegram, token: str = TOKEN, timeout: float = 5.0) -> TelegramBot:
    """The adapter pointed at the stand-in."""
    return TelegramBot(token, fake.url, timeout)


def send_error(client: TelegramBot, chat_id: str = CHAT, text: str = "Hello") -> ProviderError:
    """The ProviderError a send raises."""
    with pytest.raises(ProviderError) as caught:
        client.send_message(chat_id, text)
    return caught.value


def assert_no_token(error: ProviderError, token: str = TOKEN) -> None:
    """Neither the token nor its secret half appears anywhere in the error."""
    secret = token.split(":", 1)[1]
    for text in (str(error), error.detail, repr(error), repr(error.args)):
        assert secret not in text


# --- sending -------------------------------------------------------------------------


def test_send_message_with_a_button(fake: FakeTelegram) -> None:
    """HTML parse mode, no link previews, one URL button; the answer's message_id comes back."""
    text = f"<b>Заявка принята</b>\n{html.escape('Tom & Jerry <3')}"
    message_id = bot(fake).send_message(
        CHAT, text, button_text="Открыть", button_url="https://example.com/n/1"
    )
    (sent,) = fake.messages(CHAT)
    assert message_id == str(sent.message_id) == "1"
    assert sent.text == text
    assert sent.parse_mode == "HTML"
    assert sent.params["disable_web_page_preview"] is True
    assert sent.buttons == [{"text": "Открыть", "url": "https://example.com/n/1"}]


def test_send_message_without_a_button(fake: FakeTelegram) -> None:
    """No button, no reply_markup; message ids count up per chat."""
    client = bot(fake)
    assert client.send_message(CHAT, "one") == "1"
    assert client.send_message("-100500", "two") == "1"
    assert [m.reply_markup for m in fake.messages()] == [None, None]


def test_a_button_needs_both_text_and_url(fake: FakeTelegram) -> None:
    """Half a button is a programming error, caught before any call."""
    with pytest.raises(ValueError):
        bot(fake).send_message(CHAT, "x", button_text="Open")
    assert fake.requests == []


def test_get_me_and_set_webhook(fake: FakeTelegram) -> None:
    """getMe names the bot; setWebhook registers the URL, the secret and message updates only."""
    client = bot(fake)
    assert client.get_me()["username"] == "admarket_test_bot"
    client.set_webhook("https://app.example.com/api/integrations/telegram/webhook", "s3cr3t_-x")
    assert fake.webhook == {
        "url": "https://app.example.com/api/integrations/telegram/webhook",
        "secret_token": "s3cr3t_-x",
        "allowed_updates": ["message"],
    }


def test_set_webhook_refused_is_failed(fake: FakeTelegram) -> None:
    """Telegram wants an HTTPS webhook; the refusal is a plain failure."""
    with pytest.raises(ProviderError) as caught:
        bot(fake).set_webhook("http://localhost/hook", "secret")
    assert caught.value.kind == "failed"
    assert "HTTPS URL" in caught.value.detail


# --- classification --------------------------------------------------------------------


def test_429_is_retry_with_retry_after(fake: FakeTelegram) -> None:
    """The wait Telegram asks for is carried to the engine; the next send goes through."""
    fake.script_retry_after(1, seconds=7)
    client = bot(fake)
    error = send_error(client)
    assert (error.kind, error.retry_after) == ("retry", 7.0)
    assert "Too Many Requests" in error.detail
    assert client.send_message(CHAT, "again") == "1"


def test_blocked_by_the_user_is_unlink(fake: FakeTelegram) -> None:
    """403 "bot was blocked by the user": the chat is gone until the user relinks."""
    fake.block(CHAT)
    error = send_error(bot(fake))
    assert error.kind == "unlink"
    assert "blocked" in error.detail


def test_deactivated_user_is_unlink(fake: FakeTelegram) -> None:
    """Any 403 means the bot may no longer write there."""
    fake.refuse(CHAT, 403, "Forbidden: user is deactivated")
    assert send_error(bot(fake)).kind == "unlink"


@pytest.mark.parametrize(
    "description",
    [
        "Bad Request: chat not found",
        "Bad Request: PEER_ID_INVALID",
        "Bad Request: group chat was upgraded to a supergroup chat",
    ],
)
def test_gone_chats_are_unlink(fake: FakeTelegram, description: str) -> None:
    """400s that name a chat that no longer exists (for us) unlink it."""
    fake.refuse(CHAT, 400, description)
    assert send_error(bot(fake)).kind == "unlink"


def test_lost_chat_is_unlink(fake: FakeTelegram) -> None:
    """The stand-in's lose() is Telegram's "chat not found"."""
    fake.lose(CHAT)
    error = send_error(bot(fake))
    assert error.kind == "unlink"
    assert "chat not found" in error.detail


def test_other_400_is_failed(fake: FakeTelegram) -> None:
    """Text Telegram cannot parse fails that message only, and says why."""
    error = send_error(bot(fake), text="<script>alert(1)</script>")
    assert error.kind == "failed"
    assert "can't parse entities" in error.detail
    assert fake.messages() == []


def test_wrong_token_is_auth_and_redacted(fake: FakeTelegram) -> None:
    """401 means the token is refused: an operator problem, and the token never shows."""
    wrong = "700100200:AAH-some-other-secret"
    error = send_error(bot(fake, token=wrong))
    assert error.kind == "auth"
    assert "Unauthorized" in error.detail
    assert_no_token(error, wrong)


def test_404_is_auth() -> None:
    """A malformed token gets 404 from the Bot API."""
    assert (
        classify(404, {"ok": False, "error_code": 404, "description": "Not Found"}).kind == "auth"
    )


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_are_retry(fake: FakeTelegram, status: int) -> None:
    """5xx, JSON or a proxy's HTML page, may pass later."""
    fake.fail_5xx(1, status=status)
    error = send_error(bot(fake))
    assert error.kind == "retry"
    assert error.retry_after is None
    assert str(status) in error.detail


def test_2xx_without_ok_is_retry(fake: FakeTelegram) -> None:
    """An answer that is not the Bot API's cannot be trusted either way: try again."""
    fake.script_reply(200, {"ok": False, "description": "strange"})
    assert send_error(bot(fake)).kind == "retry"
    fake.script_reply(200, "<html>captive portal</html>")
    assert send_error(bot(fake)).kind == "retry"


def test_timeout_is_retry_and_redacted(fake: FakeTelegram) -> None:
    """A Telegram slower than the timeout is a retry; urllib3's message loses the token."""
    fake.latency = 1.0
    error = send_error(bot(fake, timeout=0.2))
    assert error.kind == "retry"
    assert "unreachable" in error.detail
    assert_no_token(error)


def test_connection_refused_is_retry_and_redacted() -> None:
    """Nothing listening is a retry; the URL in urllib3's message has the token redacted."""
    client = TelegramBot(TOKEN, f"http://127.0.0.1:{free_port()}", 1.0)
    error = send_error(client)
    assert error.kind == "retry"
    assert "/bot<redacted>/sendMessage" in error.detail
    assert_no_token(error)


def test_repr_hides_the_token(fake: FakeTelegram) -> None:
    """A bot in a log line or a traceback's locals shows its API base only."""
    assert TOKEN.split(":")[1] not in repr(bot(fake))


def test_errors_survive_pickling() -> None:
    """Celery may carry the error between processes."""
    import pickle

    error = ProviderError("retry", "Telegram 429", retry_after=3.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.kind, copy.detail, copy.retry_after) == ("retry", "Telegram 429", 3.0)


# --- the stand-in's own checks ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "plain text",
        html.escape("a < b > c & \"d\" 'e'"),
        "<b>bold</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u> <ins>i</ins>",
        "<s>s</s> <strike>s</strike> <del>d</del> <tg-spoiler>x</tg-spoiler>",
        '<span class="tg-spoiler">x</span> <a href="https://e.com/?a=1&amp;b=2">link</a>',
        '<pre><code class="language-python">x = 1 &lt; 2</code></pre> <code>c</code>',
        "<blockquote>q</blockquote> <blockquote expandable>q</blockquote> &#128512; &#x1F600;",
        "<b>nested <i>tags</i></b>",
    ],
)
def test_stand_in_accepts_telegram_html(text: str) -> None:
    """Everything in Telegram's HTML subset, escaped as html.escape does, parses."""
    assert visible_text(text, "HTML")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<script>alert(1)</script>", 'Unsupported start tag "script"'),
        ("<br>", 'Unsupported start tag "br"'),
        ("<p>x</p>", 'Unsupported start tag "p"'),
        ("<span>x</span>", "tg-spoiler"),
        ("<a>x</a>", "href"),
        ('<b class="x">x</b>', "no attributes"),
        ("<b>open", "Can't find end tag"),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("a < b", 'Unescaped "<"'),
        ("a > b", 'Unescaped ">"'),
        ("Tom & Jerry", 'Unescaped "&"'),
        ("&nbsp;", "Unsupported HTML entity"),
        ("&amp x", "semicolon"),
        ("<!-- c -->", "Comments"),
        ("<b/>", "self-closing"),
    ],
)
def test_stand_in_rejects_what_telegram_rejects(fake: FakeTelegram, text: str, reason: str) -> None:
    """Tags outside the subset, bad nesting, unescaped text: 400 can't parse entities."""
    error = send_error(bot(fake), text=text)
    assert error.kind == "failed"
    assert "can't parse entities" in error.detail
    assert reason in error.detail


def test_stand_in_checks_length_and_emptiness(fake: FakeTelegram) -> None:
    """1 to 4096 characters after entity parsing; tags do not count."""
    client = bot(fake)
    assert "message text is empty" in send_error(client, text="").detail
    assert "message text is empty" in send_error(client, text="<b> </b>").detail
    assert "too long" in send_error(client, text="x" * 4097).detail
    client.send_message(CHAT, "<b>" + "x" * 4096 + "</b>")
    assert len(fake.messages()) == 1


def test_stand_in_checks_the_button_url(fake: FakeTelegram) -> None:
    """A button URL must be http(s) or tg://."""
    with pytest.raises(ProviderError) as caught:
        bot(fake).send_message(CHAT, "x", button_text="Open", button_url="javascript:alert(1)")
    assert caught.value.kind == "failed"
    assert "button URL" in caught.value.detail


def test_stand_in_counts_rate_limit_violations(fake: FakeTelegram) -> None:
    """Two messages to one chat within a second, 31 messages within a second: both counted."""
    client = bot(fake)
    client.send_message(CHAT, "first")
    client.send_message(CHAT, "second")
    assert len(fake.violations()) == 1
    for n in range(30):
        client.send_message(str(1000 + n), "burst")
    assert fake.max_per_second() == 32
    assert any(v.startswith("bot:") for v in fake.violations())


def test_stand_in_serves_get_and_a_webhook_update() -> None:
    """getMe also answers GET; message_update builds what Telegram posts for /start."""
    with FakeTelegram(TOKEN) as server:
        answer = requests.get(f"{server.url}/bot{TOKEN}/getMe", timeout=5).json()
        assert answer["ok"] and answer["result"]["is_bot"]
    update = message_update(42, "/start abc123")
    assert update["message"]["chat"] == {"id": 42, "first_name": "Anna", "type": "private"}
    assert update["message"]["entities"][0] == {"offset": 0, "length": 6, "type": "bot_command"}
