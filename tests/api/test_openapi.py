"""The OpenAPI document is one a client generator can use: every route answers a typed model
with an example, and openapi-python-client generates an importable client from it whose
decoders return those models (never an untyped ``Any`` or a dictionary)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from api.settings import ApiSettings

JSON = "application/json"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("openapi")
    app = create_app(ApiSettings(database_url=f"sqlite:///{folder / 'linli.db'}",
                                 secret_key="test-secret-key-0123456789abcdef"))
    document: dict[str, Any] = app.openapi()
    return document


def _component(spec: dict[str, Any], ref: str) -> tuple[str, dict[str, Any]]:
    name = ref.removeprefix("#/components/schemas/")
    return name, spec["components"]["schemas"][name]


def _answers(spec: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(method, path, status, JSON schema or None) of every 2xx answer with a body."""
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2") or status == "204":
                    continue
                content = response.get("content", {})
                if JSON in content or not content:
                    found.append((method, path, status, content.get(JSON, {}).get("schema")))
    return found


def _untyped(spec: dict[str, Any], schema: dict[str, Any] | None) -> str | None:
    """Why a 2xx answer's schema is not a typed model with an example; None when it is."""
    if not schema:
        return "no schema"
    if schema.get("type") == "array":
        return _untyped(spec, schema.get("items"))
    if "$ref" not in schema:
        return f"an inline schema {schema}, not a named model"
    name, model = _component(spec, schema["$ref"])
    if model.get("type") != "object" or not model.get("properties"):
        return f"{name} is an object without properties"
    if model.get("additionalProperties"):
        return f"{name} takes any properties"
    if not model.get("examples"):
        return f"{name} has no example"
    items = model["properties"].get("items", {})
    if name.startswith("Page_") and items.get("type") == "array":  # a page: its items too
        return _untyped(spec, items["items"])
    return None


def test_every_route_answers_a_typed_model_with_an_example(spec: dict[str, Any]) -> None:
    answers = _answers(spec)
    assert len(answers) > 60  # the walk found the routes
    problems = [f"{method.upper()} {path} {status}: {why}"
                for method, path, status, schema in answers
                if (why := _untyped(spec, schema)) is not None]
    assert problems == []


def test_every_list_route_answers_a_page(spec: dict[str, Any]) -> None:
    """Lists come a page at a time with their total, except a volunteer's own week (bounded
    by one person's week and cached by phones) and the answer to replacing the grid units."""
    bounded = {("get", "/v1/me/tasks"), ("put", "/v1/grids")}
    lists = [(method, path) for method, path, _, schema in _answers(spec)
             if schema and schema.get("type") == "array"]
    assert set(lists) == bounded
    for method, path, _, schema in _answers(spec):
        if method == "get" and schema and "$ref" in schema and \
                _component(spec, schema["$ref"])[0].startswith("Page_"):
            names = {p["name"] for p in spec["paths"][path][method].get("parameters", [])}
            assert {"limit", "offset"} <= names, path


def test_a_schedule_s_tasks_filter_by_volunteer_and_day(spec: dict[str, Any]) -> None:
    parameters = spec["paths"]["/v1/schedules/{schedule_id}/tasks"]["get"]["parameters"]
    assert {"volunteer_id", "day", "at_risk", "limit", "offset"} <= {
        p["name"] for p in parameters}


def _plain(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def test_a_client_generator_accepts_the_document(spec: dict[str, Any],
                                                 tmp_path: Path) -> None:
    """openapi-python-client generates a client without warnings; it imports; and each route's
    decoder of a 2xx JSON answer builds one of the document's named models."""
    import json

    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    # Spreadsheets download as files: the generator reads them as it reads any octet stream.
    config = tmp_path / "generator.json"
    config.write_text(json.dumps({"content_type_overrides": {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
            "application/octet-stream"}}), encoding="utf-8")
    generator = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [str(generator), "generate", "--path", str(document), "--meta", "none",
         "--config", str(config),
         "--output-path", str(tmp_path / "linli_client"), "--fail-on-warning"],
        capture_output=True, text=True, timeout=600, check=False,
        # its post-generation hooks run ruff, installed beside it
        env=os.environ | {"PATH": f"{generator.parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert done.returncode == 0 and "Warning" not in done.stdout + done.stderr, \
        done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        client = importlib.import_module("linli_client")
        models = importlib.import_module("linli_client.models")
        assert hasattr(client, "AuthenticatedClient")
        named = {_plain(name) for name in spec["components"]["schemas"]}
        json_routes = {_plain(spec["paths"][path][method]["operationId"])
                       for method, path, _, _ in _answers(spec)}
        untyped = []
        for module in sorted((tmp_path / "linli_client" / "api").rglob("*.py")):
            if _plain(module.stem) not in json_routes:  # CSV, HTML, calendars; __init__
                continue
            text = module.read_text(encoding="utf-8")
            for status, body in re.findall(
                    r"if response\.status_code == (2\d\d):\n(.*?)\n\s+return", text, re.S):
                if status == "204":
                    continue
                built = re.findall(r"(\w+)\.from_dict\(", body)
                if not built or any(_plain(b) not in named
                                    or not hasattr(models, b) for b in built):
                    untyped.append(f"{module.stem} {status}: {body.strip()[:120]}")
        assert untyped == []
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == "linli_client"]:
            del sys.modules[name]
