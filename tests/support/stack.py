"""A whole running platform for one test: web processes, workers and beat on real services."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine

from tests.support import processes
from tests.support.clients import DEFAULT_PASSWORD, Account, Api, LiveClient, unique_email
from tests.support.databases import ensure_migrated, reset_database
from tests.support.environment import app_env
from tests.support.net import free_port
from tests.support.paths import REPO_ROOT
from tests.support.processes import ManagedProcess


class Stack:
    """The app's processes sharing one database, one Redis and one env."""

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        workdir: Path,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.cwd = cwd
        self.database_url = database_url
        self.redis_url = redis_url
        self.workdir = workdir
        self.log_dir = log_dir
        self.outbox_dir = workdir / "outbox"
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {
            **app_env(database_url, redis_url, self.outbox_dir),
            **(extra_env or {}),
        }
        self.webs: list[ManagedProcess] = []
        self.web_ports: list[int] = []
        self.workers: list[ManagedProcess] = []
        self.beats: list[ManagedProcess] = []
        self._clients: list[LiveClient] = []

    # --- lifecycle -------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the database to the latest migration (once per session per URL)."""
        ensure_migrated(self.database_url, self.env)

    def reset_database(self) -> None:
        """Empty the database and migrate it again; stop the processes first."""
        reset_database(self.database_url, self.env)

    def start(self, web: int = 1, workers: int = 1, beat: bool = False) -> Stack:
        """Make sure at least this many processes run; idempotent for module-scoped stacks.

        The missing processes start side by side: all are spawned, then each is waited for.
        """
        self.migrate()
        starting: list[ManagedProcess] = []
        for _ in range(web - len(self._alive(self.webs))):
            starting.append(self.webs[self.start_web(wait=False)])
        for _ in range(workers - len(self._alive(self.workers))):
            starting.append(self.start_worker(wait=False))
        if beat and not self._alive(self.beats):
            starting.append(self.start_beat(wait=False))
        for proc in starting:
            proc.wait_ready()
        return self

    @staticmethod
    def _alive(procs: list[ManagedProcess]) -> list[ManagedProcess]:
        """Return the processes still running."""
        return [p for p in procs if p.running()]

    def start_web(self, extra_env: dict[str, str] | None = None, wait: bool = True) -> int:
        """Start one more web process on a free port and return its index.

        wait=False only spawns it: wait_ready() on stack.webs[index] before using it.
        """
        self.migrate()
        index = len(self.webs)
        port = free_port()
        while port in self.web_ports:  # a web spawned just before may not listen yet
            port = free_port()
        env = {**self.env, **(extra_env or {})}
        proc = processes.start_web(
            env, port, self.log_dir, name=f"web{index}", cwd=self.cwd, wait=wait
        )
        self.webs.append(proc)
        self.web_ports.append(port)
        return index

    def start_worker(
        self, name: str | None = None, extra_env: dict[str, str] | None = None, **kwargs: Any
    ) -> ManagedProcess:
        """Start one more celery worker (kwargs go to processes.start_worker)."""
        self.migrate()
        name = name or f"worker{len(self.workers)}"
        env = {**self.env, **(extra_env or {})}
        proc = processes.start_worker(env, name, self.log_dir, cwd=self.cwd, **kwargs)
        self.workers.append(proc)
        return proc

    def start_beat(
        self, extra_env: dict[str, str] | None = None, wait: bool = True
    ) -> ManagedProcess:
        """Start one more celery beat with its own schedule file (wait=False: only spawn)."""
        index = len(self.beats)
        name = f"beat{index}"
        schedule = self.workdir / f"celerybeat-schedule-{index}"
        env = {**self.env, **(extra_env or {})}
        proc = processes.start_beat(env, schedule, self.log_dir, name=name, cwd=self.cwd, wait=wait)
        self.beats.append(proc)
        return proc

    def kill_worker(
        self, i: int = -1, sig: int = signal.SIGKILL, group: bool = True, wait: float = 15.0
    ) -> None:
        """Signal worker `i` (whole group by default, like a crash) and wait for it to exit."""
        proc = self.workers[i]
        proc.send_signal(sig, group=group)
        proc.wait(wait)
        # Reap the pool children too, so nothing of the dead worker still consumes tasks.
        proc.kill()

    def kill_web(self, i: int = 0, sig: int = signal.SIGKILL) -> None:
        """Kill web process `i` (all its process group)."""
        self.webs[i].kill(sig)

    def close(self) -> None:
        """Disconnect clients, then stop every process at once, sharing one grace period."""
        for client in self._clients:
            # Teardown must go on whatever a client does.
            with contextlib.suppress(Exception):
                client.disconnect()
        self._clients.clear()
        processes.close_all([*self.beats, *self.workers, *self.webs])
        if hasattr(self, "_engine"):
            self._engine.dispose()

    # --- access ----------------------------------------------------------------

    def base_url(self, i: int = 0) -> str:
        """Return http://127.0.0.1:<port> of web process `i`."""
        return f"http://127.0.0.1:{self.web_ports[i]}"

    def api(self, i: int = 0, token: str | None = None) -> Api:
        """Return an Api client for web process `i`."""
        return Api(self.base_url(i), token)

    def live(
        self, token: str | None, i: int = 0, connect: bool = True, **kwargs: Any
    ) -> LiveClient:
        """Return a LiveClient on web `i`, connected unless told not to; closed at teardown."""
        client = LiveClient(self.base_url(i), token, **kwargs)
        self._clients.append(client)
        return client.connect() if connect else client

    def create_admin(self, locale: str = "en") -> Account:
        """Make an admin with the real CLI command, then sign in through the API."""
        email = unique_email("admin")
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "create-admin", "--email", email,
             "--name", "Admin", "--password", DEFAULT_PASSWORD, "--locale", locale],
            cwd=self.cwd, env=self.env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        tokens = self.api().post(
            "/api/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}
        )
        assert tokens.status_code == 200, tokens.text
        me = self.api(token=tokens.json()["access_token"]).get("/api/users/me").json()
        body = tokens.json()
        return Account(me, body["access_token"], body["refresh_token"], email, DEFAULT_PASSWORD)

    def engine(self) -> Engine:
        """A direct connection to the stack's database, to check what was stored."""
        if not hasattr(self, "_engine"):
            self._engine = create_engine(self.database_url)
        return self._engine

    def logs(self) -> str:
        """Return every process log, labelled, for assertion messages."""
        return "\n".join(p.log_tail(200) for p in [*self.webs, *self.workers, *self.beats])
