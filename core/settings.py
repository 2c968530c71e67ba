"""Typed settings from the environment and `.env`, failing fast with the bad variable's name."""

from __future__ import annotations

import sys
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, ValidationError, field_validator, model_validator
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

    JWT_SECRET_KEY: str = DEV_JWT_SECRET
    JWT_ALGORITHM: Literal["HS256", "HS384", "HS512"] = "HS256"
    JWT_ACCESS_TTL_SECONDS: int = Field(default=900, ge=10)
    JWT_REFRESH_TTL_SECONDS: int = Field(default=30 * 24 * 3600, ge=60)
    BCRYPT_ROUNDS: int = Field(default=12, ge=4, le=16)

    WEBSOCKET_CORS_ORIGINS: Annotated[list[str], NoDecode] = ["*"]
    ASYNC_MODE: Literal["eventlet", "gevent", "threading"] = "eventlet"

    SENDGRID_API_KEY: str | None = None
    SENDGRID_FROM_EMAIL: str = "noreply@example.com"
    SENDGRID_FROM_NAME: str = "Ad Marketplace"
    SENDGRID_API_HOST: str = "https://api.sendgrid.com"
    OUTBOX_DIR: Path = ROOT / "var" / "outbox"
    FRONTEND_URL: str = "http://localhost:5000"

    PLATFORM_FEE_PERCENT: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    ENABLE_BACKGROUND_TASKS: bool = True
    SWEEP_INTERVAL_SECONDS: float = Field(default=10.0, gt=0)
    # A pending delivery younger than this is left to its own task before the sweeper re-sends it.
    SWEEP_GRACE_SECONDS: float = Field(default=5.0, ge=0)
    DELIVERY_LEASE_SECONDS: int = Field(default=60, ge=1)
    CATCHUP_LIMIT: int = Field(default=1000, ge=1)
    NOTIFICATION_RETENTION_DAYS: int = Field(default=30, ge=1)
    FLOWER_BASIC_AUTH: str | None = None
    TELEGRAM_BOT_TOKEN: str | None = None
    VK_SERVICE_KEY: str | None = None

    @field_validator("WEBSOCKET_CORS_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept a comma-separated string, as operators write it in the environment."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _known_database(cls, value: str) -> str:
        """Refuse URLs of databases the platform is not tested on."""
        if value.startswith("postgres://"):
            value = "postgresql://" + value[len("postgres://") :]
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        """Refuse the development secret in production, where it would let anyone forge tokens."""
        if self.APP_ENV == "production" and self.JWT_SECRET_KEY == DEV_JWT_SECRET:
            raise ValueError("JWT_SECRET_KEY must be set in production")
        if len(self.JWT_SECRET_KEY) < 16:
            raise ValueError("JWT_SECRET_KEY must be at least 16 characters")
        return self

    @property
    def redis_url(self) -> str:
        """The Redis URL, built from REDIS_HOST/PORT/DB/PASSWORD when REDIS_URL is not set."""
        if self.REDIS_URL:
            return self.REDIS_URL
        auth = f":{quote(self.REDIS_PASSWORD)}@" if self.REDIS_PASSWORD else ""
        return f"redis://{auth}{self.REDIS_HOST}:{self.REDIS_PORT}/{self.REDIS_DB}"

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
