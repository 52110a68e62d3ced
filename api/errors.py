"""Problem Details (RFC 9457) for every error the API returns.

A 422 lists each bad field with its JSON path (``["body", "lat"]``) or, for an uploaded file,
the file, row and column, the same words the command line prints.

``title`` and ``detail`` (and each field's ``message``) are in the caller's language, from its
``Accept-Language`` (Chinese when it names nothing else, :func:`matcher.i18n.negotiate`);
``type``, ``code`` and each field's ``type`` are for programs and never translated.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from matcher import i18n
from matcher.errors import InputError
from matcher.i18n import N_, _

log = logging.getLogger("api.errors")

PROBLEM = "application/problem+json"
TITLES = {400: N_("Bad request"), 401: N_("Not authenticated"), 403: N_("Forbidden"),
          404: N_("Not found"), 409: N_("Conflict"), 413: N_("Too large"),
          422: N_("Invalid input"), 429: N_("Too many requests"), 500: N_("Internal error"),
          405: N_("Method not allowed"), 501: N_("Not available here"),
          503: N_("Unavailable")}
# The code of a problem raised without one of its own: stable, for programs to branch on.
CODES = {400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "invalid_input",
         429: "too_many_requests", 500: "internal_error", 501: "not_implemented",
         503: "unavailable"}


# A client's own request id is kept only if it is short and plain (it goes into logs).
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class ProblemDetails(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = Field(examples=["https://linli.example/problems/422"])
    code: str = Field(description="what went wrong, for programs (never translated)",
                      examples=["invalid_input"])
    title: str = Field(description="in the caller's language (Accept-Language; Chinese by "
                       "default)", examples=["填写有误"])
    status: int = Field(examples=[422])
    detail: str = Field(description="in the caller's language",
                        examples=["body.password：至少要 8 个字"])
    instance: str = Field(description="the path that was requested", examples=["/v1/me/tasks"])
    errors: list[dict[str, Any]] | None = Field(
        None, description="each bad field: its JSON path (or file, row and column) and why")
    request_id: str | None = Field(None, description="quote it when reporting a problem; the "
                                   "server's log has the same id")


# The errors any operation may answer with, documented once for the whole API.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": TITLES[status], "content": {PROBLEM: {
        "schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}
    for status in (400, 401, 403, 404, 409, 422, 500)}


# Codes a sentence names (a job's, an event's or a redemption's status, a role), marked so the
# catalog gives each its words; :func:`label` shows one in the current language.
WORDS = (N_("dead"), N_("delivered"), N_("refused"), N_("coordinator"), N_("organiser"),
         N_("volunteer"), N_("merchant"), N_("grid_worker"))
# The details Starlette and FastAPI raise themselves, which :func:`install` looks up.
FRAMEWORK_DETAILS = (N_("Not Found"), N_("Method Not Allowed"),
                     N_("There was an error parsing the body"))


def framework_detail(detail: str) -> str:
    """A detail Starlette or FastAPI raised, in the current language: the catalog's words for
    the fixed ones (:data:`FRAMEWORK_DETAILS`); the others (a multipart body it could not read,
    with its sizes and counts) in a sentence of ours around the framework's English."""
    if detail in FRAMEWORK_DETAILS or i18n.current() == "en":
        return _(detail)
    return _("the request could not be read ({why})").format(why=detail)


def label(code: str) -> str:
    """A code (a state, a status, a role) as a person reads it inside a sentence, in the current
    language: English is the code in words, Chinese the catalog's."""
    if i18n.current() == "en":
        return code.replace("_", " ")
    return _(code)


class Problem(Exception):  # noqa: N818 - "raise Problem(404, ...)" reads as the RFC says
    """Raise to answer with a problem document: ``Problem(409, _("week {week} is over")
    .format(week=week), code="week_over")``. The detail is read by a person, so it is written
    in English, translated, then filled in (``tests/api/test_errors.py`` checks every raise in
    ``api/``); ``code`` is for programs that branch on the case."""

    def __init__(self, status: int, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers
        self.code = code


def request_id(request: Request) -> str | None:
    """The id :class:`RequestIdMiddleware` gave this request."""
    rid = request.scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


def problem_response(status: int, detail: str, instance: str,
                     errors: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None,
                     rid: str | None = None, code: str | None = None) -> JSONResponse:
    """The problem document, its title in the current language (:func:`matcher.i18n.use`);
    ``detail`` comes translated by whoever raised it."""
    body: dict[str, Any] = {
        "type": f"https://linli.example/problems/{status}",
        "code": code or CODES.get(status, "error"),
        "title": _(TITLES[status]) if status in TITLES else _("Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    if rid:
        body["request_id"] = rid
    headers = {"Content-Language": i18n.current().replace("_", "-"), **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def input_error_items(exc: InputError) -> list[dict[str, Any]]:
    """Each :class:`DataIssue` as a problem ``errors`` item."""
    items = []
    for issue in exc.issues:
        english = i18n.current() == "en"
        template = _(issue.template or issue.message)
        message = template.format(**dict(issue.args)) if issue.args else template
        item: dict[str, Any] = {"file": issue.file, "row": issue.row, "column": issue.column,
                                "value": issue.value,
                                "message": issue.message if english else message,
                                "detail": str(issue) if english else issue.localised()}
        if issue.file == "body" and issue.column:  # a JSON body: the path of the field
            item["path"] = ["body", issue.column]
        items.append(item)
    return items


class RequestIdMiddleware:
    """Gives every request an id (the client's ``X-Request-ID`` if sane, else a new one), sends
    it back as ``X-Request-ID`` on every response, and turns anything uncaught into a logged
    problem+json 500 carrying that id, never a bare text body or a reset connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                      if k == b"x-request-id"), "")
        rid = given if _SANE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request %s %s %s failed", rid, scope.get("method"),
                          scope.get("path"))
            if started:  # too late for a problem document: end the body cleanly
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            response = problem_response(
                500, _("an internal error occurred; quote request id {rid} when reporting it")
                .format(rid=rid),
                str(scope.get("path", "")), rid=rid)
            await response(scope, receive, send_with_id)


def _nul_path(value: Any, path: list[str | int]) -> list[str | int] | None:
    """Where in a decoded JSON document a string holds a NUL character, if anywhere."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return [*path, key]
        found = _nul_path(item, [*path, key])
        if found is not None:
            return found
    return None


def _nul_field(encoded: bytes, part: str) -> list[str | int] | None:
    """Which field of a query string or form holds a NUL character, if any."""
    for name, value in parse_qsl(encoded.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return [part, name.replace("\x00", "")]
    return None


class NulGuardMiddleware:
    """Refuses text holding a NUL character anywhere in a request (path, query, headers, JSON
    body) with a 422: no person types one, and PostgreSQL cannot store or even compare it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where: list[str | int] | None = None
        message = _("contains a NUL character")
        if "\x00" in scope["path"]:
            where = ["path"]
        where = where or _nul_field(scope.get("query_string", b""), "query")
        for name, value in scope.get("headers", ()):
            if where is None and b"\x00" in value:
                where = ["header", name.decode("latin-1")]
        content_type = dict(scope.get("headers", ())).get(b"content-type", b"")
        if where is None and b"json" in content_type:
            body, receive = await _buffered(receive)
            try:
                where = _nul_path(json.loads(body), ["body"])
            except ValueError:  # not JSON after all: the route's validation says so
                where = None
            except RecursionError:
                where, message = ["body"], _("is nested too deeply")
        elif where is None and content_type.startswith(b"application/x-www-form-urlencoded"):
            body, receive = await _buffered(receive)
            where = _nul_field(body, "body")
        if where is None:
            await self.app(scope, receive, send)
            return
        state = scope.get("state", {})
        response = problem_response(
            422, _("{where}: {message}").format(where=".".join(map(str, where)),
                                                message=message),
            str(scope["path"]).replace("\x00", ""),
            [{"path": where, "message": message}],
            rid=state.get("request_id") if isinstance(state, dict) else None)
        await response(scope, receive, send)


class LanguageMiddleware:
    """Answers in the caller's language: everything below it (routes, services, the problem
    handlers) translates into what the request's ``Accept-Language`` negotiates, Chinese when it
    names nothing we have (:func:`matcher.i18n.use`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                       if k == b"accept-language"), None)
        with i18n.use(i18n.negotiate(header)):
            await self.app(scope, receive, send)


# What pydantic's common complaints say to a person; the ctx of the error fills the blanks.
# A type not listed keeps pydantic's English message.
VALIDATION_MESSAGES = {
    "missing": N_("Field required"),
    "string_too_short": N_("should have at least {min_length} characters"),
    "string_too_long": N_("should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("is not in the expected form"),
    "string_type": N_("should be text"),
    "int_parsing": N_("should be a whole number"),
    "int_type": N_("should be a whole number"),
    "int_from_float": N_("should be a whole number"),
    "float_parsing": N_("should be a number"),
    "float_type": N_("should be a number"),
    "finite_number": N_("should be a finite number"),
    "bool_parsing": N_("should be true or false"),
    "bool_type": N_("should be true or false"),
    "greater_than": N_("should be greater than {gt}"),
    "greater_than_equal": N_("should be at least {ge}"),
    "less_than": N_("should be less than {lt}"),
    "less_than_equal": N_("should be at most {le}"),
    "enum": N_("should be one of {expected}"),
    "literal_error": N_("should be one of {expected}"),
    "too_short": N_("should have at least {min_length} item(s)"),
    "too_long": N_("should have at most {max_length} item(s)"),
    "json_invalid": N_("is not valid JSON ({error})"),
    "json_type": N_("is not valid JSON"),
    "list_type": N_("should be a list"),
    "dict_type": N_("should be an object"),
    "model_attributes_type": N_("should be an object"),
    "model_type": N_("should be an object"),
    "date_parsing": N_("should be a date like 2026-11-23"),
    "date_from_datetime_parsing": N_("should be a date like 2026-11-23"),
    "date_type": N_("should be a date like 2026-11-23"),
    "time_parsing": N_("should be a time like 08:30"),
    "datetime_parsing": N_("should be a date and time like 2026-11-23T08:30:00+08:00"),
    "datetime_from_date_parsing": N_("should be a date and time like "
                                     "2026-11-23T08:30:00+08:00"),
    "datetime_type": N_("should be a date and time like 2026-11-23T08:30:00+08:00"),
    "extra_forbidden": N_("is not a field here"),
    "value_error": N_("Value error, {reason}"),
    "uuid_parsing": N_("should be an id like 123e4567-e89b-12d3-a456-426614174000"),
}


def validation_message(error: Any) -> str:
    """One of pydantic's errors in the current language: English is pydantic's own words, so
    what programs and tests saw before stays; other languages use :data:`VALIDATION_MESSAGES`."""
    msg = str(error.get("msg", ""))
    template = VALIDATION_MESSAGES.get(str(error.get("type", "")))
    if i18n.current() == "en" or template is None:
        return msg
    ctx = {k: str(v) for k, v in (error.get("ctx") or {}).items()}
    if error.get("type") == "value_error":
        ctx = {"reason": _(msg.removeprefix("Value error, "))}
    try:
        return _(template).format(**ctx)
    except (KeyError, IndexError, ValueError):  # a ctx other than pydantic's usual one
        return msg


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it on again."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"", receive
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json, give each request an id,
    and document the problem document in the OpenAPI schema."""
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(RequestIdMiddleware)  # every answer gets its id
    app.add_middleware(LanguageMiddleware)  # outermost: even a 500 is in the caller's language
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {})["ProblemDetails"] = \
                ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        # A detail raised as a fixed English message is looked up once more here, so one written
        # before its route translated it still reads in the caller's language.
        return problem_response(exc.status, _(exc.detail), request.url.path, exc.errors,
                                exc.headers, request_id(request), exc.code)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        return problem_response(422, _("{n} problem(s) in the input; nothing was saved").format(
            n=len(exc.issues)), request.url.path, input_error_items(exc),
            rid=request_id(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"path": list(e["loc"]), "message": validation_message(e), "type": e["type"]}
                  for e in exc.errors()]
        where = [_("{where}: {message}").format(where=".".join(str(p) for p in e["path"]),
                                                message=e["message"]) for e in errors[:5]]
        return problem_response(422, ("; " if i18n.current() == "en" else "；").join(where),
                                request.url.path, errors, rid=request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, framework_detail(str(exc.detail)),
                                request.url.path, headers=headers, rid=request_id(request))
