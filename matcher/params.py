"""Solver parameters: a validated dataclass, loadable from TOML; the clock a solve's limit is
counted on."""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from ortools.sat.python import cp_model

# CP-SAT deterministic time granted per second of ``time_limit_s`` when the limit is
# deterministic: enough for one worker to prove every level of the sample community with the
# default limit (README, "Same inputs, same schedule").
WORK_PER_SECOND = 0.6


@dataclass(frozen=True)
class SolveParams:
    """How hard and how to solve.

    Parameters
    ----------
    time_limit_s
        The budget of the whole solve, split over components and stages. By default it is
        CP-SAT's deterministic time (a count of work), ``WORK_PER_SECOND`` units per second
        given, so the same inputs give the same schedule on every run whatever the machine's
        load; with ``wall_clock`` it counts seconds.
    wall_clock
        Count ``time_limit_s`` in wall-clock seconds: the solve then ends on time, but what it
        reaches depends on the machine's speed and load, and two runs may differ.
    workers
        CP-SAT search workers; 0 means one per core with ``wall_clock``, else one (a single
        worker is repeatable and does more per unit of work than interleaved ones).
    walk_weight
        Quality stage: cost of one walking minute (home -> task).
    continuity_weight
        Quality stage: cost of each extra distinct volunteer on one need over the week. The
        default equals 3 walking minutes: an elder keeps the same helper unless another lives
        more than 3 minutes closer (decision recorded in the README).
    balance_weight
        Quality stage: cost per minute of a volunteer's load beyond each full hour, growing
        with the hour (convex), so load spreads across volunteers.
    keep_weight
        Quality stage of a re-solve: the gain of giving an occurrence to the volunteer it is
        already offered to, at the same start (no one is told of a change). The default equals
        10 walking minutes.
    seed
        CP-SAT random seed, for reproducible runs.
    pattern_bound
        Where a coverage level is left unproven, bound it again from volunteer-day task
        patterns and the weekly hours cap (:mod:`matcher.patterns`), and take the plan its LP
        guides if it covers more.
    """

    time_limit_s: float = 60.0
    wall_clock: bool = False
    workers: int = 0
    walk_weight: int = 10
    continuity_weight: int = 30
    balance_weight: int = 1
    keep_weight: int = 100
    seed: int = 0
    pattern_bound: bool = True

    def __post_init__(self) -> None:
        if self.time_limit_s <= 0:
            raise ValueError("time_limit_s must be positive")
        if self.workers < 0:
            raise ValueError("workers must be 0 (all cores) or more")
        for name in ("walk_weight", "continuity_weight", "balance_weight", "keep_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def limit_kind(self) -> str:
        """``deterministic`` or ``wall_clock``: what ``time_limit_s`` counts."""
        return "wall_clock" if self.wall_clock else "deterministic"

    @property
    def budget(self) -> float:
        """The whole solve's budget on its :class:`Clock`: seconds, or deterministic time."""
        return self.time_limit_s * (1.0 if self.wall_clock else WORK_PER_SECOND)

    def cp_solver(self, limit: float) -> cp_model.CpSolver:
        """A CP-SAT solver with these workers and seed and a limit of ``limit`` (seconds, or
        deterministic time unless ``wall_clock``)."""
        solver = cp_model.CpSolver()
        cores = max(os.cpu_count() or 1, 1) if self.wall_clock else 1
        solver.parameters.num_workers = self.workers or cores
        solver.parameters.random_seed = self.seed
        if self.wall_clock:
            solver.parameters.max_time_in_seconds = max(limit, 0.05)
        else:
            solver.parameters.max_deterministic_time = max(limit, 0.05)
            # A deterministic limit alone does not make a parallel search repeatable: the
            # workers share solutions and bounds as they come. Interleaved search runs them in
            # batches synchronised in a fixed order, which is repeatable with any worker count
            # (but on the sample community it did less per unit of work than one worker).
            solver.parameters.interleave_search = solver.parameters.num_workers > 1
        # The full LP relaxation with cuts: coverage is proven by the bound, and the default
        # (level 1) left the community benchmark's blue level 2% short of a proof at 60 s;
        # level 2 proves it in 36 s.
        solver.parameters.linearization_level = 2
        # One presolve pass without probing: the full presolve took longer than the search it
        # saved (street red level: optimum found at 11 s instead of 34; community seed 7: blue
        # proven in 27 s, where the full presolve left a 5% gap at 60 s).
        solver.parameters.max_presolve_iterations = 1
        solver.parameters.cp_model_probing_level = 0
        return solver

    @classmethod
    def from_toml(cls, path: Path | str) -> SolveParams:
        """Read ``[solve]`` (or top-level keys) from a TOML file; unknown keys are an error."""
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        section = data.get("solve", data)
        known = {f.name for f in fields(cls)}
        unknown = set(section) - known
        if unknown:
            raise ValueError(f"{path}: unknown solver parameter(s) {sorted(unknown)}")
        return cls(**section)


class Clock:
    """Where a solve's budget is counted: the wall clock, or the deterministic time its CP-SAT
    solves have spent (``params.wall_clock`` decides).

    Deadlines are readings of :meth:`now`. On the deterministic clock time only moves when a
    model is solved, so every choice made against a deadline (stage shares, rounds, passes) is
    the same on every run.
    """

    def __init__(self, params: SolveParams) -> None:
        self.params = params
        self.work = 0.0  # deterministic time spent by this clock's solves

    def now(self) -> float:
        return time.monotonic() if self.params.wall_clock else self.work

    def solve(self, model: cp_model.CpModel,
              deadline: float) -> tuple[cp_model.CpSolver, cp_model.CpSolverStatus]:
        """Solve ``model`` with what is left until ``deadline``; returns the solver and its
        status."""
        solver = self.params.cp_solver(deadline - self.now())
        status = solver.solve(model)
        self.work += solver.deterministic_time
        return solver, status
