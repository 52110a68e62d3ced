"""Problem Details (RFC 9457) for every error the API returns.

A 422 lists each bad field with its JSON path (``["body", "lat"]``) or, for an uploaded file,
the file, row and column, the same words the command line prints.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from matcher.errors import InputError

PROBLEM = "application/problem+json"
TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
          409: "Conflict", 413: "Too large", 422: "Invalid input", 429: "Too many requests",
          500: "Internal error"}


class Problem(Exception):  # noqa: N818 - "raise Problem(404, ...)" reads as the RFC says
    """Raise to answer with a problem document: ``Problem(409, "week already published")``."""

    def __init__(self, status: int, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers


def problem_response(status: int, detail: str, instance: str,
                     errors: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://linli.example/problems/{status}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def input_error_items(exc: InputError) -> list[dict[str, Any]]:
    """Each :class:`DataIssue` as a problem ``errors`` item."""
    items = []
    for issue in exc.issues:
        item: dict[str, Any] = {"file": issue.file, "row": issue.row, "column": issue.column,
                                "value": issue.value, "message": issue.message,
                                "detail": str(issue)}
        if issue.file == "body" and issue.column:  # a JSON body: the path of the field
            item["path"] = ["body", issue.column]
        items.append(item)
    return items


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, request.url.path, exc.errors,
                                exc.headers)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        return problem_response(422, f"{len(exc.issues)} problem(s) in the input; nothing was "
                                "saved", request.url.path, input_error_items(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"path": list(e["loc"]), "message": e["msg"], "type": e["type"]}
                  for e in exc.errors()]
        where = "; ".join(f"{'.'.join(str(p) for p in e['path'])}: {e['message']}"
                          for e in errors[:5])
        return problem_response(422, where, request.url.path, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, str(exc.detail), request.url.path,
                                headers=headers)
