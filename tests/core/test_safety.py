"""Unsafe settings: warned about everywhere, and refused by a production web process."""

from __future__ import annotations

import pytest

from core.safety import refuse_unsafe_production, review
from core.settings import DEV_JWT_SECRET, Settings

STRONG = "a-real-production-secret-0123456789abcdef"


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)


def _variables(settings: Settings) -> set[str]:
    return {finding.variable for finding in review(settings)}


def test_development_defaults_are_reported():
    assert {"JWT_SECRET_KEY", "WEBSOCKET_CORS_ORIGINS"} <= _variables(_settings())


def test_open_or_weak_flower_is_reported():
    assert "ALLOW_OPEN_FLOWER" in _variables(_settings(ALLOW_OPEN_FLOWER=True))
    assert "FLOWER_BASIC_AUTH" in _variables(_settings(FLOWER_BASIC_AUTH="admin:change-me"))
    assert "FLOWER_BASIC_AUTH" not in _variables(_settings(FLOWER_BASIC_AUTH="ops:long-enough-pw"))


def test_a_careful_production_setup_has_nothing_to_report():
    settings = _settings(
        APP_ENV="production",
        JWT_SECRET_KEY=STRONG,
        WEBSOCKET_CORS_ORIGINS="https://app.example.com",
        FLOWER_BASIC_AUTH="ops:long-enough-pw",
        SENDGRID_API_KEY="SG.key",
        DATABASE_URL="postgresql://db/app",
    )
    assert review(settings) == []
    refuse_unsafe_production(settings)


def test_production_refuses_cors_star(capsys):
    settings = _settings(APP_ENV="production", JWT_SECRET_KEY=STRONG)

    with pytest.raises(SystemExit) as stopped:
        refuse_unsafe_production(settings)

    assert stopped.value.code == 2
    assert "WEBSOCKET_CORS_ORIGINS" in capsys.readouterr().err


def test_outside_production_nothing_is_refused():
    refuse_unsafe_production(_settings(JWT_SECRET_KEY=DEV_JWT_SECRET))


def test_edge_settings_left_open_are_reported():
    assert "RATE_LIMIT_ENABLED" in _variables(_settings(RATE_LIMIT_ENABLED=False))
    assert "CORS_ORIGINS" in _variables(_settings(CORS_ORIGINS=["*"]))
    assert "HEALTH_TOKEN" in _variables(_settings(HEALTH_TOKEN="short"))
    assert not {"RATE_LIMIT_ENABLED", "CORS_ORIGINS", "HEALTH_TOKEN"} & _variables(_settings())
