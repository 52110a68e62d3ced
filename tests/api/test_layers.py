"""The layers of the service point one way: routers (and the console, and the app) call the
service modules of ``api/``; a service module never imports a router, so the rules live below
HTTP and a router can be replaced without touching them."""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
ABOVE = {"main.py", "cli.py"}  # the app and the command line wire the routers in


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_service_module_imports_a_router() -> None:
    services = [p for p in API.glob("*.py") if p.name not in ABOVE]
    assert len(services) > 10
    wrong = {p.name: sorted(n for n in _imports(p) if n.startswith("api.routers"))
             for p in services}
    assert {name: found for name, found in wrong.items() if found} == {}
