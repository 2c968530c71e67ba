"""The inbox page at `/`, and the browser libraries it needs from `frontend/node_modules`."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, render_template, send_from_directory
from werkzeug.security import safe_join

from core.settings import ROOT

NODE_MODULES = ROOT / "frontend" / "node_modules"
# Only these packages' files are served, each from its own folder: nothing else in node_modules.
VENDOR = {
    "socket.io-client": NODE_MODULES / "socket.io-client" / "dist",
    "swagger-ui-dist": NODE_MODULES / "swagger-ui-dist",
}
SOCKET_IO_MODULE = "/vendor/socket.io-client/socket.io.esm.min.js"
HOW_TO_INSTALL = (
    "Live updates need the socket.io-client package from the npm registry: install Node.js "
    "with npm (https://nodejs.org, or `apt-get install npm`), then run `make jsdeps` and reload. "
    "Until then this page polls the REST API, which works without it."
)
# Stands in for Swagger UI's scripts when they are missing, so /api/docs says what to do.
MISSING_SWAGGER_JS = """window.SwaggerUIBundle = function () {
  document.body.innerHTML = '<p style="font:16px sans-serif;margin:2em">Swagger UI is not '
    + 'installed: run <code>make jsdeps</code> (needs npm). The OpenAPI document itself is at '
    + '<a href="/api/openapi.json">/api/openapi.json</a>.</p>';
};
window.SwaggerUIBundle.presets = {apis: null};
"""

bp = Blueprint(
    "inbox",
    __name__,
    static_folder="static",
    static_url_path="/inbox/static",
    template_folder="templates",
)


def socket_io_installed() -> bool:
    """Whether `make jsdeps` has installed the official socket.io-client."""
    return (VENDOR["socket.io-client"] / Path(SOCKET_IO_MODULE).name).is_file()


@bp.route("/")
@bp.route("/settings/notifications")
def page() -> str:
    """The one-page app: the inbox at `/`, notification settings (the emails' footer link)."""
    installed = socket_io_installed()
    return render_template(
        "inbox/index.html",
        socket_io_module=SOCKET_IO_MODULE if installed else "",
        install_hint="" if installed else HOW_TO_INSTALL,
    )


@bp.route("/reset-password")
def reset_password() -> str:
    """Ask for a reset link by email, or, with the link's token, set the new password."""
    return render_template("inbox/reset.html")


@bp.route("/vendor/<package>/<path:filename>")
def vendor(package: str, filename: str) -> Response:
    """A file of an allowed npm package; send_from_directory refuses paths that climb out."""
    folder = VENDOR.get(package)
    path = safe_join(str(folder), filename) if folder is not None else None
    if folder is None or path is None:
        abort(404)
    if not Path(path).is_file():
        if package == "swagger-ui-dist" and filename.endswith(".js"):
            return Response(MISSING_SWAGGER_JS, mimetype="text/javascript")
        abort(404)
    response = send_from_directory(folder, filename, max_age=3600)
    if filename.endswith((".js", ".mjs")):
        # Module scripts must be served as JavaScript, whatever the platform's mime table says.
        response.mimetype = "text/javascript"
    return response
