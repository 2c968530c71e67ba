"""Render the nginx configuration of the web tier (site.conf.j2, nginx.conf.j2) for N processes.

`python -m deploy.nginx.render --listen 80 --web 10.0.0.5:5000 --web 10.0.0.6:5000` prints the
http-level part for a system nginx (/etc/nginx/conf.d/); with `--prefix DIR` it writes a whole
configuration for an nginx run by this user in the foreground, as `make run-scaled` does.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent
# The cookie naming the web process that holds a client's Socket.IO sessions (site.conf.j2).
STICKY_COOKIE = "io_web"
# How long one refused connection keeps a process out of rotation before nginx probes it again.
FAIL_TIMEOUT = "10s"
# Where Debian puts it; /usr/sbin is often not on a normal user's PATH.
DEBIAN_NGINX = Path("/usr/sbin/nginx")
# Debian's nginx logs to stderr until the configuration says otherwise; builds that log to a file
# in /var/log first cannot open it as a normal user, so they are told too (nginx 1.19.5+).
_VERSION = re.compile(r"nginx/(\d+)\.(\d+)\.(\d+)")

_templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)


def render_site(listen: str, servers: Sequence[str], cookie: str = STICKY_COOKIE) -> str:
    """The http-context configuration: the upstream groups, the sticky routing, the server."""
    if not servers:
        raise ValueError("at least one web process address is needed")
    entries = [
        {"id": str(i), "address": address, "pattern": re.escape(address)}
        for i, address in enumerate(servers)
    ]
    return _templates.get_template("site.conf.j2").render(
        listen=listen, servers=entries, cookie=cookie, fail_timeout=FAIL_TIMEOUT
    )


def _user_directive() -> str | None:
    """`user group` of this process when it is root (nginx's workers would be nobody), else None."""
    if os.geteuid() != 0:
        return None
    return f"{pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name}"


def write_standalone(
    prefix: Path, listen: str, servers: Sequence[str], access_log: str = "/dev/stdout"
) -> Path:
    """Write nginx.conf and site.conf under `prefix` for nginx run by this user; return nginx.conf.

    access_log is a path, or "off"; the default joins the web processes' logs on stdout.
    """
    prefix = prefix.resolve()
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / temp).mkdir(parents=True, exist_ok=True)
    site = prefix / "site.conf"
    site.write_text(render_site(listen, servers))
    conf = prefix / "nginx.conf"
    conf.write_text(
        _templates.get_template("nginx.conf.j2").render(
            prefix=prefix,
            site=site,
            user=_user_directive(),
            access_log=access_log,
            cookie=STICKY_COOKIE,
        )
    )
    return conf


def find_nginx() -> Path | None:
    """The nginx binary: $NGINX if set, else nginx on PATH or Debian's /usr/sbin/nginx; or None."""
    if named := os.environ.get("NGINX"):
        candidates = [Path(named)]
    else:
        on_path = shutil.which("nginx")
        candidates = [Path(on_path)] if on_path else []
        candidates.append(DEBIAN_NGINX)
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def nginx_command(nginx: Path, conf: Path) -> list[str]:
    """The command that runs nginx in the foreground on a standalone configuration."""
    command = [str(nginx), "-p", str(conf.parent), "-c", str(conf)]
    # nginx -v answers on stderr.
    version = subprocess.run([str(nginx), "-v"], capture_output=True, text=True, timeout=10).stderr
    if (found := _VERSION.search(version)) and tuple(map(int, found.groups())) >= (1, 19, 5):
        command[1:1] = ["-e", "stderr"]
    return command


def main(argv: list[str] | None = None) -> int:
    """Print the site configuration, or write a standalone one under --prefix."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="nginx's listen: 80, 127.0.0.1:5000…")
    parser.add_argument(
        "--web", action="append", required=True, metavar="IP:PORT",
        help="a web process's IP:port, not a host name (repeat for each, in a fixed order: the "
        "cookie names it by its place)",
    )  # fmt: skip
    parser.add_argument("--prefix", type=Path, help="write a whole configuration here instead")
    args = parser.parse_args(argv)
    if args.prefix is None:
        sys.stdout.write(render_site(args.listen, args.web))
    else:
        print(write_standalone(args.prefix, args.listen, args.web))
    return 0


if __name__ == "__main__":
    sys.exit(main())
