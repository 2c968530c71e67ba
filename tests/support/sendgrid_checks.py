"""The checks SendGrid's v3 mail/send applies to a request body, and its error shape."""

from __future__ import annotations

import re
from typing import Any

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ORDER_MESSAGE = (
    "If present, text/plain must be first, followed by text/html, followed by any other content."
)


def error(message: str, field_name: str | None = None) -> dict[str, Any]:
    """SendGrid's error body."""
    return {"errors": [{"message": message, "field": field_name, "help": None}]}


def validate(body: Any) -> dict[str, Any] | None:
    """Check a mail/send body the way SendGrid does; the 400 body, or None when valid."""
    if not isinstance(body, dict):
        return error("Bad Request")
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return error("You must have at least one personalization.", "personalizations")
    for i, p in enumerate(personalizations):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to:
            return error(
                "The to parameter is required for all personalization objects.",
                f"personalizations.{i}.to",
            )
        for j, r in enumerate(to):
            if not isinstance(r, dict) or not EMAIL_RE.match(str(r.get("email", ""))):
                return error(
                    "Does not contain a valid address.", f"personalizations.{i}.to.{j}.email"
                )
    sender = body.get("from")
    if not isinstance(sender, dict) or not EMAIL_RE.match(str(sender.get("email", ""))):
        return error("The from object must be provided for every email send.", "from")
    subjects = [body.get("subject")] + [p.get("subject") for p in personalizations]
    if not body.get("subject") and not all(p.get("subject") for p in personalizations):
        return error("The subject is required.", "subject")
    if any(isinstance(s, str) and ("\r" in s or "\n" in s) for s in subjects):
        return error("The subject may not contain line breaks.", "subject")
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return error(
            "Unless a valid template_id is provided, the content parameter is required.", "content"
        )
    types = [c.get("type") if isinstance(c, dict) else None for c in content]
    for k, c in enumerate(content):
        if not isinstance(c, dict) or not isinstance(c.get("value"), str) or not c["value"]:
            return error(
                "The content value must be a string at least one character in length.",
                f"content.{k}.value",
            )
    if len(set(types)) != len(types):
        return error("If present, text/plain and text/html may only be provided once.", "content")
    # text/plain first, then text/html, then anything else.
    html_at = int("text/plain" in types)
    if ("text/plain" in types and types[0] != "text/plain") or (
        "text/html" in types and types.index("text/html") != html_at
    ):
        return error(ORDER_MESSAGE, "content")
    headers = body.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return error("Headers must be strings.", "headers")
    args = body.get("custom_args", {})
    if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
        return error("Custom args must be strings.", "custom_args")
    return None
