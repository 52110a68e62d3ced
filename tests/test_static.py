"""The code checks CI relies on: ruff's lint rules and mypy --strict (pyproject.toml) pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str) -> None:
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    _run("ruff", "check", ".")


def test_mypy_strict(tmp_path: Path) -> None:
    _run("mypy", "--cache-dir", str(tmp_path / "mypy"))
