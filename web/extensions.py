"""The Flask extensions, created unbound and bound by `create_app()`."""

from __future__ import annotations

from flask_cors import CORS
from flask_smorest import Api
from flask_socketio import SocketIO

from web.schemas import ErrorOut


class DocumentedApi(Api):
    """flask-smorest's Api, documenting errors in the shape web/errors.py really sends.

    Its default ERROR_SCHEMA ({code: int, status, message, errors}) is only documentation, and
    not the `{"error": {"code", "message", "details"?}}` that every error response carries.
    """

    ERROR_SCHEMA = ErrorOut


api = DocumentedApi()
cors = CORS()
socketio = SocketIO()
