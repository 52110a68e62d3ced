"""Solver parameters and the clock a solve's limit is counted on: by default deterministic, so
the same inputs give the same schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from matcher.domain import Location, Week
from matcher.generate import generate_community
from matcher.params import DEFAULT_TIME_LIMIT_S, SolveParams
from matcher.solver import solve
from tests.validator import geodesic_walk, validate

ROOT = Path(__file__).resolve().parents[2]


def small_community():  # type: ignore[no-untyped-def]
    """A generated community that solves in seconds, with merchants and two-person tasks, where
    a limit of one second ends the quality stage before it is proven."""
    return generate_community(60, 80, 6, network=None, centre=Location(22.53407, 114.01766),
                              radius_m=1200, week=Week(2026, 48), seed=3)


def solve_and_print(limit: float) -> None:
    """Run in a subprocess: solve the small community with the default parameters and print
    the assignments and the summary's limit fields as JSON."""
    problem = small_community()
    schedule = solve(problem, SolveParams(time_limit_s=limit))
    assert validate(problem, schedule.assignments, geodesic_walk()) == []
    summary = schedule.summary()
    print(json.dumps({
        "assignments": [[a.need_id, a.day, a.start, a.volunteer_id, a.merchant_id]
                        for a in schedule.assignments],
        "unmet": [[u.need_id, u.day, u.reason.value, u.fix] for u in schedule.unmet],
        "limit": summary.get("limit"), "deterministic_time": summary.get("deterministic_time"),
    }))


def _run(hash_seed: str, limit: float) -> dict[str, object]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c",
         f"from tests.matcher.test_params import solve_and_print; solve_and_print({limit})"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True)
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_the_same_inputs_give_the_same_schedule() -> None:
    # A limit that ends a search before it proves its optimum, so any influence of the wall
    # clock (or of hash order) shows; two processes, string hashing seeded differently.
    first, second = _run("1", 1.0), _run("2", 1.0)
    assert first["assignments"] and first["assignments"] == second["assignments"]
    assert first["unmet"] == second["unmet"]
    assert first["limit"] == "deterministic"
    assert first["deterministic_time"] == second["deterministic_time"] > 0


def test_the_clock_counts_deterministic_time_unless_wall_clock() -> None:
    from ortools.sat.python import cp_model

    from matcher.params import WORK_PER_SECOND, Clock

    model = cp_model.CpModel()
    x = model.new_int_var(0, 10, "x")
    model.maximize(x)
    clock = Clock(SolveParams(workers=1))
    assert clock.now() == 0.0
    solver, status = clock.solve(model, clock.after(5.0))
    assert status == cp_model.OPTIMAL and solver.value(x) == 10
    assert clock.now() == clock.work == solver.deterministic_time
    deterministic = SolveParams().cp_solver(5.0).parameters
    assert deterministic.max_deterministic_time == 5.0 and deterministic.num_workers == 1
    assert deterministic.max_time_in_seconds > 1e9  # no wall-clock stop
    # Several workers stay repeatable when interleaved.
    assert SolveParams(workers=2).cp_solver(5.0).parameters.interleave_search
    wall = SolveParams(wall_clock=True).cp_solver(5.0).parameters
    assert wall.max_time_in_seconds == 5.0 and wall.max_deterministic_time > 1e9
    assert SolveParams(time_limit_s=10).budget == 10 * WORK_PER_SECOND
    assert SolveParams(time_limit_s=10, wall_clock=True).budget == 10


def test_the_summary_reports_the_limit() -> None:
    problem = small_community()
    schedule = solve(problem, SolveParams(time_limit_s=0.5, wall_clock=True))
    summary = schedule.summary()
    assert summary["limit"] == "wall_clock"
    assert isinstance(summary["deterministic_time"], float)


@pytest.mark.parametrize("bad", [0, -1])
def test_a_limit_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="time_limit_s"):
        SolveParams(time_limit_s=bad)


def test_a_deadline_is_absolute_on_its_clock_and_shares_what_is_left() -> None:
    from ortools.sat.python import cp_model

    from matcher.params import Clock, Deadline

    clock = Clock(SolveParams(workers=1))
    deadline = clock.after(4.0)
    assert deadline == Deadline(clock, 4.0) and deadline.left() == 4.0
    assert deadline.share(1, 4).at == 1.0 and deadline.share(0.5).at == 2.0
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{k}") for k in range(30)]
    model.add(sum(x) <= 15)
    model.maximize(sum(k * v for k, v in enumerate(x)))
    clock.solve(model, deadline)
    spent = clock.now()
    assert spent > 0
    # The deadline stays where it was; what is left, and its shares, shrink with the work.
    assert deadline.at == 4.0 and deadline.left() == 4.0 - spent
    assert deadline.share(1, 2).at == spent + (4.0 - spent) / 2
    late = Deadline(clock, spent / 2)
    assert late.passed() and late.left() < 0
    assert late.share(1, 3).at == spent  # nothing left to share: now


def test_tuning_knobs_are_parameters_not_globals(tmp_path: Path) -> None:
    params = SolveParams(linearization_level=1, presolve_iterations=3, probing_level=2)
    solver = params.cp_solver(1.0).parameters
    assert (solver.linearization_level, solver.max_presolve_iterations,
            solver.cp_model_probing_level) == (1, 3, 2)
    default = SolveParams().cp_solver(1.0).parameters
    assert (default.linearization_level, default.max_presolve_iterations,
            default.cp_model_probing_level) == (2, 1, 0)
    toml = tmp_path / "solve.toml"
    toml.write_text("[solve]\npair_budget = 2\nstage_weights = [1, 2, 1, 1]\n",
                    encoding="utf-8")
    loaded = SolveParams.from_toml(toml)
    assert loaded.pair_budget == 2 and loaded.stage_weights == (1.0, 2.0, 1.0, 1.0)


@pytest.mark.parametrize("bad", [
    {"pair_budget": 0}, {"day_pair_budget": -1}, {"relax_share": 0}, {"last_relax_share": 1.5},
    {"stage_weights": (1, 1, 1)}, {"street_stage_weights": (1, 0, 1, 1)},
    {"linearization_level": 3}, {"presolve_iterations": -1},
    {"pattern_ng_size": -1}, {"pattern_dssr_rounds": -1}, {"pattern_columns": 0},
    {"pattern_lp_iterations": 0},
])
def test_bad_tuning_knobs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        SolveParams(**bad)  # type: ignore[arg-type]


def test_one_time_limit_default_for_the_cli_the_service_and_the_solver(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The solver's default is the one source: the CLI's and the service's settings read it
    # unless the environment overrides them.
    from api.settings import ApiSettings
    from matcher.cli import _solve_settings
    from matcher.settings import Settings

    for name in ("LINLI_TIME_LIMIT_S", "LINLI_SOLVE_TIME_LIMIT_S", "LINLI_WALL_CLOCK",
                 "LINLI_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    solver = SolveParams().time_limit_s
    assert Settings().time_limit_s == solver
    assert ApiSettings().solve_time_limit_s == solver
    assert _solve_settings("2026-W48", None, False, None)[2].time_limit_s == solver
    # The user's setting still wins, and the command line's over it.
    monkeypatch.setenv("LINLI_TIME_LIMIT_S", "5")
    monkeypatch.setenv("LINLI_SOLVE_TIME_LIMIT_S", "7")
    assert _solve_settings("2026-W48", None, False, None)[2].time_limit_s == 5
    assert _solve_settings("2026-W48", 3, False, None)[2].time_limit_s == 3
    assert ApiSettings().solve_time_limit_s == 7


def test_a_shorter_limit_takes_the_pattern_stage_counts_in_proportion() -> None:
    # The counts are set for the default limit: a solve asked for in a tenth of it gets a
    # tenth of each (at least one), so its pattern stage is as much shorter; from the default
    # up, and for everything else, the parameters are as given.
    full = SolveParams(pattern_cut_columns=7)
    short = replace(full, time_limit_s=DEFAULT_TIME_LIMIT_S / 10).within_limit()
    assert (short.pattern_max_work, short.pattern_lp_iterations, short.pattern_cut_columns) == \
        (full.pattern_max_work // 10, full.pattern_lp_iterations // 10, 1)
    assert replace(short, pattern_max_work=full.pattern_max_work,
                   pattern_lp_iterations=full.pattern_lp_iterations,
                   pattern_cut_columns=7) == replace(full, time_limit_s=short.time_limit_s)
    for limit in (DEFAULT_TIME_LIMIT_S, 5 * DEFAULT_TIME_LIMIT_S):
        assert replace(full, time_limit_s=limit).within_limit() == \
            replace(full, time_limit_s=limit)
