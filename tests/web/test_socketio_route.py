"""Socket.IO events run in a request context whose URL matches, so they leave no garbage cycles."""

from __future__ import annotations

from tests.support.app_probe import run_app_probe

PROBE = """
import json
from flask import request
from web import create_app

app = create_app()
seen = {}
upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
for name, headers in (("polling", {}), ("websocket", upgrade)):
    with app.test_request_context("/socket.io/", headers=headers, query_string="EIO=4"):
        seen[name] = repr(request.routing_exception)
print(json.dumps(seen))
"""


def test_the_socket_io_path_matches_a_rule_for_both_transports(redis_url: str) -> None:
    """No NotFound or WebsocketMismatch (with its traceback) is stored per Socket.IO event."""
    seen = run_app_probe(PROBE, redis_url)
    assert seen == {"polling": "None", "websocket": "None"}
