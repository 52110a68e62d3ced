"""``solve(problem) -> Schedule``: the weekly matcher's single entry point.

The problem is split into independent components (volunteers and occurrences linked by options,
occurrences linked by a shared merchant-day): distant volunteers never compete, so each component
is its own, smaller CP-SAT model and the lexicographic optimum of the week is the union of theirs.
Each component is solved in stages: red coverage, then yellow with red fixed at its optimum, then
blue, then the quality objective (walking, continuity, balance). The greedy plan is the first
hint, so the solver never reports less than the greedy baseline.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from matcher.circles import Candidates, ServiceCircle, build_candidates
from matcher.diagnosis import diagnose
from matcher.domain import (
    Assignment,
    LevelResult,
    Priority,
    Problem,
    Schedule,
    SolveStatus,
)
from matcher.greedy import greedy_plan
from matcher.model import ComponentModel
from matcher.params import SolveParams
from matcher.settings import Settings
from matcher.timeline import Plan
from matcher.travel import TravelTimes

Progress = Callable[[str], None]


@dataclass
class _Level:
    value: int = 0
    bound: int = 0
    optimal: bool = True


@dataclass
class _Component:
    occurrences: list[int]
    options: list[int]
    levels: dict[Priority, _Level] = field(default_factory=dict)


def components(cand: Candidates) -> list[_Component]:
    """Split coverable occurrences into independent groups (union-find)."""
    problem = cand.problem
    n_occ, n_vol = len(problem.occurrences), len(problem.volunteers)
    parent = list(range(n_occ + n_vol + len(problem.merchants) * 7))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    coverable = [o for o in range(n_occ) if cand.coverable(o)]
    keep = set(coverable)
    for opt in cand.options:
        if opt.occurrence in keep:
            union(opt.occurrence, n_occ + opt.volunteer)
    for (o, j) in cand.merchant_starts:
        if o in keep:
            union(o, n_occ + n_vol + 7 * j + problem.occurrences[o].day.number)
    groups: dict[int, _Component] = {}
    for o in coverable:
        groups.setdefault(find(o), _Component([], [])).occurrences.append(o)
    for i, opt in enumerate(cand.options):
        if opt.occurrence in keep:
            groups[find(opt.occurrence)].options.append(i)
    return sorted(groups.values(), key=lambda c: -len(c.options))


def _solver(params: SolveParams, seconds: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(seconds, 0.05)
    solver.parameters.num_workers = params.workers or max(os.cpu_count() or 1, 1)
    solver.parameters.random_seed = params.seed
    return solver


def _solve_component(cand: Candidates, comp: _Component, hint: Plan, params: SolveParams,
                     deadline: float) -> tuple[Plan, dict[str, float]]:
    """Lexicographic stages on one component; returns its plan and model statistics."""
    model = ComponentModel(cand, comp.occurrences, comp.options, params)
    stats: dict[str, float] = dict(model.stats)
    plan = Plan({o: hint.covered[o] for o in comp.occurrences if o in hint.covered})
    stages: list[tuple[Priority | None, cp_model.LinearExpr | None]] = [
        (p, model.coverage(p)) for p in Priority
    ]
    stages.append((None, model.quality()))
    for number, (priority, expr) in enumerate(stages):
        if expr is None:
            if priority is not None:
                comp.levels[priority] = _Level()
            continue
        model.hint(plan)
        # A coverage stage ignores lower priorities: switching them off lets presolve drop
        # their options and pairs, so the red stage is a far smaller model.
        stage = model.model.clone()
        if priority is not None:
            for o in comp.occurrences:
                if cand.problem.occurrences[o].need.priority.rank > priority.rank:
                    stage.add(stage.get_bool_var_from_proto_index(model.covered[o].index) == 0)
            stage.maximize(expr)
        else:
            stage.minimize(expr)
        # Coverage stages weigh 1, the quality stage 0.5: leftovers roll forward.
        weights = [1.0 if p is not None else 0.5 for p, _ in stages[number:]]
        remaining = max(deadline - time.monotonic(), 0.0)
        solver = _solver(params, remaining * weights[0] / sum(weights))
        status = solver.solve(stage)
        name = priority.value if priority is not None else "quality"
        stats[f"{name}_seconds"] = stats.get(f"{name}_seconds", 0.0) + solver.wall_time
        found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        if found:
            stage_plan = model.read(solver)
            # The stage only planned levels up to its own; refill the lower ones greedily so the
            # next stage starts from (and can always fall back on) a complete valid plan.
            plan = stage_plan if priority is None else _refill(cand, comp, stage_plan, priority)
        if priority is not None:
            level = sum(1 for o in plan.covered
                        if cand.problem.occurrences[o].need.priority is priority)
            bound = math.floor(solver.best_objective_bound + 1e-6) if found else \
                len([o for o in comp.occurrences
                     if cand.problem.occurrences[o].need.priority is priority])
            comp.levels[priority] = _Level(level, max(bound, level), status == cp_model.OPTIMAL)
            model.model.add(expr >= level)  # lexicographic: never trade this level away
    return plan, stats


def _refill(cand: Candidates, comp: _Component, stage: Plan, priority: Priority) -> Plan:
    """The stage's plan for levels up to ``priority``, lower levels filled in greedily."""
    kept = Plan({o: v for o, v in stage.covered.items()
                 if cand.problem.occurrences[o].need.priority.rank <= priority.rank})
    return greedy_plan(cand, comp.occurrences, base=kept)


def _assignments(cand: Candidates, plan: Plan) -> list[Assignment]:
    problem = cand.problem
    out: list[Assignment] = []
    for o, (start, merchant, options) in sorted(plan.covered.items()):
        occ = problem.occurrences[o]
        for i in options:
            opt = cand.options[i]
            walk = opt.walks[0] if merchant is None else opt.walks[opt.merchants.index(merchant)]
            out.append(Assignment(
                need_id=occ.need.id, day=occ.day, date=occ.date, start=start,
                end=start + occ.need.duration_min,
                volunteer_id=problem.volunteers[opt.volunteer].id,
                merchant_id=problem.merchants[merchant].id if merchant is not None else None,
                walk_min=round(walk, 2),
            ))
    out.sort(key=lambda a: (a.date, a.start, a.need_id, a.volunteer_id))
    return out


def solve(problem: Problem, params: SolveParams | None = None, *,
          travel: TravelTimes | None = None, settings: Settings | None = None,
          progress: Progress | None = None) -> Schedule:
    """Solve a community's week.

    Parameters
    ----------
    problem
        Volunteers, needs and merchants for one ISO week.
    params
        Time limit, workers, objective weights, seed.
    travel
        Walking minutes between places; built from geodesic x detour when omitted.
    settings
        Walking speed, detour factor and circle radius (for ``travel`` and the circle).
    progress
        Called with a short message as each step starts (the CLI shows it).

    Returns
    -------
    Schedule
        Assignments, unmet occurrences with reasons, per-priority coverage with bounds.
    """
    params = params or SolveParams()
    settings = settings or Settings()
    say = progress or (lambda _msg: None)
    began = time.monotonic()
    deadline = began + params.time_limit_s
    if travel is None:
        say("walking times (geodesic)")
        travel = TravelTimes.build(problem, settings)
    say("service circles and options")
    cand = build_candidates(problem, travel, ServiceCircle(settings.circle_min))
    say("greedy baseline")
    greedy = greedy_plan(cand)
    comps = components(cand)
    total_options = sum(len(c.options) for c in comps) or 1
    plan = Plan()
    stats: dict[str, float | int | str] = {
        "options": len(cand.options), "components": len(comps),
        "order_literals": 0, "pair_clauses": 0, "free_pairs": 0,
    }
    for p in Priority:
        stats[f"greedy_{p.value}"] = sum(
            1 for o in greedy.covered if problem.occurrences[o].need.priority is p)
    done_options = 0
    for n, comp in enumerate(comps, start=1):
        if len(comps) > 1:
            say(f"solving component {n}/{len(comps)} ({len(comp.occurrences)} occurrences)")
        else:
            say(f"solving {len(comp.occurrences)} occurrences with CP-SAT")
        # Each component gets time in proportion to its size, leftovers roll forward.
        share = len(comp.options) / max(total_options - done_options, 1)
        comp_deadline = time.monotonic() + max(deadline - time.monotonic(), 0.0) * share
        part, model_stats = _solve_component(cand, comp, greedy, params, comp_deadline)
        plan.covered.update(part.covered)
        for key, value in model_stats.items():
            stats[key] = round(float(stats.get(key, 0)) + value, 3)
        done_options += len(comp.options)
    levels: dict[Priority, LevelResult] = {}
    for p in Priority:
        occs = [o for o, occ in enumerate(problem.occurrences) if occ.need.priority is p]
        covered = sum(1 for o in occs if o in plan.covered)
        bound = sum(c.levels[p].bound for c in comps if p in c.levels)
        optimal = all(c.levels[p].optimal for c in comps if p in c.levels)
        levels[p] = LevelResult(covered, len(occs), max(bound, covered), optimal)
    all_optimal = all(lv.optimal for lv in levels.values())
    say("explaining unmet occurrences")
    unmet = diagnose(cand, plan, all_optimal)
    assignments = _assignments(cand, plan)
    status = (SolveStatus.EMPTY if not problem.occurrences
              else SolveStatus.OPTIMAL if all_optimal else SolveStatus.FEASIBLE)
    stats["travel"] = travel.method
    return Schedule(
        week=problem.week, assignments=assignments, unmet=unmet, levels=levels, status=status,
        total_walk_min=sum(a.walk_min for a in assignments),
        solve_seconds=time.monotonic() - began, stats=stats,
    )
