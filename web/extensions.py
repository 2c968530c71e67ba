"""The Flask extensions, created unbound and bound by `create_app()`."""

from __future__ import annotations

from flask_smorest import Api
from flask_socketio import SocketIO

api = Api()
socketio = SocketIO()
