"""Domain errors, each carrying the HTTP status and code the API reports them with."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refused operation, with a stable machine-readable code and a human message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class NotFound(DomainError):
    """The resource does not exist, or belongs to someone else."""

    status = 404
    code = "not_found"


class Unauthorized(DomainError):
    """No valid credentials."""

    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    """Valid credentials without the right role."""

    status = 403
    code = "forbidden"


class Unprocessable(DomainError):
    """Well-formed input asking for what cannot be done (an unknown type, a required one off)."""

    status = 422
    code = "unprocessable"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate email, illegal transition)."""

    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    """A state change the lifecycle does not allow."""

    code = "invalid_transition"


class InsufficientFunds(Conflict):
    """The balance cannot cover the amount."""

    code = "insufficient_funds"
