"""Fast fixtures for the domain services: one schema per backend, emptied after every test.

The integration harness's `database_url` migrates a shared `public` schema for real
processes; these unit tests instead build the tables once per backend with
`Base.metadata.create_all` (SQLite file; PostgreSQL in a schema of this run alone).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, delete
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core import db as core_db
from core import settings as core_settings
from core.db import make_engine
from core.models import Base, Campaign, Channel, User
from core.services import campaigns, channels, dispatch, users
from core.settings import Settings
from tests.support.databases import postgres_unavailable_reason, postgres_url

# Long enough for HS512 without PyJWT's short-key warning.
UNIT_JWT_SECRET = "unit-tests-secret-" + "0123456789abcdef" * 4
FEE_PERCENT = Decimal("10")
# A schema of this run alone, so parallel runs and the integration tests' `public` never clash.
PG_SCHEMA = f"unit_tests_{os.getpid()}"

ScopeFactory = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Database:
    """One backend's engine and session factory for the unit tests."""

    backend: str
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def is_postgres(self) -> bool:
        """Whether this is the PostgreSQL backend (real row locks, real concurrency)."""
        return self.backend == "postgresql"

    def scope(self) -> AbstractContextManager[Session]:
        """A transaction that commits on success, like `core.db.session_scope()`."""
        return self.sessions.begin()


def _with_search_path(url: str, schema: str) -> str:
    """The PostgreSQL URL whose connections use `schema` (so does `DATABASE_URL=` of it)."""
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def _run_autocommit(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """Every table, created once per backend; PostgreSQL is skipped when it does not answer."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("unit-sqlite") / "unit.sqlite3"
        url = f"sqlite:///{path}"
        drop: tuple[str, ...] = ()
    else:
        base_url = postgres_url()
        reason = postgres_unavailable_reason(base_url, timeout=2.0)
        if reason is not None:
            pytest.skip(reason)
        _run_autocommit(
            base_url, f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE", f"CREATE SCHEMA {PG_SCHEMA}"
        )
        url = _with_search_path(base_url, PG_SCHEMA)
        drop = (base_url, f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
    engine = make_engine(url)  # the platform's own engine: SQLite pragmas, BEGIN IMMEDIATE
    Base.metadata.create_all(engine)
    try:
        yield Database(
            request.param, url, engine, sessionmaker(bind=engine, expire_on_commit=False)
        )
    finally:
        engine.dispose()
        if drop:
            _run_autocommit(*drop)


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    """The backend's database, emptied after the test so every test starts from nothing."""
    try:
        yield database
    finally:
        with database.scope() as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(delete(table))


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    """A session for the test; commit before anything else opens its own transaction."""
    with db.sessions() as session:
        yield session


@pytest.fixture
def postgres_only(db: Database) -> None:
    """Skip on SQLite, whose BEGIN IMMEDIATE serializes whole transactions: no race to test."""
    if not db.is_postgres:
        pytest.skip("row-lock races need PostgreSQL; SQLite serializes every writer")


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings for the services that take them: a strong secret, cheap bcrypt, 10 % fee."""
    return Settings(
        _env_file=None,
        APP_ENV="test",
        JWT_SECRET_KEY=UNIT_JWT_SECRET,
        JWT_ALGORITHM="HS256",
        BCRYPT_ROUNDS=4,
        PLATFORM_FEE_PERCENT=FEE_PERCENT,
    )


@pytest.fixture
def recorded_dispatches() -> Iterator[list[tuple[str, list[str]]]]:
    """Install a dispatcher that records (channel, delivery ids) instead of enqueueing."""
    calls: list[tuple[str, list[str]]] = []
    dispatch.set_dispatcher(lambda channel, ids: calls.append((channel, list(ids))))
    try:
        yield calls
    finally:
        dispatch.set_dispatcher(None)


def _clear_process_singletons() -> None:
    for cached in (core_db.get_sessionmaker, core_db.get_engine, core_settings.get_settings):
        cached.cache_clear()


@pytest.fixture
def app_database(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """Point `core.db.session_scope()` (settings → engine → sessionmaker) at the test database."""
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("JWT_SECRET_KEY", UNIT_JWT_SECRET)
    _clear_process_singletons()
    try:
        yield db
    finally:
        if core_db.get_engine.cache_info().currsize:
            core_db.get_engine().dispose()
        _clear_process_singletons()


class Factory:
    """Builds users, channels and campaigns through the services themselves."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self._numbers = itertools.count(1)

    def user(
        self,
        role: str = "advertiser",
        *,
        email: str | None = None,
        password: str = "correct horse",
        locale: str = "ru",
        balance: int = 0,
    ) -> User:
        """A user of `role`; emails are unique unless given."""
        number = next(self._numbers)
        user = users.create_user(
            self.session,
            self.settings,
            email=email or f"{role}{number}@example.com",
            password=password,
            name=f"{role.title()} {number}",
            role=role,
            locale=locale,
        )
        user.balance = balance
        self.session.flush()
        return user

    def channel(self, owner: User | None = None, *, price: int = 150_000) -> Channel:
        """A channel (of a fresh owner unless given), priced in minor units."""
        owner = owner or self.user("channel_owner")
        number = next(self._numbers)
        return channels.create_channel(
            self.session,
            owner,
            name=f"Channel {number}",
            platform="telegram",
            url=f"https://t.me/channel{number}",
            price=price,
        )

    def campaign(
        self,
        advertiser: User | None = None,
        channel: Channel | None = None,
        *,
        price: int | None = None,
        status: str = "pending",
    ) -> Campaign:
        """A campaign, moved through the real lifecycle to `status`."""
        advertiser = advertiser or self.user("advertiser")
        channel = channel or self.channel()
        campaign = campaigns.create_campaign(
            self.session,
            advertiser.id,
            channel_id=channel.id,
            title="Spring sale",
            content="Buy now",
            price=price,
        )
        owner = channel.owner
        if status in ("accepted", "completed", "cancelled"):
            campaigns.accept(self.session, owner, campaign.id)
        if status == "rejected":
            campaigns.reject(self.session, owner, campaign.id)
        if status == "completed":
            campaigns.complete(self.session, advertiser, campaign.id, FEE_PERCENT)
        if status == "cancelled":
            campaigns.cancel(self.session, advertiser, campaign.id)
        return campaign


@pytest.fixture
def make(session: Session, settings: Settings) -> Factory:
    """The factory of users, channels and campaigns for this test's session."""
    return Factory(session, settings)
