"""Typed settings from the environment and `.env`, failing fast with the bad variable's name."""

from __future__ import annotations

import sys
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"


class Settings(BaseSettings):
    """Every setting of every process, with the embedded defaults of local development."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    APP_ENV: Literal["development", "production", "test"] = "development"
    DATABASE_URL: str = f"sqlite:///{ROOT / 'var' / 'app.db'}"
    REDIS_URL: str | None = None
    REDIS_HOST: str = "127.0.0.1"
    REDIS_PORT: int = Field(default=6379, ge=1, le=65535)
    REDIS_DB: int = Field(default=0, ge=0)
    REDIS_PASSWORD: str | None = None
    # false accepts a rediss:// server's self-signed certificate (Heroku's managed Redis).
    REDIS_TLS_VERIFY: bool = True

    JWT_SECRET_KEY: str = DEV_JWT_SECRET
    JWT_ALGORITHM: Literal["HS256", "HS384", "HS512"] = "HS256"
    JWT_ACCESS_TTL_SECONDS: int = Field(default=900, ge=10)
    JWT_REFRESH_TTL_SECONDS: int = Field(default=30 * 24 * 3600, ge=60)
    BCRYPT_ROUNDS: int = Field(default=12, ge=4, le=16)
    # How long a just-retired refresh token is still honoured (two tabs refreshing at once);
    # after that, presenting it ends the login as a stolen token's reuse.
    REFRESH_REUSE_GRACE_SECONDS: float = Field(default=10.0, ge=0, le=300)
    # How long a password-reset link works (it also stops working once used).
    PASSWORD_RESET_TTL_SECONDS: int = Field(default=1800, ge=60, le=86400)

    WEBSOCKET_CORS_ORIGINS: Annotated[list[str], NoDecode] = ["*"]
    ASYNC_MODE: Literal["eventlet", "gevent", "threading"] = "eventlet"

    SENDGRID_API_KEY: str | None = None
    SENDGRID_FROM_EMAIL: str = "noreply@example.com"
    SENDGRID_FROM_NAME: str = "Ad Marketplace"
    SENDGRID_API_HOST: str = "https://api.sendgrid.com"
    # The Event Webhook's verification key (base64 DER, as SendGrid shows it); unset = endpoint off.
    SENDGRID_WEBHOOK_PUBLIC_KEY: str | None = None
    SENDGRID_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=60)
    # Sends kept in flight by one worker process: a SendGrid call mostly waits on the network.
    EMAIL_CONCURRENCY: int = Field(default=64, ge=1, le=512)
    # Tries per delivery, any channel, before a transient error (5xx, timeout) is recorded as
    # failed; a provider's own wait (429) is not a try. EMAIL_MAX_ATTEMPTS is its former name.
    DELIVERY_MAX_ATTEMPTS: int = Field(
        default=8,
        ge=1,
        le=50,
        validation_alias=AliasChoices("DELIVERY_MAX_ATTEMPTS", "EMAIL_MAX_ATTEMPTS"),
    )
    OUTBOX_DIR: Path = ROOT / "var" / "outbox"
    FRONTEND_URL: str = "http://localhost:5000"
    # Signs the one-click unsubscribe links in emails (they never expire); changing it rotates
    # the key, and every link already sent stops working. Unset: derived from JWT_SECRET_KEY.
    UNSUBSCRIBE_SECRET_KEY: str | None = Field(default=None, min_length=32)
    # An address that also accepts unsubscribe requests by email (List-Unsubscribe mailto:).
    UNSUBSCRIBE_MAILTO: str | None = None

    PLATFORM_FEE_PERCENT: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    ENABLE_BACKGROUND_TASKS: bool = True
    SWEEP_INTERVAL_SECONDS: float = Field(default=10.0, gt=0)
    # A pending delivery younger than this is left to its own task before the sweeper re-sends it.
    SWEEP_GRACE_SECONDS: float = Field(default=5.0, ge=0)
    DELIVERY_LEASE_SECONDS: int = Field(default=60, ge=1)
    CATCHUP_LIMIT: int = Field(default=1000, ge=1)
    NOTIFICATION_RETENTION_DAYS: int = Field(default=30, ge=1)
    # Scheduled jobs (core/services/jobs/). JSON {"job name": seconds} replaces a job's
    # crontab with an epoch-aligned interval: the compressed schedule of the tests.
    JOB_INTERVALS: dict[str, float] = Field(default_factory=dict)
    # Longer than a maintenance task's hard time limit: an unexpired lease's holder is alive.
    JOB_LEASE_SECONDS: int = Field(default=2100, ge=1)
    # How often beat looks for periods whose run was missed (downtime, a lost message).
    JOB_CATCH_UP_SECONDS: float = Field(default=900.0, gt=0)
    CLEANUP_BATCH_SIZE: int = Field(default=5000, ge=1, le=30000)
    WITHDRAWAL_REMINDER_AFTER_HOURS: float = Field(default=24.0, ge=0)
    FLOWER_BASIC_AUTH: str | None = None
    # Lets scripts/flower.sh start Flower without a password, outside production only.
    ALLOW_OPEN_FLOWER: bool = False
    # auto: JSON lines in production, readable lines elsewhere (core/logs.py).
    LOG_FORMAT: Literal["auto", "json", "text"] = "auto"
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # How long /health?deep=1 waits for a worker to answer the canary task.
    HEALTH_CANARY_TIMEOUT_SECONDS: float = Field(default=3.0, gt=0, le=30)
    # --- Overload: API calls one web process serves at once, how many more may wait, and for
    # how long (web/admission.py; docs/BENCHMARKS.md has the runs that chose the defaults) ---
    MAX_CONCURRENT_REQUESTS: int = Field(default=8, ge=1, le=1000)
    MAX_WAITING_REQUESTS: int = Field(default=32, ge=0, le=100_000)
    MAX_QUEUE_WAIT_SECONDS: float = Field(default=0.1, ge=0, le=60)
    # --- The web process's garbage collector (web/gc_tuning.py): a full pass over thousands of
    # sockets stalls them all for 100-300 ms ---
    # Young (generations 0 and 1) passes on a clock, every this many seconds; 0: only CPython's
    # allocation counts start them (then set the thresholds' third number back near 10).
    WEB_GC_YOUNG_PASS_SECONDS: float = Field(default=0.25, ge=0, le=10)
    # gc.set_threshold: net allocations per young pass, young passes per middle pass, middle
    # passes (the clock's included) per full pass. CPython's are 700,10,10; 2,400 of the clock's
    # 4 a second make a full pass every 10 minutes.
    WEB_GC_THRESHOLDS: Annotated[tuple[int, int, int], NoDecode] = (700, 10, 2400)
    # --- The edge: rate limits and caps against hostile or careless clients ---
    # Off only for load tests: turns off every rate limit, API and sockets alike; the hard caps
    # (sockets per user, frame size, unsent bytes, body size) stay.
    RATE_LIMIT_ENABLED: bool = True
    # Limits in the `limits` notation ("10/minute", several joined by ";"), shared in Redis.
    # Login: failed attempts per account, and all attempts per client address.
    RATE_LIMIT_LOGIN_ACCOUNT: str = "5/minute;20/hour"
    RATE_LIMIT_LOGIN_ADDRESS: str = "30/minute;300/hour"
    RATE_LIMIT_REGISTER: str = "10/minute;50/hour"
    RATE_LIMIT_REFRESH: str = "30/minute"
    RATE_LIMIT_PASSWORD_RESET: str = "5/minute;20/hour"
    # POSTs to one unsubscribe link (per link, not per address: providers POST from few hosts).
    RATE_LIMIT_UNSUBSCRIBE: str = "10/minute"
    # Every POST/PATCH/PUT/DELETE under /api by one signed-in user (by address when anonymous).
    RATE_LIMIT_WRITES: str = "120/minute"
    # Socket.IO handshakes per client address.
    RATE_LIMIT_SOCKET_CONNECT: str = "60/minute"
    # Calls to the Telegram and VK webhooks per client address (the providers post from few).
    RATE_LIMIT_MESSENGER_WEBHOOKS: str = "600/minute"
    # Events one socket may send: a sustained rate and a burst; past it the socket is cut off.
    SOCKET_EVENTS_PER_SECOND: float = Field(default=10.0, gt=0)
    SOCKET_EVENT_BURST: int = Field(default=50, ge=1)
    SOCKETS_PER_USER: int = Field(default=20, ge=1)
    SOCKET_MAX_MESSAGE_BYTES: int = Field(default=64 * 1024, ge=1024)
    SOCKET_MAX_QUEUE_BYTES: int = Field(default=1024 * 1024, ge=16 * 1024)
    MAX_REQUEST_BYTES: int = Field(default=1024 * 1024, ge=1024)
    # Proxies in front of the web tier whose X-Forwarded-For is trusted (Heroku's router: 1).
    TRUSTED_PROXY_COUNT: int = Field(default=0, ge=0, le=10)
    # Origins that may call the REST API from a browser; default: FRONTEND_URL's origin.
    CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Lets monitoring run /health?deep=1 without an admin token (header X-Health-Token).
    HEALTH_TOKEN: str | None = None
    # --- Telegram and VK (SPEC.md); without a token their messages go to the outbox ---
    TELEGRAM_BOT_TOKEN: str | None = None
    # The bot's @username without the @: the t.me/<bot>?start=<code> links point at it.
    TELEGRAM_BOT_USERNAME: str = Field(
        default="admarket_bot", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$"
    )
    # Telegram sends it in X-Telegram-Bot-Api-Secret-Token; unset = the webhook refuses everything.
    TELEGRAM_WEBHOOK_SECRET: str | None = Field(
        default=None, min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$"
    )
    TELEGRAM_API_BASE: str = "https://api.telegram.org"
    # The community's access token (messages permission); VK_SERVICE_KEY is its former name.
    VK_COMMUNITY_TOKEN: str | None = Field(
        default=None, validation_alias=AliasChoices("VK_COMMUNITY_TOKEN", "VK_SERVICE_KEY")
    )
    # The community's numeric id: its vk.me link, and the group_id the Callback API must carry.
    VK_GROUP_ID: int | None = Field(default=None, ge=1)
    # The Callback API's "secret key"; unset = every event but the confirmation is refused.
    VK_CALLBACK_SECRET: str | None = None
    # The string VK asks the server to answer its `confirmation` event with.
    VK_CONFIRMATION_CODE: str | None = None
    VK_API_BASE: str = "https://api.vk.com"
    VK_API_VERSION: str = "5.199"
    # How long a link code (Telegram's /start payload, the code typed to VK) works.
    LINK_CODE_TTL_SECONDS: int = Field(default=600, ge=1, le=86400)

    @field_validator("WEBSOCKET_CORS_ORIGINS", "CORS_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept a comma-separated string, as operators write it in the environment."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("WEB_GC_THRESHOLDS", mode="before")
    @classmethod
    def _split_thresholds(cls, value: object) -> object:
        """Accept "700,10,100", as operators write it in the environment."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(","))
        return value

    @field_validator("WEB_GC_THRESHOLDS")
    @classmethod
    def _collector_stays_on(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        """Refuse 0 (it turns automatic collection off: every reference cycle would leak)."""
        if min(value) < 1:
            raise ValueError("each threshold must be at least 1, e.g. 700,10,100")
        return value

    @field_validator(
        "TELEGRAM_WEBHOOK_SECRET",
        "VK_COMMUNITY_TOKEN",
        "VK_GROUP_ID",
        "VK_CALLBACK_SECRET",
        "VK_CONFIRMATION_CODE",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """Read `NAME=` with nothing after it, as .env files leave it, as not set."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "RATE_LIMIT_LOGIN_ACCOUNT",
        "RATE_LIMIT_LOGIN_ADDRESS",
        "RATE_LIMIT_REGISTER",
        "RATE_LIMIT_REFRESH",
        "RATE_LIMIT_PASSWORD_RESET",
        "RATE_LIMIT_UNSUBSCRIBE",
        "RATE_LIMIT_WRITES",
        "RATE_LIMIT_SOCKET_CONNECT",
        "RATE_LIMIT_MESSENGER_WEBHOOKS",
    )
    @classmethod
    def _parsable_limits(cls, value: str) -> str:
        """Refuse a limit the `limits` library cannot read, instead of failing every request."""
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a limit like '10/minute' or '5/minute;50/hour'"
            ) from None
        return value

    @field_validator("SENDGRID_WEBHOOK_PUBLIC_KEY")
    @classmethod
    def _loadable_key(cls, value: str | None) -> str | None:
        """Refuse a webhook key that is not an EC public key, instead of failing every event."""
        if not value:
            return None
        from core.services.webhook_signature import load_public_key

        load_public_key(value)
        return value

    @field_validator("JOB_INTERVALS")
    @classmethod
    def _known_jobs(cls, value: dict[str, float]) -> dict[str, float]:
        """Refuse intervals for jobs that do not exist, or that are not positive."""
        from core.services.jobs.cadence import DEFAULT_CADENCES

        for name, seconds in value.items():
            if name not in DEFAULT_CADENCES:
                raise ValueError(f"unknown job {name!r}; known: {', '.join(DEFAULT_CADENCES)}")
            if seconds <= 0:
                raise ValueError(f"{name}: the interval must be positive")
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _known_database(cls, value: str) -> str:
        """Refuse URLs of databases the platform is not tested on."""
        # Hosts hand out postgres:// or postgresql://, for which SQLAlchemy 2.1 picks psycopg 3;
        # the platform installs psycopg2, which psycogreen makes cooperative under eventlet and
        # gevent alike (docs/ARCHITECTURE.md, "URLs as hosts give them").
        for plain in ("postgres://", "postgresql://"):
            if value.startswith(plain):
                value = "postgresql+psycopg2://" + value[len(plain) :]
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        """Refuse the development secret in production, where it would let anyone forge tokens."""
        if self.APP_ENV == "production" and self.JWT_SECRET_KEY == DEV_JWT_SECRET:
            raise ValueError("JWT_SECRET_KEY must be set in production")
        if len(self.JWT_SECRET_KEY.encode()) < 32:
            # RFC 7518 section 3.2: an HMAC key at least as long as the hash output.
            raise ValueError("JWT_SECRET_KEY must be at least 32 bytes")
        return self

    @property
    def redis_url(self) -> str:
        """The Redis URL, built from REDIS_HOST/PORT/DB/PASSWORD when REDIS_URL is not set."""
        if self.REDIS_URL:
            url = self.REDIS_URL
        else:
            auth = f":{quote(self.REDIS_PASSWORD)}@" if self.REDIS_PASSWORD else ""
            url = f"redis://{auth}{self.REDIS_HOST}:{self.REDIS_PORT}/{self.REDIS_DB}"
        # Every Redis client of every process (redis-py, Celery's kombu, python-socketio,
        # Flask-Limiter's storage) is built from this URL and reads ssl_cert_reqs from its query.
        if (
            url.startswith("rediss://")
            and not self.REDIS_TLS_VERIFY
            and "ssl_cert_reqs=" not in url
        ):
            url += ("&" if "?" in url else "?") + "ssl_cert_reqs=none"
        return url

    @property
    def cors_origins(self) -> list[str]:
        """The origins the REST API answers CORS for: CORS_ORIGINS, else FRONTEND_URL's origin."""
        if self.CORS_ORIGINS:
            return self.CORS_ORIGINS
        parts = urlsplit(self.FRONTEND_URL)
        return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite, which needs its own connection pragmas."""
        return self.DATABASE_URL.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Load the settings once per process, or stop the process naming every bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]) or "settings"
            lines.append(f"  {name}: {err['msg']}")
        sys.stderr.write("Invalid configuration:\n" + "\n".join(lines) + "\n")
        raise SystemExit(2) from None
