"""Solver parameters: a validated dataclass, loadable from TOML; the clock a solve's limit is
counted on, and deadlines on it."""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ortools.sat.python import cp_model

# CP-SAT deterministic time granted per second of ``time_limit_s`` when the limit is
# deterministic (README, "Same inputs, same schedule").
WORK_PER_SECOND = 0.6

# The one default time limit of a solve, in seconds: the CLI's ``LINLI_TIME_LIMIT_S`` and the
# service's ``LINLI_SOLVE_TIME_LIMIT_S`` default to it, so the three never drift apart.
DEFAULT_TIME_LIMIT_S = 60.0

StageWeights = tuple[float, float, float, float]  # red, yellow, blue, quality


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

    The remaining fields tune how the budget is spent and how CP-SAT searches; their defaults
    come from the benchmarks (README, "Benchmark"), and tests change them to send small
    problems down the paths of large ones.

    pair_budget
        Pairs of options sharing a volunteer and a day (the size of R5) one exact model may
        hold. A component above it is "street scale": its levels are solved as the week
        without walks, walks added lazily, and its last level a day at a time.
    day_pair_budget
        The same for one day re-solved in the day-by-day polish: the day keeps its nearest
        options beyond those the plan and the relaxation use, so passes can repeat.
    relax_share, last_relax_share
        Of a coverage stage's time, what the day-by-day relaxation may use before the exact
        model starts; the last level's bound carries into no later stage, so its plan gets a
        larger part.
    stage_weights, street_stage_weights
        How a component's time is split over red, yellow, blue and the quality stage (what a
        stage leaves rolls on to the next), at community and at street scale.
    linearization_level, presolve_iterations, probing_level
        CP-SAT's ``linearization_level``, ``max_presolve_iterations`` and
        ``cp_model_probing_level``: the full LP relaxation with cuts (coverage is proven by
        the bound), and one presolve pass without probing (the full presolve cost more time
        than it saved).
    pattern_bound
        Where a coverage level is left unproven, bound it again from volunteer-day task
        patterns and the weekly hours cap (:mod:`matcher.patterns`), and take the plan its LP
        guides if it covers more.
    pattern_enumerate_up_to, pattern_max_states
        A volunteer-group of at most ``pattern_enumerate_up_to`` options has its patterns
        enumerated, unless that passes ``pattern_max_states`` (set, last task) states; other
        groups are priced.
    pattern_max_labels
        Labels one pricing of one group may make; a group that needs more is bounded by
        energy rows (the minutes of its tasks that fit in each window) instead of patterns.
    pattern_ng_size, pattern_dssr_rounds
        Pricing a group is an ng-route relaxation: a path remembers, of the tasks it did, only
        those among the ``pattern_ng_size`` nearest of the task it is at, and may do a task it
        forgot twice (its value still bounds every pattern). Where the best path does a task
        twice, the tasks between its two visits remember it from then on and the group is
        priced again, ``pattern_dssr_rounds`` times at most.
    pattern_columns
        Patterns one pricing of one group may add to the LP (the best, and the next best that
        lie inside none already taken).
    pattern_lp_iterations
        Simplex iterations all solves of one pattern bound's LP may take together, so its LP
        stops at the same point on every run (the deterministic clock does not count LP time);
        a solve cut short leaves the bound of the rounds before it.
    pattern_price_groups
        Partial pricing: a round of the pattern LP stops pricing, the groups taken in turn,
        once this many columns are found (every group is priced before the LP is called
        optimal).
    pattern_max_rounds
        Solves of the pattern LP at most.
    pattern_plan_share
        Of a level's time, what is kept back from its exact model (at street scale, from the
        lazy week or blue's day-by-day polish) for the pattern master solved as an integer
        programme, where the level is left unproven (:func:`matcher.patterns.pattern_plan`):
        the plan it chooses, timed by the exact model (at street scale a day at a time), and
        where the patterns that could beat the plan are all in it, a bound. 0 turns it off.
    pattern_plan_nodes
        Nodes of SCIP's search for that integer programme (a count, so every run stops at
        the same point; on the deterministic clock ``time_limit_s`` of wall-clock time per
        round, for all of its rounds together, listing and timing included, is only a safety
        net: where it binds, what the programme finds depends on the machine's load).
    pattern_plan_rounds
        Solves of that programme at most: a later one lists the patterns that could beat a
        better plan where they were too many, or is cut where the last one took options of a
        group that are no pattern, or broke what the master leaves out (a team's common
        start, a meal's one merchant).
    pattern_cut_columns
        Between two solves of that programme, groups are listed again with their tasks of no
        dual value while those listed so far have added fewer columns than this (the others
        get rows instead), so the programme solved next stays of a size SCIP can search.
    pattern_max_work
        Steps (walks compared, subsets grown, labels extended) one pattern bound may take, so
        every run stops at the same step; out of steps, the groups not yet priced out are
        bounded by energy rows and the LP solved once more.

    ``pattern_lp_iterations``, ``pattern_cut_columns`` and ``pattern_max_work`` are set for a
    limit of ``DEFAULT_TIME_LIMIT_S``; a solve with a shorter one takes them in proportion
    (:meth:`within_limit`).
    """

    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    wall_clock: bool = False
    workers: int = 0
    walk_weight: int = 10
    continuity_weight: int = 30
    balance_weight: int = 1
    keep_weight: int = 100
    seed: int = 0
    pair_budget: int = 150_000
    day_pair_budget: int = 10_000
    relax_share: float = 0.65
    last_relax_share: float = 0.4
    stage_weights: StageWeights = (1.0, 1.0, 1.0, 0.2)
    street_stage_weights: StageWeights = (1.0, 4.0, 1.0, 0.5)
    linearization_level: int = 2
    presolve_iterations: int = 1
    probing_level: int = 0
    pattern_bound: bool = True
    pattern_enumerate_up_to: int = 14
    pattern_max_states: int = 50_000
    pattern_max_labels: int = 1_000
    pattern_ng_size: int = 8
    pattern_dssr_rounds: int = 2
    pattern_columns: int = 5
    pattern_lp_iterations: int = 1_000_000
    pattern_price_groups: int = 400
    pattern_max_rounds: int = 200
    pattern_max_work: int = 10_000_000
    pattern_plan_share: float = 0.25
    pattern_plan_nodes: int = 200
    pattern_plan_rounds: int = 4
    pattern_cut_columns: int = 60_000

    def __post_init__(self) -> None:
        if self.time_limit_s <= 0:
            raise ValueError("time_limit_s must be positive")
        if self.workers < 0:
            raise ValueError("workers must be 0 (all cores) or more")
        for name in ("walk_weight", "continuity_weight", "balance_weight", "keep_weight",
                     "presolve_iterations", "probing_level"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("pattern_enumerate_up_to", "pattern_ng_size", "pattern_dssr_rounds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("pair_budget", "day_pair_budget", "pattern_max_states",
                     "pattern_max_labels", "pattern_price_groups", "pattern_max_rounds",
                     "pattern_max_work", "pattern_lp_iterations", "pattern_columns",
                     "pattern_plan_nodes", "pattern_plan_rounds", "pattern_cut_columns"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("relax_share", "last_relax_share"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1]")
        if not 0 <= self.pattern_plan_share < 1:
            raise ValueError("pattern_plan_share must be in [0, 1)")
        if not 0 <= self.linearization_level <= 2:
            raise ValueError("linearization_level must be 0, 1 or 2")
        for name in ("stage_weights", "street_stage_weights"):
            weights = tuple(float(w) for w in getattr(self, name))  # a TOML list too
            if len(weights) != 4 or any(w <= 0 for w in weights):
                raise ValueError(f"{name} must be four positive numbers (red, yellow, blue, "
                                 "quality)")
            object.__setattr__(self, name, weights)

    @property
    def limit_kind(self) -> str:
        """``deterministic`` or ``wall_clock``: what ``time_limit_s`` counts."""
        return "wall_clock" if self.wall_clock else "deterministic"

    def within_limit(self) -> SolveParams:
        """These parameters with the pattern stage's counts of work (``pattern_max_work``,
        ``pattern_lp_iterations``, ``pattern_cut_columns``) in proportion to ``time_limit_s``
        where it is shorter than ``DEFAULT_TIME_LIMIT_S``, the limit they are set for: a solve
        asked for sooner (a quick look, a test) gets a pattern stage as much shorter, still
        counted, so still the same on every run. The solver takes its parameters so."""
        part = self.time_limit_s / DEFAULT_TIME_LIMIT_S
        if part >= 1.0:
            return self
        return replace(self, **{name: max(1, round(getattr(self, name) * part))
                                for name in ("pattern_max_work", "pattern_lp_iterations",
                                             "pattern_cut_columns")})

    @property
    def budget(self) -> float:
        """The whole solve's budget on its :class:`Clock`: seconds, or deterministic time."""
        return self.time_limit_s * (1.0 if self.wall_clock else WORK_PER_SECOND)

    def cp_solver(self, limit: float) -> cp_model.CpSolver:
        """A CP-SAT solver with these workers, seed and search parameters and a limit of
        ``limit`` (seconds, or deterministic time unless ``wall_clock``; see
        :meth:`Clock.solve`)."""
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
        solver.parameters.linearization_level = self.linearization_level
        solver.parameters.max_presolve_iterations = self.presolve_iterations
        solver.parameters.cp_model_probing_level = self.probing_level
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
        values: dict[str, Any] = dict(section)
        return cls(**values)


class Clock:
    """Where a solve's budget is counted: the wall clock, or the deterministic time its CP-SAT
    solves have spent (``params.wall_clock`` decides).

    Deadlines (:class:`Deadline`) are readings of :meth:`now`. On the deterministic clock time
    only moves when a model is solved, so every choice made against a deadline (stage shares,
    rounds, passes) is the same on every run.
    """

    def __init__(self, params: SolveParams) -> None:
        self.params = params
        self.work = 0.0  # deterministic time spent by this clock's solves

    def now(self) -> float:
        return time.monotonic() if self.params.wall_clock else self.work

    def after(self, amount: float) -> Deadline:
        """The deadline ``amount`` from now (seconds, or deterministic time)."""
        return Deadline(self, self.now() + amount)

    def solve(self, model: cp_model.CpModel,
              deadline: Deadline) -> tuple[cp_model.CpSolver, cp_model.CpSolverStatus]:
        """Solve ``model`` with what is left until ``deadline``; returns the solver and its
        status. A deadline already passed still gets a token limit, so a model with a complete
        hint returns it."""
        solver = self.params.cp_solver(deadline.left())
        status = solver.solve(model)
        self.work += solver.deterministic_time
        return solver, status


@dataclass(frozen=True)
class Deadline:
    """A moment on a solve's :class:`Clock` (absolute: a reading of :meth:`Clock.now`), by
    which a stage, a round or a day must end. Time left and shares of it are always taken
    from the clock's present reading."""

    clock: Clock
    at: float

    def left(self) -> float:
        """What remains until the deadline (negative once it has passed)."""
        return self.at - self.clock.now()

    def passed(self) -> bool:
        return self.clock.now() >= self.at

    def share(self, part: float, whole: float = 1.0) -> Deadline:
        """The deadline by which ``part / whole`` of the time left is spent (now, when none
        is left): what a stage, a day or a round of this one gets, the rest rolling on."""
        now = self.clock.now()
        return Deadline(self.clock, now + max(self.at - now, 0.0) * part / whole)
