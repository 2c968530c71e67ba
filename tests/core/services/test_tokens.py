"""JWT access and refresh tokens: types, expiry, signature and the pinned algorithm."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import time_machine

from core.services import tokens
from core.services.errors import Unauthorized
from core.settings import Settings

USER_ID = "2f0a3d6e-4b8c-4c1e-9d55-7a1b2c3d4e5f"


def claims(**overrides: Any) -> dict[str, Any]:
    """A complete, valid access token's claims, with some replaced or (None) removed."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "sub": USER_ID,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def sign(settings: Settings, body: dict[str, Any], **kwargs: Any) -> str:
    kwargs.setdefault("key", settings.JWT_SECRET_KEY)
    kwargs.setdefault("algorithm", "HS256")
    return jwt.encode(body, **kwargs)


def refused(settings: Settings, token: str | None, expected: str = "access") -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        tokens.verify(settings, token, expected)  # type: ignore[arg-type]
    assert caught.value.status == 401
    return caught.value


@pytest.mark.parametrize("token_type", ["access", "refresh"])
def test_a_token_verifies_as_its_own_type(settings, token_type):
    before = datetime.now(UTC)
    token = tokens.issue(settings, USER_ID, token_type)

    verified = tokens.verify(settings, token, token_type)

    ttl = {"access": settings.JWT_ACCESS_TTL_SECONDS, "refresh": settings.JWT_REFRESH_TTL_SECONDS}
    assert verified.user_id == USER_ID
    assert verified.type == token_type
    expected_expiry = before + timedelta(seconds=ttl[token_type])
    assert abs(verified.expires_at - expected_expiry) < timedelta(seconds=5)


def test_each_token_is_unique(settings):
    assert tokens.issue(settings, USER_ID, "access") != tokens.issue(settings, USER_ID, "access")


@pytest.mark.parametrize(("issued", "expected"), [("access", "refresh"), ("refresh", "access")])
def test_access_and_refresh_tokens_are_not_interchangeable(settings, issued, expected):
    token = tokens.issue(settings, USER_ID, issued)

    error = refused(settings, token, expected)

    assert error.code == "token_invalid"
    assert expected in error.message


def test_an_expired_token_is_refused_as_expired(settings):
    past = datetime.now(UTC) - timedelta(hours=1)
    token = sign(settings, claims(iat=past, exp=past + timedelta(minutes=5)))

    assert refused(settings, token).code == "token_expired"


def test_a_token_signed_with_another_secret_is_refused(settings):
    token = sign(settings, claims(), key="someone-elses-secret-" + "x" * 48)

    assert refused(settings, token).code == "token_invalid"


def test_a_token_with_a_tampered_payload_is_refused(settings):
    header, payload, signature = tokens.issue(settings, USER_ID, "access").split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()

    assert refused(settings, f"{header}.{forged}.{signature}").code == "token_invalid"


def test_an_unsigned_alg_none_token_is_refused(settings):
    token = jwt.encode(claims(), key=None, algorithm="none")

    assert refused(settings, token).code == "token_invalid"


def test_a_token_of_another_algorithm_is_refused_when_hs256_is_pinned(settings):
    assert settings.JWT_ALGORITHM == "HS256"
    token = sign(settings, claims(), algorithm="HS512")

    assert refused(settings, token).code == "token_invalid"


def test_the_pinned_algorithm_follows_the_settings(settings):
    hs512 = settings.model_copy(update={"JWT_ALGORITHM": "HS512"})

    assert tokens.verify(hs512, tokens.issue(hs512, USER_ID, "access"), "access")
    assert refused(hs512, sign(settings, claims(), algorithm="HS256")).code == "token_invalid"


@pytest.mark.parametrize("missing", tokens.REQUIRED_CLAIMS)
def test_a_token_missing_a_required_claim_is_refused(settings, missing):
    token = sign(settings, claims(**{missing: None}))

    error = refused(settings, token)

    assert error.code == "token_invalid"
    assert missing in error.message


def test_a_non_string_subject_is_refused(settings):
    assert refused(settings, sign(settings, claims(sub=42))).code == "token_invalid"


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_refused_as_missing(settings, token):
    assert refused(settings, token).code == "token_missing"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "Bearer x.y.z"])
def test_a_malformed_token_is_refused(settings, token):
    assert refused(settings, token).code == "token_invalid"


def test_a_remembered_access_token_is_decoded_once(settings, monkeypatch):
    token = tokens.issue(settings, USER_ID, "access")
    decodes = []
    real_decode = jwt.decode
    monkeypatch.setattr(
        tokens.jwt, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k)
    )

    first = tokens.verify(settings, token, "access")
    again = tokens.verify(settings, token, "access")

    assert first == again
    assert len(decodes) == 1


def test_a_remembered_access_token_is_refused_once_it_expires(settings):
    token = tokens.issue(settings, USER_ID, "access")
    verified = tokens.verify(settings, token, "access")

    with time_machine.travel(verified.expires_at + timedelta(seconds=1), tick=False):
        assert refused(settings, token).code == "token_expired"


def test_a_remembered_token_is_refused_under_another_secret(settings):
    token = tokens.issue(settings, USER_ID, "access")
    tokens.verify(settings, token, "access")
    rotated = settings.model_copy(update={"JWT_SECRET_KEY": "a-rotated-secret-" + "y" * 48})

    assert refused(rotated, token).code == "token_invalid"


def test_a_token_that_fails_is_not_remembered(settings):
    header, payload, _ = tokens.issue(settings, USER_ID, "access").split(".")
    forged = f"{header}.{payload}.{'A' * 43}"
    before = tokens._decoded_access.cache_info().currsize

    for _ in range(3):
        assert refused(settings, forged).code == "token_invalid"
    assert tokens._decoded_access.cache_info().currsize == before


def test_a_remembered_access_token_is_still_not_a_refresh_token(settings):
    token = tokens.issue(settings, USER_ID, "access")
    tokens.verify(settings, token, "access")

    assert refused(settings, token, "refresh").code == "token_invalid"
