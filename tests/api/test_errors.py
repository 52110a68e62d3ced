"""Every error is problem+json: an uncaught exception becomes a logged 500 with a request id,
and every response carries its request id."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    settings = ApiSettings(database_url=f"sqlite:///{tmp_path / 'linli.db'}",
                           secret_key="test-secret-key-0123456789abcdef", run_workers=False)
    app = create_app(settings)

    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError("a bug the tests planted")

    @app.get("/test-only/boom-async")
    async def boom_async() -> None:
        raise KeyError("planted")

    yield app


def test_an_uncaught_exception_is_a_logged_problem_500_with_the_request_id(
        app: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(app) as client, caplog.at_level(logging.ERROR, logger="api.errors"):
        for path in ("/test-only/boom", "/test-only/boom-async"):
            caplog.clear()
            response = client.get(path)
            assert response.status_code == 500
            assert response.headers["content-type"] == PROBLEM_JSON
            body = response.json()
            rid = response.headers["x-request-id"]
            assert body["status"] == 500 and body["request_id"] == rid and body["instance"] == path
            assert rid in body["detail"]
            assert "planted" not in response.text  # no internals leak to the client
            assert rid in caplog.text and "planted" in caplog.text  # the log has both
            assert caplog.records[-1].exc_info is not None  # with the traceback


def test_every_response_carries_a_request_id(app: FastAPI) -> None:
    with TestClient(app) as client:
        ok = client.get("/health")
        assert ok.status_code == 200 and len(ok.headers["x-request-id"]) == 32
        assert client.get("/health").headers["x-request-id"] != ok.headers["x-request-id"]
        mine = client.get("/health", headers={"X-Request-ID": "trace-42.a"})
        assert mine.headers["x-request-id"] == "trace-42.a"  # a sane id is kept
        odd = client.get("/health", headers={"X-Request-ID": "x" * 65})
        assert odd.headers["x-request-id"] != "x" * 65  # an insane one is replaced
        spaced = client.get("/health", headers={"X-Request-ID": "a b"})
        assert spaced.headers["x-request-id"] != "a b"
        unauthorised = client.get("/v1/me", headers={"X-Request-ID": "trace-43"})
        assert unauthorised.status_code == 401
        assert unauthorised.json()["request_id"] == "trace-43"
        assert unauthorised.headers["x-request-id"] == "trace-43"


def test_the_openapi_document_describes_the_problem_responses(app: FastAPI) -> None:
    with TestClient(app) as client:
        spec = client.get("/openapi.json").json()
    assert "ProblemDetails" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "403", "404", "409", "422", "500"):
                content = operation["responses"][status]["content"]
                assert content == {PROBLEM_JSON: {"schema": {
                    "$ref": "#/components/schemas/ProblemDetails"}}}, (method, path, status)
