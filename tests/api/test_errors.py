"""Every error is problem+json: an uncaught exception becomes a logged 500 with a request id,
and every response carries its request id."""

from __future__ import annotations

import ast
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from api.models import OutboxEvent, TaskRow
from api.settings import ApiSettings
from tests.api.conftest import make_user, set_clock

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


def test_text_with_a_nul_character_is_422_wherever_it_is(client: TestClient,
                                                         coordinator: dict[str, str]) -> None:
    """PostgreSQL can neither store nor compare such text: it used to be a 500 there."""
    volunteer = {"volunteer_id": "V1", "name": "王芳", "lat": 22.534, "lon": 114.017,
                 "skills": "meal_delivery", "availability": "mon 08:00-12:00"}
    cases = [
        (client.get("/v1/volunteers", params={"skill": "a\x00b"}, headers=coordinator),
         ["query", "skill"]),
        (client.get("/v1/volunteers/V%001", headers=coordinator), ["path"]),
        (client.post("/v1/volunteers", json=volunteer | {"name": "王\x00芳"},
                     headers=coordinator), ["body", "name"]),
        (client.post("/v1/users", json={"username": "x\x00y", "password": "password-123",
                                        "role": "coordinator"}, headers=coordinator),
         ["body", "username"]),
        (client.post("/v1/volunteers", json={"nested": [{"deep": "\x00"}]},
                     headers=coordinator), ["body", "nested", 0, "deep"]),
        (client.post("/v1/auth/token", data={"username": "a\x00", "password": "b"}),
         ["body", "username"]),
    ]
    for response, where in cases:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["errors"][0]["path"] == where
        assert response.json()["request_id"] == response.headers["x-request-id"]
    deep = "[" * 100_000 + "]" * 100_000
    nested = client.post("/v1/volunteers", content=deep, headers=coordinator | {
        "Content-Type": "application/json"})
    assert nested.status_code == 422 and nested.headers["content-type"] == PROBLEM_JSON
    csv = "merchant_id,name,lat,lon,services,capacity_per_day,open\n" \
          "M1,幸\x00福,22.53,114.01,meal,30,10:00-20:00\n"
    imported = client.post("/v1/imports", headers=coordinator, files=[
        ("files", ("merchants.csv", csv.encode(), "text/csv"))])
    assert imported.status_code == 422, imported.text
    assert [(e["file"], e["row"], e["column"]) for e in imported.json()["errors"]] == [
        ("merchants.csv", 2, "name")]
    assert client.post("/v1/volunteers", json=volunteer, headers=coordinator).status_code == 201


def test_problems_are_in_chinese_by_default_and_in_english_when_asked(app: FastAPI) -> None:
    """title and detail follow Accept-Language (Chinese without one); type and code never
    change."""
    with TestClient(app) as client:
        answers = {lang: client.get("/v1/me", headers=headers) for lang, headers in (
            ("none", {}), ("zh", {"Accept-Language": "zh-CN,zh;q=0.9"}),
            ("en", {"Accept-Language": "en-US,en;q=0.8"}))}
    bodies = {lang: response.json() for lang, response in answers.items()}
    assert bodies["none"]["title"] == bodies["zh"]["title"] == "请先登录"
    assert bodies["zh"]["detail"] == "请先登录（/v1/auth/token），或者带上 X-API-Key"
    assert bodies["en"]["title"] == "Not authenticated"
    assert bodies["en"]["detail"] == "log in at /v1/auth/token or send an X-API-Key"
    for body in bodies.values():
        assert body["type"] == "https://linli.example/problems/401"
        assert body["code"] == "not_authenticated"
    assert answers["none"].headers["content-language"] == "zh-CN"
    assert answers["en"].headers["content-language"] == "en"


def test_unknown_paths_and_methods_are_translated_too(app: FastAPI) -> None:
    with TestClient(app) as client:
        missing = client.get("/v1/no-such-thing").json()
        assert (missing["title"], missing["detail"], missing["code"]) == (
            "找不到", "找不到这个地址", "not_found")
        wrong = client.delete("/health", headers={"Accept-Language": "en"}).json()
        assert (wrong["title"], wrong["code"]) == ("Method not allowed", "method_not_allowed")


def test_a_500_is_in_the_callers_language(app: FastAPI) -> None:
    with TestClient(app) as client:
        zh = client.get("/test-only/boom").json()
        en = client.get("/test-only/boom", headers={"Accept-Language": "en"}).json()
    assert zh["title"] != en["title"] == "Internal error"
    assert zh["detail"].startswith("系统出了点问题") and zh["request_id"] in zh["detail"]
    assert en["detail"].startswith("an internal error occurred")


@pytest.mark.parametrize(("body", "path", "zh", "en_type"), [
    ({"username": "wangfang"}, ["body", "password"], "必须填写", "missing"),
    ({"username": "wangfang", "password": 7}, ["body", "password"], "应当是文字", "string_type"),
    ({"username": "wangfang", "password": "x", "grant_type": "refresh"}, ["body", "grant_type"],
     "格式不对", "string_pattern_mismatch"),
])
def test_validation_errors_read_in_chinese_with_their_json_path(
        app: FastAPI, body: dict[str, object], path: list[str], zh: str, en_type: str) -> None:
    with TestClient(app) as client:
        chinese = client.post("/v1/auth/token", json=body).json()
        english = client.post("/v1/auth/token", json=body,
                              headers={"Accept-Language": "en"}).json()
    assert chinese["title"] == "填写有误" and english["title"] == "Invalid input"
    assert chinese["code"] == english["code"] == "invalid_input"
    [error] = chinese["errors"]
    assert error == {"path": path, "message": zh, "type": en_type}
    assert chinese["detail"] == f"{'.'.join(path)}：{zh}"
    [english_error] = english["errors"]
    assert english_error["path"] == path and english_error["type"] == en_type
    assert english_error["message"] != zh and english_error["message"].isascii()


def test_pydantic_errors_with_limits_fill_them_in(app: FastAPI) -> None:
    from api.errors import validation_message
    from matcher import i18n

    cases = [
        ({"type": "string_too_short", "msg": "x", "ctx": {"min_length": 8}}, "至少要写 8 个字"),
        ({"type": "string_too_long", "msg": "x", "ctx": {"max_length": 64}}, "最多写 64 个字"),
        ({"type": "int_parsing", "msg": "x"}, "应当是整数"),
        ({"type": "greater_than", "msg": "x", "ctx": {"gt": 0}}, "应当大于 0"),
        ({"type": "greater_than_equal", "msg": "x", "ctx": {"ge": 1}}, "不能小于 1"),
        ({"type": "less_than_equal", "msg": "x", "ctx": {"le": 90}}, "不能大于 90"),
        ({"type": "enum", "msg": "x", "ctx": {"expected": "'red' or 'blue'"}},
         "只能是这几种之一：'red' or 'blue'"),
        ({"type": "json_invalid", "msg": "x", "ctx": {"error": "EOF"}}, "不是有效的 JSON（EOF）"),
        ({"type": "an_unknown_type", "msg": "as pydantic says"}, "as pydantic says"),
        ({"type": "greater_than", "msg": "odd ctx", "ctx": {}}, "odd ctx"),
    ]
    with i18n.use("zh_CN"):
        assert [validation_message(error) for error, _ in cases] == [zh for _, zh in cases]
    with i18n.use("en"):
        assert validation_message(cases[0][0]) == "x"


def test_a_broken_json_body_keeps_its_path(app: FastAPI) -> None:
    with TestClient(app) as client:
        body = client.post("/v1/auth/token", content=b'{"username": ',
                           headers={"Content-Type": "application/json"}).json()
    assert body["errors"][0]["path"] == ["body"]
    assert body["errors"][0]["type"] == "json_invalid"
    assert body["errors"][0]["message"].startswith("不是有效的 JSON")


# --- every detail a person reads is translated ---

API = Path(__file__).resolve().parents[2] / "api"


def _imports_problem(tree: ast.Module) -> bool:
    """Whether the module raises the API's Problem (not the matcher's, which is a week)."""
    return any(isinstance(node, ast.ImportFrom) and node.module == "api.errors"
               and any(alias.name == "Problem" and alias.asname is None for alias in node.names)
               for node in ast.walk(tree))


def _detail(call: ast.Call) -> ast.expr | None:
    if len(call.args) > 1:
        return call.args[1]
    return next((k.value for k in call.keywords if k.arg == "detail"), None)


def _translated(expr: ast.expr | None, function: ast.AST | None, tree: ast.Module) -> bool:
    """The rule: a detail is ``_(...)``, ``<translated>.format(...)``, ``a if c else b`` of two
    translated ones, or a name that only ever holds a translated one: assigned in its function
    only from one, or a parameter of its function that every call in the module passes one."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
        return expr.func.id == "_"
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        return expr.func.attr == "format" and _translated(expr.func.value, function, tree)
    if isinstance(expr, ast.IfExp):
        return _translated(expr.body, function, tree) and _translated(expr.orelse, function,
                                                                      tree)
    if not isinstance(expr, ast.Name) or not isinstance(
            function, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    name = expr.id
    values = [node.value for node in ast.walk(function) if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)]
    if values:
        return all(_translated(v, function, tree) for v in values)
    params = [a.arg for a in function.args.posonlyargs + function.args.args]
    if name not in params + [a.arg for a in function.args.kwonlyargs]:
        return False
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == function.name]
    passed = []
    for call in calls:
        given = {k.arg: k.value for k in call.keywords}
        if name in params and params.index(name) < len(call.args):
            given[name] = call.args[params.index(name)]
        passed.append(given.get(name))
    return bool(calls) and all(_translated(value, None, tree) for value in passed)


def untranslated_details(source: str) -> list[int]:
    """The lines of the module whose ``Problem(...)`` detail is not translated."""
    tree = ast.parse(source)
    if not _imports_problem(tree):
        return []
    found = []

    def visit(node: ast.AST, function: ast.AST | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "Problem" \
                and not _translated(_detail(node), function, tree):
            found.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, None)
    return found


@pytest.mark.parametrize(("source", "lines"), [
    ("from api.errors import Problem\nraise Problem(404, f'no task {n}')", [2]),
    ("from api.errors import Problem\nraise Problem(404, 'no such calendar')", [2]),
    ("from api.errors import Problem\nraise Problem(404, _('no such calendar'))", []),
    ("from api.errors import Problem\nraise Problem(409, detail=_('x {n}').format(n=1))", []),
    ("from api.errors import Problem\nraise Problem(409, _('x') + str(n))", [2]),
    ("from api.errors import Problem\nraise Problem(409, _(a) if b else f'{c}')", [2]),
    ("from api.errors import Problem\ndef f():\n    d = _('x')\n    raise Problem(409, d)", []),
    ("from api.errors import Problem\ndef f(n):\n    d = str(n)\n    raise Problem(409, d)",
     [4]),
    ("from api.errors import Problem\ndef f(d):\n    return Problem(401, d)\nf(_('x'))\n"
     "f(d=_('y').format())", []),
    ("from api.errors import Problem\ndef f(d):\n    return Problem(401, d)\nf(_('x'))\n"
     "f('y')", [3]),
    ("from matcher.domain import Problem\nProblem(week, [], [], [])", []),
])
def test_the_detail_rule_is_precise(source: str, lines: list[int]) -> None:
    assert untranslated_details(source) == lines


def test_every_problem_detail_in_the_api_goes_through_the_catalog() -> None:
    """A detail is read by a person: written in English, looked up in the catalog, then filled
    in (``_("no task {task}").format(task=7)``); an f-string would stay English."""
    found = [f"{path.relative_to(API.parent)}:{line}" for path in sorted(API.rglob("*.py"))
             for line in untranslated_details(path.read_text(encoding="utf-8"))]
    assert found == [], found


CJK = re.compile(r"[\u4e00-\u9fff]")


def _change(client: TestClient, cls: type[Any], ident: int, **values: Any) -> None:
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        row = session.get(cls, ident)
        for key, value in values.items():
            setattr(row, key, value)
        session.commit()


def test_error_details_read_in_chinese_by_default_and_in_english_when_asked(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    """Real refusals of the services and routes, each asked without Accept-Language (Chinese:
    the detail, not only the title) and in English; the code is the same in both."""
    tasks = published["tasks"]
    first = tasks[0]
    second = next(t for t in tasks if t["volunteer_id"] != first["volunteer_id"])
    me = make_user(client, "mei", "volunteer", volunteer_id=first["volunteer_id"])
    grid = make_user(client, "grid", "grid_worker", grid_units="G1")
    square = [[[114.0, 22.5], [114.01, 22.5], [114.01, 22.51], [114.0, 22.51], [114.0, 22.5]]]
    units = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"unit_id": unit, "name": unit},
         "geometry": {"type": "Polygon", "coordinates": square}} for unit in ("G1", "G2")]}
    assert client.put("/v1/grids", json=units, headers=coordinator).status_code == 200
    # A task done and confirmed under one key; the key then reused for another task.
    _change(client, TaskRow, first["id"], state="completed")
    set_clock(client, dt.date.fromisoformat(first["date"]), "23:30")
    key = {"Idempotency-Key": "confirm-errors-0001"}
    assert client.post(f"/v1/tasks/{first['id']}/confirm",
                       headers=coordinator | key).status_code == 200
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        event = session.query(OutboxEvent).order_by(OutboxEvent.id).first()
        assert event is not None  # publishing told the volunteers
        event_id = event.id
    _change(client, OutboxEvent, event_id, status="delivered")

    def post(path: str, headers: dict[str, str], body: Any = None) -> Callable[
            [dict[str, str]], Any]:
        return lambda lang: client.post(path, json=body, headers=headers | lang)

    cases: list[tuple[str, Callable[[dict[str, str]], Any], int, str, str]] = [
        ("unknown task", post("/v1/tasks/999999/cancel", coordinator), 404, "not_found",
         "no task 999999"),
        ("someone else's task", post(f"/v1/me/tasks/{second['id']}/accept", me), 404,
         "not_found", f"you have no task {second['id']}"),
        ("decline a confirmed task", post(f"/v1/me/tasks/{first['id']}/decline", me,
                                          {"reason": "临时有事"}),
         409, "task_state_conflict", "the task is confirmed; only a task that is accepted or "
         "offered can be declined"),
        ("publish twice", post(f"/v1/schedules/{published['id']}/publish", coordinator, {}),
         409, "job_not_solved", "is published; only a solved schedule can be published"),
        ("cancel a published solve", post(f"/v1/schedules/{published['id']}/cancel",
                                          coordinator),
         409, "job_finished", "only a queued or running job can be cancelled"),
        ("a key reused for another request", post(f"/v1/tasks/{second['id']}/confirm",
                                                  coordinator | key),
         422, "idempotency_key_reused", "was already used for a different request"),
        ("a grid unit not hers", lambda lang: client.patch(
            "/v1/grids/G2/needs/N1", json={"priority": "red"}, headers=grid | lang),
         403, "grid_unit_not_yours", "grid unit G2 is not yours"),
        ("redeliver a delivered event", post(f"/v1/outbox/{event_id}/redeliver", coordinator),
         409, "event_not_dead", f"outbox event {event_id} is delivered; only dead letters"),
    ]
    for name, call, status, code, english in cases:
        chinese, asked = call({}), call({"Accept-Language": "en"})
        assert (chinese.status_code, asked.status_code) == (status, status), (name, asked.text)
        assert chinese.json()["code"] == asked.json()["code"] == code, name
        assert CJK.search(chinese.json()["detail"]), (name, chinese.json())
        assert english in asked.json()["detail"], (name, asked.json())
        assert not CJK.search(asked.json()["detail"]), (name, asked.json())


def test_a_body_the_framework_cannot_read_is_told_in_chinese(
        client: TestClient, coordinator: dict[str, str]) -> None:
    """Starlette's own words for a multipart body it cannot read (found by the fuzz test): in a
    sentence of ours by default, as Starlette says it in English."""
    broken = {"Content-Type": "multipart/form-data; boundary=xyz"}
    body = b"--xyz\r\nbad header line\r\n\r\nx\r\n--xyz--\r\n"  # "Invalid multipart data."
    chinese = client.post("/v1/imports", content=body, headers=coordinator | broken)
    assert chinese.status_code == 400, chinese.text
    assert CJK.search(chinese.json()["detail"]), chinese.json()
    english = client.post("/v1/imports", content=body,
                          headers=coordinator | broken | {"Accept-Language": "en"})
    assert english.status_code == 400 and not CJK.search(english.json()["detail"])
