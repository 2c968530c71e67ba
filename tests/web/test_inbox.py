"""The inbox page and the npm files it is allowed to serve, with and without `make jsdeps`."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from web import inbox


@pytest.fixture
def client() -> FlaskClient:
    app = Flask(__name__)
    app.register_blueprint(inbox.bp)
    return app.test_client()


@pytest.fixture
def without_npm_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine where `make jsdeps` could not run (no npm)."""
    monkeypatch.setitem(inbox.VENDOR, "socket.io-client", tmp_path / "socket.io-client")
    monkeypatch.setitem(inbox.VENDOR, "swagger-ui-dist", tmp_path / "swagger-ui-dist")


@pytest.mark.skipif(not inbox.socket_io_installed(), reason="make jsdeps has not run")
def test_the_page_loads_the_official_client_from_node_modules(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert f'data-socket-io="{inbox.SOCKET_IO_MODULE}"' in page
    assert "install-hint" not in page
    module = client.get(inbox.SOCKET_IO_MODULE)
    assert module.status_code == 200 and module.mimetype == "text/javascript"


@pytest.mark.usefixtures("without_npm_packages")
def test_without_npm_the_page_says_how_to_get_it(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'data-socket-io=""' in page
    assert "make jsdeps" in page and "REST API" in page
    stub = client.get("/vendor/swagger-ui-dist/swagger-ui-bundle.js").get_data(as_text=True)
    assert "make jsdeps" in stub and "/api/openapi.json" in stub


@pytest.mark.parametrize(
    "path",
    [
        "/vendor/left-pad/index.js",
        "/vendor/socket.io-client/../package.json",
        "/vendor/socket.io-client/%2e%2e/package.json",
        "/vendor/swagger-ui-dist/../../../../etc/passwd",
    ],
)
def test_nothing_outside_the_allowed_folders_is_served(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404
