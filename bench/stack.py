"""What the benchmark runs against: Redis, a scratch database with users, the app and the peer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import requests
import sqlalchemy as sa

from bench.procs import ROOT, node_script, postgres_pids, tree
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.net import free_port, port_open
from tests.support.nginx import running_nginx
from tests.support.processes import ManagedProcess, start_web, start_worker
from tests.support.redis_server import RedisServer

SECRET = "bench-realtime-secret-0123456789abcdef0123456789abcdef"
SENDGRID_KEY = "SG.bench-key"
# kombu's Redis transport keeps the tasks a worker has taken and not yet acknowledged here.
UNACKED = "unacked"
# Longest a figure waits for the previous one's leftover work.
IDLE_TIMEOUT_SECONDS = 120.0
POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
# BENCH_DATABASE lets two benchmark runs on one machine keep out of each other's way.
DATABASE_NAME = os.environ.get("BENCH_DATABASE", "bench_realtime")
PEER = "peer"


def token(user_id: str, hours: float = 4) -> str:
    """An access token like the platform's own (tests/support/tokens.py's claims)."""
    now = datetime.now(UTC)
    claims = {
        "sub": user_id,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(hours=hours),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


@dataclass
class Population:
    """The users the swarm signs in as: channel owners with a channel each, and advertisers."""

    owners: list[str]
    channels: list[str]
    advertisers: list[str]
    owner_tokens: list[str] = field(default_factory=list)
    advertiser_tokens: list[str] = field(default_factory=list)


class Environment:
    """Redis, the database and the population shared by every target of one invocation."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.redis = RedisServer(free_port(), log_dir=self.log_dir)
        self.database_url = ""
        self.database = ""

    def start(self, owners: int, channels: int, advertisers: int = 50) -> Population:
        """Start Redis, create and migrate the scratch database, insert the population."""
        self.redis.start()
        self.database_url, self.database = self._create_database()
        self._migrate()
        return self._populate(owners, channels, advertisers)

    def close(self) -> None:
        """Stop Redis (the scratch database stays for inspection, recreated next time)."""
        self.redis.close()

    def app_env(self, mode: str) -> dict[str, str]:
        """The settings of the app's processes for one async mode."""
        return {
            "APP_ENV": "production",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "JWT_SECRET_KEY": SECRET,
            "WEBSOCKET_CORS_ORIGINS": "http://127.0.0.1",
            "ASYNC_MODE": mode,
            "ENABLE_BACKGROUND_TASKS": "false",
            "OUTBOX_DIR": str(self.workdir / "outbox"),
            "FRONTEND_URL": "http://127.0.0.1",
            # Thousands of sockets and calls from one address: the rate limits are off, as SPEC
            # says for load tests; the hard caps (sockets per user, frame, queue, body) stay.
            "RATE_LIMIT_ENABLED": "false",
        }

    def redis_pids(self) -> list[int]:
        """The redis-server process."""
        proc = self.redis._process  # the harness keeps it private; read-only use
        return [proc.pid] if proc is not None and proc.pid else []

    def flush_redis(self) -> None:
        """Empty Redis between targets (queues, presence hashes)."""
        import redis

        redis.Redis.from_url(self.redis.url).flushdb()

    def _create_database(self) -> tuple[str, str]:
        """A fresh PostgreSQL database when one answers locally, else a SQLite file."""
        if port_open("127.0.0.1", 5432):
            admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)"))
                    conn.execute(sa.text(f"CREATE DATABASE {DATABASE_NAME}"))
                    version = conn.execute(sa.text("SHOW server_version")).scalar()
            finally:
                admin.dispose()
            url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE_NAME}"
            return url, f"PostgreSQL {version} (local, database {DATABASE_NAME})"
        path = self.workdir / "bench.sqlite3"
        return f"sqlite:///{path}", "SQLite (file, WAL)"

    def _migrate(self) -> None:
        """Apply the Alembic migrations, as the release step does."""
        env = {**os.environ, **self.app_env("eventlet"), "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )

    def _populate(self, owners: int, channels: int, advertisers: int) -> Population:
        """Bulk-insert users and channels, and sign a token for each user."""
        from core.models import Channel, User

        now = datetime.now(UTC)
        owner_ids = [str(uuid.uuid4()) for _ in range(owners)]
        advertiser_ids = [str(uuid.uuid4()) for _ in range(advertisers)]
        channel_ids = [str(uuid.uuid4()) for _ in range(channels)]

        def user(user_id: str, role: str, i: int) -> dict[str, Any]:
            return {
                "id": user_id,
                "email": f"{role}-{i}@bench.example.com",
                "name": f"Bench {role} {i}",
                "password_hash": "not-used",
                "role": role,
                "locale": "en" if i % 2 else "ru",
                "balance": 0,
                "last_seq": 0,
                "created_at": now,
            }

        rows = [user(u, "channel_owner", i) for i, u in enumerate(owner_ids)]
        rows += [user(u, "advertiser", i) for i, u in enumerate(advertiser_ids)]
        engine = sa.create_engine(self.database_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(User.__table__), rows)
                conn.execute(
                    sa.insert(Channel.__table__),
                    [
                        {
                            "id": c,
                            "owner_id": owner_ids[i],
                            "name": f"Channel {i}",
                            "platform": "telegram",
                            "url": f"https://t.me/bench{i}",
                            "price": 150_000,
                            "created_at": now,
                        }
                        for i, c in enumerate(channel_ids)
                    ],
                )
        finally:
            engine.dispose()
        return Population(
            owners=owner_ids,
            channels=channel_ids,
            advertisers=advertiser_ids,
            owner_tokens=[token(u) for u in owner_ids],
            advertiser_tokens=[token(u) for u in advertiser_ids],
        )


class Target:
    """One system under test: where its sockets connect, its processes, how it is fed."""

    name: str
    url: str

    def start(self) -> None:
        """Start the system's processes and wait until they answer."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every process the target started."""
        raise NotImplementedError

    def socket_pid(self) -> int:
        """The process holding the sockets (its memory is B1's)."""
        raise NotImplementedError

    def roles(self) -> dict[str, list[int]]:
        """The target's processes by role, for the CPU meter."""
        raise NotImplementedError

    def wait_idle(self, timeout: float = IDLE_TIMEOUT_SECONDS) -> float:
        """Wait until the work a figure left behind is done; the seconds waited (none here)."""
        return 0.0

    def connections(self) -> int | None:
        """Open websocket connections as the server counts them."""
        body = requests.get(f"{self.url}/health", timeout=10).json()
        return int(body["websocket"]["connections"])

    def api_request(self, population: Population, i: int) -> dict[str, Any]:
        """The JSON body of B4's API call number i (its title is added by the driver)."""
        raise NotImplementedError


def procfile_workers() -> dict[str, str]:
    """The Procfile's Celery worker processes: name -> the queues its `-Q` names."""
    from honcho.environ import parse_procfile

    workers = {}
    for name, command in parse_procfile((ROOT / "Procfile").read_text()).processes.items():
        words = command.split()
        if words[:1] == ["celery"] and "worker" in words and "-Q" in words:
            workers[name] = words[words.index("-Q") + 1]
    return workers


# The worker layout before the Procfile gave live pushes a process of their own.
SINGLE_WORKER = {"worker": "realtime,email,messengers,maintenance"}
# `eventlet-x2`: the target with two web processes behind nginx.
SCALED = "-x"
# How long the SendGrid stand-in takes to answer, about what the real API takes from here.
SENDGRID_LATENCY_SECONDS = 0.05


class AppTarget(Target):
    """The platform as the Procfile runs it: gunicorn web process(es), its Celery workers.

    Every email of the lifecycle flows, to a SendGrid stand-in on loopback, so the live path is
    measured beside the email work it shares the machine with. With `webs` above 1 the web
    processes run behind nginx (deploy/nginx, as `make run-scaled`), which clients talk to.
    """

    def __init__(
        self,
        env: Environment,
        mode: str,
        worker_concurrency: int = 2,
        workers: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        webs: int = 1,
    ) -> None:
        self.env = env
        self.extra_env = extra_env or {}
        self.name = mode if webs == 1 else f"{mode}{SCALED}{webs}"
        self.mode = mode
        self.webs = webs
        self.worker_concurrency = worker_concurrency
        self.layout = workers or procfile_workers()
        self.web: ManagedProcess | None = None
        self.more_webs: list[ManagedProcess] = []
        self.balancer: ExitStack | None = None
        self.nginx_pid: int | None = None
        self.workers: list[ManagedProcess] = []
        self.sendgrid: FakeSendGrid | None = None
        self.url = ""

    def wait_idle(self, timeout: float = IDLE_TIMEOUT_SECONDS) -> float:
        """Wait until the workers' queues are empty and no task is unacknowledged.

        B4 leaves its emails (and the sweeper's re-sends) behind it; the figure measured next
        would otherwise share the cores with them (B2 at 5,000 clients ran beside 0.25 cores
        of Celery work).
        """
        import redis

        client = redis.Redis.from_url(self.env.redis.url)
        queues = [q for names in self.layout.values() for q in names.split(",")]
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            waiting = sum(client.llen(q) for q in queues) + client.hlen(UNACKED)
            if not waiting:
                break
            time.sleep(0.2)
        return time.monotonic() - started

    @classmethod
    def named(cls, env: Environment, name: str) -> AppTarget:
        """The target a command-line name means: `eventlet`, or `eventlet-x2` behind nginx."""
        mode, _, count = name.partition(SCALED)
        return cls(env, mode, webs=int(count) if count else 1)

    def start(self) -> None:
        """Start the SendGrid stand-in, gunicorn (ASYNC_MODE picks its worker) and the workers."""
        self.env.flush_redis()
        self.sendgrid = FakeSendGrid(api_key=SENDGRID_KEY, latency=SENDGRID_LATENCY_SECONDS)
        self.sendgrid.start()
        port = free_port()
        app_env = {
            **self.env.app_env(self.mode),
            "SENDGRID_API_KEY": SENDGRID_KEY,
            "SENDGRID_API_HOST": self.sendgrid.url,
            **self.extra_env,
        }
        ports = [port, *(free_port() for _ in range(self.webs - 1))]
        if self.webs > 1:
            app_env["TRUSTED_PROXY_COUNT"] = "1"
        with ThreadPoolExecutor(self.webs + len(self.layout)) as pool:
            webs = [
                pool.submit(start_web, app_env, p, self.env.log_dir, name=f"web{i}-{self.mode}")
                for i, p in enumerate(ports)
            ]
            workers = [
                pool.submit(
                    start_worker,
                    app_env,
                    f"{name}-{self.mode}",
                    self.env.log_dir,
                    queues=queues,
                    concurrency=self.worker_concurrency,
                )
                for name, queues in self.layout.items()
            ]
            self.web, *self.more_webs = [w.result() for w in webs]
            self.workers = [w.result() for w in workers]
        self.url = f"http://127.0.0.1:{port}"
        if self.webs > 1:
            self.balancer = ExitStack()
            nginx = self.balancer.enter_context(
                running_nginx(
                    [f"127.0.0.1:{p}" for p in ports],
                    self.env.workdir / f"nginx-{self.name}",
                    self.env.log_dir,
                    access_log="off",
                )
            )
            self.url, self.nginx_pid = nginx.url, nginx.process.pid

    def stop(self) -> None:
        """Stop the workers, then the web process and the stand-in."""
        # Short grace: gunicorn would wait for every open websocket; nothing here needs that.
        if self.balancer is not None:
            self.balancer.close()
            self.balancer, self.nginx_pid = None, None
        for proc in (*self.workers, self.web, *self.more_webs):
            if proc is not None:
                proc.close(grace=2)
        self.workers, self.web, self.more_webs = [], None, []
        if self.sendgrid is not None:
            self.sendgrid.close()
            self.sendgrid = None

    def socket_pid(self) -> int:
        """The first web process's gunicorn worker (the master only supervises)."""
        assert self.web is not None
        return _gunicorn_worker(self.web)

    def roles(self) -> dict[str, list[int]]:
        """Web process(es), nginx, Celery workers (all their processes), Redis and PostgreSQL."""
        assert self.workers and all(w.pid is not None for w in self.workers)
        roles = {
            "web": [self.socket_pid(), *(_gunicorn_worker(w) for w in self.more_webs)],
            "celery": [pid for w in self.workers for pid in tree(w.pid or 0)],
            "redis": self.env.redis_pids(),
        }
        if self.nginx_pid is not None:
            roles["nginx"] = tree(self.nginx_pid)
        if self.env.database_url.startswith("postgresql"):
            roles["postgres"] = postgres_pids()
        return roles

    def api_request(self, population: Population, i: int) -> dict[str, Any]:
        """POST /api/campaigns on owner i's channel: owner i is notified (new_campaign)."""
        return {"channel_id": population.channels[i], "content": "Benchmark placement"}


def _gunicorn_worker(web: ManagedProcess) -> int:
    """A gunicorn web process's one worker process (the master only supervises)."""
    assert web.pid is not None
    children = tree(web.pid)[1:]
    if not children:
        raise RuntimeError("gunicorn has no worker process")
    return children[0]


class PeerTarget(Target):
    """The Node.js socket.io server with the Redis adapter, fed by the Redis emitter."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.name = PEER
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        """Start bench/node/peer.mjs and wait for its port."""
        self.env.flush_redis()
        port = free_port()
        config = {"port": port, "redisUrl": self.env.redis.url, "secret": SECRET}
        self.env.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.env.log_dir / "peer.log").open("a")
        self.process = subprocess.Popen(
            [*node_script("peer.mjs"), json.dumps(config)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port, 0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the peer did not start; see peer.log")
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop the peer."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def socket_pid(self) -> int:
        """The node process."""
        assert self.process is not None
        return self.process.pid

    def roles(self) -> dict[str, list[int]]:
        """The node process and Redis."""
        return {"web": [self.socket_pid()], "redis": self.env.redis_pids()}

    def api_request(self, population: Population, i: int) -> dict[str, Any]:
        """The peer's stand-in endpoint takes the owner to notify directly."""
        return {"owner_id": population.owners[i], "channel_id": population.channels[i]}


def node_available() -> bool:
    """Whether node is installed and bench/node_modules holds the peer's packages."""
    return shutil.which("node") is not None and (ROOT / "bench" / "node_modules").is_dir()
