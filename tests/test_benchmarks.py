"""The benchmarks still run: each one's tiny mode, end to end, on the current schema (a schema
change once broke their fills unseen, since nothing ran them). Figures are not checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_decline_benchmark_runs() -> None:
    out = _run("benchmarks/bench_decline.py", "tiny", "--calls", "3")
    assert "candidates p50" in out and "decline    p50" in out


def test_the_api_benchmark_runs_with_and_without_a_solve() -> None:
    out = _run("benchmarks/bench_api.py", "--tiny")
    assert out.count("errors 0") == 2, out


def test_the_district_benchmark_runs_on_ray_and_prints_its_scaling() -> None:
    # Ray's local cluster, as CI has it: the parts as Ray tasks, then the same district in one
    # process, whose schedules must be the same.
    out = _run("benchmarks/bench_district.py", "--quick", "--cpus", "2", "--check")
    for line in ("wall time on Ray:", "parallel efficiency:", "critical path (slowest part):",
                 "peak memory per worker", "object store traffic"):
        assert line in out, out
    assert "same schedules as on Ray: True" in out, out


def test_the_family_benchmark_runs_every_regime() -> None:
    out = _run("benchmarks/bench_family.py", "--quick")
    assert "== unproven levels, per regime" in out, out
    assert "valid plans" in out and "ERRORS" not in out, out
