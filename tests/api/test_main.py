"""The app factory: CORS for browser and mini-program clients (LINLI_CORS_ORIGINS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings, cors_origins

ALLOWED = "https://app.example.org"


def _client(tmp_path: Path, origins: str) -> TestClient:
    return TestClient(create_app(ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'linli.db'}", cors_origins=origins,
        secret_key="test-secret-key-0123456789abcdef", run_workers=False)))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path, f"{ALLOWED}/, https://other.example.org") as test_client:
        yield test_client


def _preflight(client: TestClient, origin: str, method: str = "POST") -> object:
    return client.options("/v1/auth/token", headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, authorization"})


def test_a_preflight_from_an_allowed_origin_is_answered(client: TestClient) -> None:
    response = client.options("/v1/me/tasks", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, if-none-match, accept-language"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "GET" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "if-none-match" in allowed


def test_a_preflight_from_another_origin_is_refused(client: TestClient) -> None:
    response = client.options("/v1/me/tasks", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_a_simple_request_from_an_allowed_origin_may_read_the_answer(client: TestClient
                                                                      ) -> None:
    response = client.get("/health", headers={"Origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "etag" in response.headers["access-control-expose-headers"].lower()
    refused = client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in refused.headers
    # An error too, or the page could not read the problem document.
    problem = client.get("/v1/me", headers={"Origin": ALLOWED})
    assert problem.status_code == 401
    assert problem.headers["access-control-allow-origin"] == ALLOWED


def test_no_origin_is_allowed_by_default(tmp_path: Path) -> None:
    with _client(tmp_path, "") as client:
        response = client.options("/v1/me/tasks", headers={
            "Origin": ALLOWED, "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in response.headers
        assert response.status_code == 405


def test_origins_are_read_from_a_comma_separated_list() -> None:
    settings = ApiSettings(cors_origins=" https://a.example/ ,,https://b.example:8443")
    assert cors_origins(settings) == ["https://a.example", "https://b.example:8443"]
    assert cors_origins(ApiSettings()) == []
