"""Parsing a Web API request as Slack does: form-encoded, multipart or JSON bodies, the token from the
Authorization header or the `token` argument, JSON-encoded fields (`blocks`, `view`, ...) decoded to structures.
Malformed input raises ValueError (or `ApiError`), which the fake API answers as Slack would.
"""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from devkit.fake_slack.records import ApiError

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment

# Form fields WebClient serialises to JSON strings; decoded so `args[...]` is always the structure.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "unfurls")


def read_body(environ: WSGIEnvironment) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            fields[str(name)] = payload
        else:
            fields[str(name)] = payload.decode("utf-8", errors="replace")
    return fields


def parse_args(environ: WSGIEnvironment, body: bytes) -> dict[str, Any]:
    """Merge query string and body (JSON, form or multipart) into one args dict, like Slack does."""
    args: dict[str, Any] = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    content_type = environ.get("CONTENT_TYPE", "") or ""
    if body:
        if content_type.startswith("application/json"):
            decoded = json.loads(body.decode("utf-8"))
            if not isinstance(decoded, dict):
                raise ApiError("invalid_json")
            args.update(decoded)
        elif content_type.startswith("multipart/form-data"):
            args.update(_parse_multipart(content_type, body))
        else:
            args.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for name in _JSON_FIELDS:
        value = args.get(name)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                args[name] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ApiError("invalid_blocks" if name == "blocks" else "invalid_arguments") from exc
    return args


def bearer_token(environ: WSGIEnvironment, args: dict[str, Any]) -> str | None:
    # Slack still accepts a `token` argument in the body; older clients send it that way. Popped either way, so
    # recorded args never hold a token (slack_sdk sends the app-level token in both places).
    token = args.pop("token", None)
    header = environ.get("HTTP_AUTHORIZATION", "") or ""
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return str(token) if token else None
