"""Settings fail fast, naming the bad variable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Each test reads the environment anew."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://localhost/x"),
        ("REDIS_PORT", "not-a-port"),
        ("ASYNC_MODE", "tornado"),
        ("JWT_SECRET_KEY", "short"),
        ("PLATFORM_FEE_PERCENT", "150"),
        ("ENABLE_BACKGROUND_TASKS", "perhaps"),
        ("RATE_LIMIT_LOGIN_ACCOUNT", "five a minute"),
        ("SOCKETS_PER_USER", "0"),
        ("MAX_REQUEST_BYTES", "12"),
    ],
)
def test_bad_setting_stops_the_process_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    """A bad value exits with status 2 and a message that names the variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exc:
        get_settings()
    assert exc.value.code == 2
    assert name in capsys.readouterr().err


def test_production_refuses_the_development_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """APP_ENV=production without a JWT secret of its own does not start."""
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    with pytest.raises(SystemExit):
        get_settings()
    assert "JWT_SECRET_KEY" in capsys.readouterr().err


def test_redis_url_is_built_from_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without REDIS_URL, host, port, db and password make the URL."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = Settings(
        REDIS_HOST="cache", REDIS_PORT=6380, REDIS_DB=2, REDIS_PASSWORD="p@ss", _env_file=None
    )
    assert settings.redis_url == "redis://:p%40ss@cache:6380/2"


def test_cors_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    """WEBSOCKET_CORS_ORIGINS takes a comma-separated list."""
    monkeypatch.setenv("WEBSOCKET_CORS_ORIGINS", "https://a.example, https://b.example")
    assert get_settings().WEBSOCKET_CORS_ORIGINS == ["https://a.example", "https://b.example"]


def test_cors_origins_default_to_the_front_ends_origin() -> None:
    """CORS_ORIGINS unset: FRONTEND_URL's scheme, host and port; set: the list as written."""
    front = Settings(_env_file=None, FRONTEND_URL="https://app.example.com:8443/inbox/")
    assert front.cors_origins == ["https://app.example.com:8443"]
    listed = Settings(_env_file=None, CORS_ORIGINS="https://a.example, https://b.example")
    assert listed.cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg2"])
def test_host_database_urls_use_the_installed_driver(scheme: str) -> None:
    """postgres:// and postgresql:// as hosts give them run on psycopg2, which is installed."""
    settings = Settings(_env_file=None, DATABASE_URL=f"{scheme}://u:p@db.example:5432/app")
    assert settings.DATABASE_URL == "postgresql+psycopg2://u:p@db.example:5432/app"


def test_tls_redis_verification_can_be_relaxed() -> None:
    """REDIS_TLS_VERIFY=false adds ssl_cert_reqs=none to a rediss:// URL; the URL's own wins."""
    url = "rediss://:secret@redis.example:6380/0"
    assert Settings(_env_file=None, REDIS_URL=url).redis_url == url
    relaxed = Settings(_env_file=None, REDIS_URL=url, REDIS_TLS_VERIFY=False).redis_url
    assert relaxed == url + "?ssl_cert_reqs=none"
    own = url + "?ssl_cert_reqs=required"
    assert Settings(_env_file=None, REDIS_URL=own, REDIS_TLS_VERIFY=False).redis_url == own
    plain = "redis://127.0.0.1:6379/0"
    assert Settings(_env_file=None, REDIS_URL=plain, REDIS_TLS_VERIFY=False).redis_url == plain
