"""Settings that are fine on a laptop and unsafe in production: warned about, or refused."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from core.settings import DEV_JWT_SECRET, Settings

# Passwords that come from examples and tutorials, not from an operator's choice.
WEAK_PASSWORDS = frozenset({"", "admin", "password", "change-me", "changeme", "flower", "secret"})


@dataclass(frozen=True)
class Finding:
    """One unsafe setting: the variable, what is wrong, and whether production refuses it."""

    variable: str
    message: str
    refused_in_production: bool = False

    def as_text(self) -> str:
        """`VARIABLE: message`, as operators read it."""
        return f"{self.variable}: {self.message}"


def _weak_flower_logins(value: str) -> bool:
    """Whether any user:password pair of FLOWER_BASIC_AUTH has an example or short password."""
    for pair in value.split(","):
        _, _, password = pair.partition(":")
        if password.strip().lower() in WEAK_PASSWORDS or len(password.strip()) < 10:
            return True
    return False


def review(settings: Settings) -> list[Finding]:
    """Every unsafe setting in force, most serious first."""
    findings: list[Finding] = []
    if settings.JWT_SECRET_KEY == DEV_JWT_SECRET:
        findings.append(
            Finding("JWT_SECRET_KEY", "the development default signs tokens anyone can forge", True)
        )
    if "*" in settings.WEBSOCKET_CORS_ORIGINS:
        findings.append(
            Finding(
                "WEBSOCKET_CORS_ORIGINS",
                "'*' lets any web site open Socket.IO connections; list the front-end's origins",
                True,
            )
        )
    if not settings.FLOWER_BASIC_AUTH:
        if settings.ALLOW_OPEN_FLOWER:
            findings.append(
                Finding("ALLOW_OPEN_FLOWER", "Flower may run without a password (local only)")
            )
    elif _weak_flower_logins(settings.FLOWER_BASIC_AUTH):
        findings.append(
            Finding("FLOWER_BASIC_AUTH", "a Flower password is an example or shorter than 10")
        )
    if not settings.RATE_LIMIT_ENABLED:
        findings.append(
            Finding(
                "RATE_LIMIT_ENABLED", "false: logins, sign-ups and sockets are not rate limited"
            )
        )
    if "*" in settings.CORS_ORIGINS:
        findings.append(
            Finding(
                "CORS_ORIGINS", "'*' lets any web site call the API; list the front-end's origins"
            )
        )
    if settings.HEALTH_TOKEN is not None and len(settings.HEALTH_TOKEN) < 16:
        findings.append(Finding("HEALTH_TOKEN", "shorter than 16 characters: easy to guess"))
    if settings.APP_ENV == "production":
        if not settings.SENDGRID_API_KEY:
            findings.append(
                Finding("SENDGRID_API_KEY", "not set: emails go to the local outbox, not to people")
            )
        if settings.is_sqlite:
            findings.append(
                Finding("DATABASE_URL", "SQLite serves one machine; use PostgreSQL in production")
            )
    return findings


def refuse_unsafe_production(settings: Settings) -> None:
    """Stop a production web process that would run with a default secret or CORS '*'."""
    if settings.APP_ENV != "production":
        return
    refused = [f for f in review(settings) if f.refused_in_production]
    if refused:
        lines = "\n".join(f"  {f.as_text()}" for f in refused)
        sys.stderr.write(f"Refusing to start in production:\n{lines}\n")
        raise SystemExit(2)
