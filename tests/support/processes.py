"""Start the app's real processes (gunicorn, celery worker, celery beat) with logs on disk."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from mirakuru import Executor, HTTPExecutor, SimpleExecutor, TCPExecutor
from mirakuru.exceptions import AlreadyRunning, ExecutorError

from tests.support.environment import is_app_setting
from tests.support.paths import REPO_ROOT

START_TIMEOUT = float(os.environ.get("TEST_PROCESS_START_TIMEOUT", "60"))
STOP_GRACE = 10.0
WORKER_CLOSE_GRACE = 0.3


class _CleanEnvMixin:
    """Start the child from os.environ minus stray app settings, plus the explicit ones."""

    _envvars: dict[str, str]

    @property
    def envvars(self) -> dict[str, str]:
        """Return the environment the child process starts with."""
        env = super().envvars  # type: ignore[misc]
        for name in list(env):
            if is_app_setting(name) and name not in self._envvars:
                del env[name]
        return env


class _LogReadyExecutor(_CleanEnvMixin, Executor):
    """Executor that is ready once a regex shows up in its log file."""

    def __init__(self, command: list[str], log_path: Path, ready: str, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self._log_path = log_path
        self._ready = re.compile(ready)

    def pre_start_check(self) -> bool:
        """Nothing identifies a previous instance, so always start."""
        return False

    def after_start_check(self) -> bool:
        """Look for the ready pattern in what the process has logged so far."""
        try:
            return bool(self._ready.search(self._log_path.read_text(errors="replace")))
        except FileNotFoundError:
            return False


class _CleanHTTPExecutor(_CleanEnvMixin, HTTPExecutor):
    """HTTPExecutor with a clean app environment."""


class _CleanTCPExecutor(_CleanEnvMixin, TCPExecutor):
    """TCPExecutor with a clean app environment."""


class ManagedProcess:
    """One real child process (its own process group) with its log file."""

    def __init__(
        self,
        name: str,
        executor: Executor,
        log_path: Path,
        log_file: IO[str],
        close_signal: int = signal.SIGTERM,
        close_grace: float = STOP_GRACE,
    ) -> None:
        self.name = name
        self.executor = executor
        self.log_path = log_path
        self._log_file = log_file
        # What close() sends first, and how long it then waits before SIGKILL; stop() always
        # asks with SIGTERM and waits its own grace.
        self.close_signal = close_signal
        self.close_grace = close_grace

    @property
    def pid(self) -> int | None:
        """Return the main process id, or None when not running."""
        proc = self.executor.process
        return proc.pid if proc is not None else None

    def running(self) -> bool:
        """Tell whether the main process is alive."""
        return self.executor.running()

    def log_text(self) -> str:
        """Return everything the process has logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> ManagedProcess:
        """Start the process and wait until it is ready, failing with its log tail."""
        return self.spawn().wait_ready()

    def spawn(self) -> ManagedProcess:
        """Start the process without waiting for it: wait_ready() later, so starts overlap."""
        try:
            if self.executor.pre_start_check():
                # Something already answers where this process would (a port reused too soon).
                raise AlreadyRunning(self.executor)
            SimpleExecutor.start(self.executor)  # Popen; the start timeout begins now
        except ExecutorError as exc:
            self.kill()
            raise RuntimeError(f"{self.name} failed to start: {exc}\n{self.log_tail()}") from exc
        return self

    def wait_ready(self) -> ManagedProcess:
        """Wait until the spawned process is ready (mirakuru's check), failing with its log."""
        try:
            self.executor.wait_for(self.executor.check_subprocess)
        except ExecutorError as exc:
            self.kill()
            raise RuntimeError(f"{self.name} failed to start: {exc}\n{self.log_tail()}") from exc
        return self

    def log_tail(self, lines: int = 60) -> str:
        """Return the last lines of the log, labelled, for error messages."""
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    def send_signal(self, sig: int, group: bool = True) -> None:
        """Send a signal to the whole process group, or only to the main process."""
        pid = self.pid
        if pid is None:
            return
        try:
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> bool:
        """Wait for the main process to exit; tell whether it did."""
        proc = self.executor.process
        if proc is None:
            return True
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the process group and every child marked by mirakuru, then reap."""
        # mirakuru.kill() sends to the group and also finds children that left it.
        self.executor.kill(sig=sig)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Ask politely with SIGTERM, then SIGKILL whatever is left after the grace period."""
        if self.running():
            self.send_signal(signal.SIGTERM)
            self.wait(grace)
        self.kill()

    def close(self, grace: float = STOP_GRACE) -> None:
        """Stop the process for good and close its log file."""
        close_all([self], grace)


def close_all(procs: Iterable[ManagedProcess], grace: float = STOP_GRACE) -> None:
    """Stop several processes for good at once: each its close_signal and grace, then SIGKILL.

    Like ManagedProcess.stop(), but the waits overlap, so closing a whole stack takes as long
    as its slowest process, not the sum of them all. `grace` caps each process's own.
    """
    procs = list(procs)
    for proc in procs:
        if proc.running():
            proc.send_signal(proc.close_signal)
    started = time.monotonic()
    for proc in procs:
        deadline = started + min(grace, proc.close_grace)
        proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        proc.kill()
        # The file stays open across stop()/start() so a restarted server keeps logging.
        proc._log_file.close()


def _open_log(log_dir: Path, name: str) -> tuple[Path, IO[str]]:
    """Open (append) the log file for one process."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{name}.log"
    return path, path.open("a", buffering=1)


def _common_kwargs(env: dict[str, str], log_file: IO[str], cwd: Path) -> dict[str, Any]:
    """Return executor arguments shared by all app processes."""
    return {
        "cwd": str(cwd),
        # Unbuffered so logs are complete when a process is SIGKILLed and ready lines show up.
        "envvars": {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(cwd), **env},
        "timeout": START_TIMEOUT,
        "stdin": subprocess.DEVNULL,
        "stdout": log_file,
        "stderr": subprocess.STDOUT,
    }


def start_web(
    env: dict[str, str],
    port: int,
    log_dir: Path,
    name: str = "web",
    cwd: Path = REPO_ROOT,
    wait: bool = True,
) -> ManagedProcess:
    """Run gunicorn on `port` and wait until GET /health answers with any status.

    With wait=False the process is only spawned: call wait_ready() on it (as for the others).
    """
    log_path, log_file = _open_log(log_dir, name)
    executor = _CleanHTTPExecutor(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        url=f"http://127.0.0.1:{port}/health",
        status=r"^\d{3}$",
        method="GET",
        request_timeout=5,
        **_common_kwargs({**env, "PORT": str(port)}, log_file, cwd),
    )
    # Closed with gunicorn's quick shutdown (QUIT): on TERM it waits for every idle keep-alive
    # connection (keepalive, 5 s) and open socket (graceful_timeout, 25 s) a test left behind,
    # and what the tests check is never how the web process stops. Its log still ends cleanly.
    proc = ManagedProcess(name, executor, log_path, log_file, close_signal=signal.SIGQUIT)
    return _launch(proc, wait)


def _launch(proc: ManagedProcess, wait: bool) -> ManagedProcess:
    """Start `proc` and wait until it is ready, or (wait=False) only spawn it."""
    return proc.start() if wait else proc.spawn()


def start_worker(
    env: dict[str, str],
    name: str,
    log_dir: Path,
    queues: str = "realtime,email,messengers,maintenance",
    concurrency: int = 2,
    extra_args: tuple[str, ...] = ("--without-mingle", "--without-gossip"),
    cwd: Path = REPO_ROOT,
    wait: bool = True,
) -> ManagedProcess:
    """Run a celery worker and wait for its "<name>@host ready." log line."""
    log_path, log_file = _open_log(log_dir, name)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "worker",
        "-Q",
        queues,
        "--loglevel=INFO",
        "-n",
        f"{name}@%h",
        f"--concurrency={concurrency}",
        # Mingle/gossip only slow start-up and make workers of other runs talk to ours.
        *extra_args,
    ]
    executor = _LogReadyExecutor(
        command,
        log_path,
        ready=rf"{re.escape(name)}@\S+ ready\.",
        **_common_kwargs(env, log_file, cwd),
    )
    # Closed after a short grace: a prefork worker's warm (or cold) shutdown waits ~2 s for its
    # pool processes, which poll their queue once a second, and every integration test closes
    # one or more workers. What a test checks is never how a worker closes (tests of stopping
    # call stop()); a task it leaves half done is the next test's to ignore (make_stack).
    proc = ManagedProcess(name, executor, log_path, log_file, close_grace=WORKER_CLOSE_GRACE)
    return _launch(proc, wait)


def start_beat(
    env: dict[str, str],
    schedule_file: Path,
    log_dir: Path,
    name: str = "beat",
    cwd: Path = REPO_ROOT,
    wait: bool = True,
) -> ManagedProcess:
    """Run celery beat with its schedule file in a temp dir and wait for it to start."""
    log_path, log_file = _open_log(log_dir, name)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app",
        "beat",
        "--loglevel=INFO",
        "-s",
        str(schedule_file),
    ]
    executor = _LogReadyExecutor(
        command, log_path, ready=r"beat: Starting\.\.\.", **_common_kwargs(env, log_file, cwd)
    )
    return _launch(ManagedProcess(name, executor, log_path, log_file), wait)


def start_tcp_server(
    command: list[str], port: int, log_dir: Path, name: str, env: dict[str, str] | None = None
) -> ManagedProcess:
    """Run any TCP server (redis-server, a fake SendGrid…) and wait for its port."""
    log_path, log_file = _open_log(log_dir, name)
    executor = _CleanTCPExecutor(
        command,
        host="127.0.0.1",
        port=port,
        **{**_common_kwargs(env or {}, log_file, REPO_ROOT), "timeout": 20},
    )
    return ManagedProcess(name, executor, log_path, log_file).start()
