"""nginx from deploy/nginx in front of a test stack's web processes, as `make run-scaled` runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploy.nginx.render import find_nginx, nginx_command, write_standalone
from tests.support.net import free_port
from tests.support.processes import ManagedProcess, start_tcp_server


def nginx_unavailable() -> str | None:
    """Why nginx cannot run here, or None when it can."""
    if find_nginx() is None:
        return "no nginx binary (make nginx installs Debian's with apt-get; or set NGINX to one)"
    return None


@dataclass(frozen=True)
class Balancer:
    """A running nginx: its process (log: requests with the upstream that took each) and URL."""

    process: ManagedProcess
    url: str
    conf: Path


@contextmanager
def running_nginx(
    servers: Sequence[str], workdir: Path, log_dir: Path, access_log: str = "/dev/stdout"
) -> Iterator[Balancer]:
    """Run nginx on a free port in front of `servers` (host:port, in web index order)."""
    nginx = find_nginx()
    if nginx is None:
        raise RuntimeError(nginx_unavailable())
    port = free_port()
    conf = write_standalone(workdir, f"127.0.0.1:{port}", servers, access_log)
    proc = start_tcp_server(nginx_command(nginx, conf), port, log_dir, name="nginx")
    try:
        yield Balancer(proc, f"http://127.0.0.1:{port}", conf)
    finally:
        proc.close()
