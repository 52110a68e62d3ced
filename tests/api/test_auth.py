"""Logging in and bearer tokens: no timing oracle for usernames, throttling, hashing apart from
the route threads, malformed tokens and NUL bytes refused cleanly (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from api import security
from api.settings import ApiSettings
from tests.api.conftest import make_user

PROBLEM_JSON = "application/problem+json"
SECRET = "test-secret-key-0123456789abcdef"


class CountingHasher:
    """The password hasher (cheap Argon2 parameters), counting verifications."""

    def __init__(self) -> None:
        self.inner = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
        self.verified = 0
        self.gate: threading.Event | None = None  # when set, verifications wait for it
        self.waiting = threading.Semaphore(0)

    def hash(self, password: str) -> str:
        return self.inner.hash(password)

    def verify(self, password: str, hashed: str) -> bool:
        self.verified += 1
        if self.gate is not None:
            self.waiting.release()
            assert self.gate.wait(30)
        return self.inner.verify(password, hashed)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(security, "hasher", counting)
    return counting


@pytest.fixture
def settings(database_url: str) -> ApiSettings:
    return ApiSettings(database_url=database_url, secret_key=SECRET, run_workers=False,
                       webhook_url=None, threads=2, password_threads=1)


def _login(client: TestClient, username: str, password: str = "password-123") -> Any:
    return client.post("/v1/auth/token", data={"username": username, "password": password})


def test_an_unknown_username_is_refused_after_a_verification_like_a_known_one(
        client: TestClient, hasher: CountingHasher) -> None:
    make_user(client, "wangfang", "coordinator")
    hasher.verified = 0
    unknown = _login(client, "nobody")
    assert unknown.status_code == 401 and hasher.verified == 1
    wrong = _login(client, "wangfang", "wrong-password")
    assert wrong.status_code == 401 and hasher.verified == 2
    assert unknown.json()["detail"] == wrong.json()["detail"]
    assert _login(client, "wangfang").status_code == 200


def test_failed_logins_are_throttled_per_username_and_per_address(
        client: TestClient, hasher: CountingHasher) -> None:
    make_user(client, "wangfang", "volunteer")
    for _ in range(5):
        assert _login(client, "wangfang", "guess").status_code == 401
    hasher.verified = 0
    blocked = _login(client, "wangfang")  # even the right password, and without hashing it
    assert blocked.status_code == 429 and hasher.verified == 0
    assert blocked.headers["content-type"] == PROBLEM_JSON
    assert 0 < int(blocked.headers["Retry-After"]) <= 300
    # Another username from the same address still may, until the address has failed too often.
    make_user(client, "lilei", "volunteer")
    for n in range(20 - 5):
        assert _login(client, f"someone{n}", "guess").status_code == 401
    assert _login(client, "lilei").status_code == 429


def test_a_success_forgets_the_usernames_failures(client: TestClient,
                                                  hasher: CountingHasher) -> None:
    make_user(client, "wangfang", "volunteer")
    for _ in range(4):
        assert _login(client, "wangfang", "typo").status_code == 401
    assert _login(client, "wangfang").status_code == 200
    for _ in range(4):
        assert _login(client, "wangfang", "typo").status_code == 401
    assert _login(client, "wangfang").status_code == 200


def test_logins_hashing_do_not_take_the_route_threads(client: TestClient,
                                                      hasher: CountingHasher) -> None:
    """With every password thread busy and more logins waiting, other routes still answer
    (before, the logins held all the route threads and everything else waited)."""
    headers = make_user(client, "wangfang", "coordinator")
    hasher.gate = threading.Event()
    threads = client.app.state.settings.threads  # type: ignore[attr-defined]
    with ThreadPoolExecutor(threads + 4) as pool:
        logins = [pool.submit(_login, client, "wangfang") for _ in range(threads + 2)]
        try:
            assert hasher.waiting.acquire(timeout=30)  # a verification is under way
            # Nor do they hold database connections while they wait.
            limiter = client.app.state.password_limiter  # type: ignore[attr-defined]
            deadline = time.monotonic() + 30
            while limiter.statistics().tasks_waiting < len(logins) - 1:
                assert time.monotonic() < deadline, limiter.statistics()
                time.sleep(0.05)
            db = client.app.state.db  # type: ignore[attr-defined]
            assert db.async_engine.pool.checkedout() == 0
            assert db.engine.pool.checkedout() == 0
            health = pool.submit(client.get, "/health")
            me = pool.submit(client.get, "/v1/me", headers=headers)
            volunteers = pool.submit(client.get, "/v1/volunteers", headers=headers)
            assert health.result(timeout=15).status_code == 200
            assert me.result(timeout=15).status_code == 200
            assert volunteers.result(timeout=15).status_code == 200
        finally:
            hasher.gate.set()
        assert [f.result(timeout=60).status_code for f in logins] == [200] * (threads + 2)


def _token(**claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


def test_tokens_signed_with_the_secret_but_malformed_are_401(client: TestClient,
                                                             hasher: CountingHasher) -> None:
    make_user(client, "wangfang", "coordinator")
    me = client.get("/v1/me", headers=_token(sub="1", exp=_soon())).json()
    assert me["username"] == "wangfang"
    for claims in ({"sub": "1"},  # no expiry
                   {"exp": _soon()},  # no subject
                   {"sub": "wangfang", "exp": _soon()},
                   {"sub": "", "exp": _soon()},
                   {"sub": "-1", "exp": _soon()},
                   {"sub": "１", "exp": _soon()},  # a full-width digit
                   {"sub": 1, "exp": _soon()},
                   {"sub": None, "exp": _soon()},
                   {"sub": "99999999999999999999", "exp": _soon()},  # beyond any id
                   {"sub": "9" * 5000, "exp": _soon()},  # beyond Python's int() of a str
                   {"sub": "424242", "exp": _soon()},  # nobody
                   {"sub": "1", "exp": "tomorrow"},
                   {"sub": "1", "exp": [1]},
                   {"sub": "1", "exp": _soon(), "nbf": _soon()}):
        response = client.get("/v1/me", headers=_token(**claims))
        assert response.status_code == 401, (claims, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["WWW-Authenticate"] == "Bearer"


def _soon() -> int:
    return int((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).timestamp())


def test_nul_bytes_in_a_login_are_refused_not_a_server_error(client: TestClient,
                                                             hasher: CountingHasher) -> None:
    make_user(client, "wangfang", "volunteer")
    for username, password in (("wang\x00fang", "password-123"), ("\x00", "x"),
                               ("wangfang", "password-123\x00"), ("wangfang", "\x00")):
        response = _login(client, username, password)
        # Refused before any query or hashing: the request guard names the NUL (422).
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
    assert _login(client, "wangfang").status_code == 200
    nul_token = client.get("/v1/me", headers={"Authorization": "Bearer a\x00b"})
    assert nul_token.status_code == 422  # the guard names the NUL in the header


def test_a_json_login_works_like_the_form(client: TestClient, hasher: CountingHasher) -> None:
    """What a mini program's wx.request sends: a JSON body, on the same route."""
    make_user(client, "wangfang", "volunteer")
    for response in (client.post("/v1/auth/token",
                                 json={"username": "wangfang", "password": "password-123"}),
                     _login(client, "wangfang")):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer" and body["refresh_token"].startswith("lnr_")
        assert body["expires_in"] > 0 and body["refresh_expires_in"] > body["expires_in"]
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.json()["username"] == "wangfang"
    wrong = client.post("/v1/auth/token", json={"username": "wangfang", "password": "nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "用户名或密码不对"
    missing = client.post("/v1/auth/token", json={"username": "wangfang"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["path"] == ["body", "password"]
    assert client.post("/v1/auth/token", data={"username": "wangfang"}).status_code == 422
    assert client.post("/v1/auth/token", json=["wangfang"]).status_code == 422


def _pair(client: TestClient, username: str = "wangfang") -> dict[str, Any]:
    response = client.post("/v1/auth/token", json={"username": username,
                                                   "password": "password-123"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _refresh(client: TestClient, token: str) -> Any:
    return client.post("/v1/auth/refresh", json={"refresh_token": token})


def test_a_refresh_token_gives_a_new_pair_and_works_once(client: TestClient,
                                                         hasher: CountingHasher) -> None:
    make_user(client, "wangfang", "volunteer")
    first = _pair(client)
    hasher.verified = 0
    second = _refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert hasher.verified == 0  # no password asked
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200
    third = _refresh(client, pair["refresh_token"])
    assert third.status_code == 200
    # Only digests are stored.
    from api.models import RefreshTokenRow

    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        stored = {row.token_hash for row in session.query(RefreshTokenRow)}
    issued = [first["refresh_token"], pair["refresh_token"], third.json()["refresh_token"]]
    assert len(stored) == 4  # make_user's login too
    assert not stored & set(issued)


def test_reusing_a_rotated_refresh_token_ends_the_whole_login(client: TestClient,
                                                              hasher: CountingHasher) -> None:
    make_user(client, "wangfang", "volunteer")
    stolen = _pair(client)["refresh_token"]
    owners = _refresh(client, stolen).json()["refresh_token"]  # the owner refreshed first
    other_login = _pair(client)["refresh_token"]  # another phone: a login of its own
    reused = _refresh(client, stolen)
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    assert reused.headers["content-type"] == PROBLEM_JSON
    # The successor the owner holds is dead too (it may be the thief's); the other login lives.
    after = _refresh(client, owners)
    assert after.status_code == 401 and after.json()["code"] == "refresh_token_revoked"
    assert _refresh(client, other_login).status_code == 200


def test_logout_revokes_and_unknown_or_expired_tokens_are_refused(
        client: TestClient, hasher: CountingHasher) -> None:
    make_user(client, "wangfang", "volunteer")
    token = _pair(client)["refresh_token"]
    successor = _refresh(client, token).json()["refresh_token"]
    out = client.post("/v1/auth/logout", json={"refresh_token": token})  # an old one of it
    assert out.status_code == 204
    refused = _refresh(client, successor)
    assert refused.status_code == 401 and refused.json()["code"] == "refresh_token_revoked"
    assert client.post("/v1/auth/logout", json={"refresh_token": "lnr_nope"}).status_code == 204
    unknown = _refresh(client, "lnr_never-issued")
    assert unknown.status_code == 401 and unknown.json()["code"] == "invalid_refresh_token"
    assert _refresh(client, "").status_code == 422
    # Expired: its time has passed.
    from sqlalchemy import update

    from api.models import RefreshTokenRow

    late = _pair(client)["refresh_token"]
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        session.execute(update(RefreshTokenRow).where(RefreshTokenRow.used_at.is_(None),
                                                      RefreshTokenRow.revoked_at.is_(None))
                        .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        session.commit()
    expired = _refresh(client, late)
    assert expired.status_code == 401 and expired.json()["code"] == "refresh_token_expired"
    english = client.post("/v1/auth/refresh", json={"refresh_token": late},
                          headers={"Accept-Language": "en"}).json()
    assert english["detail"] == "this login has expired; log in again"


def test_refresh_tokens_work_on_another_server_process(client: TestClient, settings: ApiSettings,
                                                       hasher: CountingHasher) -> None:
    """Two processes share the database and LINLI_SECRET_KEY: a login on one refreshes on
    the other, and its access token works there."""
    from api.main import create_app

    make_user(client, "wangfang", "volunteer")
    token = _pair(client)["refresh_token"]
    with TestClient(create_app(settings)) as other:
        pair = _refresh(other, token)
        assert pair.status_code == 200
        access = {"Authorization": f"Bearer {pair.json()['access_token']}"}
        assert other.get("/v1/me", headers=access).status_code == 200
        assert client.get("/v1/me", headers=access).status_code == 200
    assert _refresh(client, token).json()["code"] == "refresh_token_reused"
