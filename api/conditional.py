"""Conditional GETs: an ``ETag`` made from the body itself, and ``304 Not Modified`` when the
client's ``If-None-Match`` names it, so a phone polling its tasks downloads them only when
something it would show changed (a state, a re-plan, at risk, details shown or masked as the
days pass, the language)."""

from __future__ import annotations

import hashlib

from fastapi import Response

# The representation differs by language (labels, problem texts), so caches keep one per.
VARY = "Accept-Language"


def etag(body: bytes) -> str:
    """A strong validator of ``body``: equal exactly when the bytes are."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``tag`` (weak comparison, RFC 9110 13.1.2: a
    ``W/`` prefix is ignored; ``*`` matches any)."""
    if not if_none_match:
        return False
    given = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in given or tag in given


def conditional(body: bytes, media_type: str, if_none_match: str | None) -> Response:
    """``body`` with its ``ETag``, or an empty 304 with the same when the client has it."""
    tag = etag(body)
    headers = {"ETag": tag, "Cache-Control": "private, no-cache", "Vary": VARY}
    if matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
