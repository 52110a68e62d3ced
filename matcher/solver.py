"""``solve(problem) -> Schedule``: the weekly matcher's single entry point.

The problem is split into independent components (:mod:`matcher.partition`), each its own CP-SAT
model; the lexicographic optimum of the week is the union of theirs. Each component is solved in
stages (:mod:`matcher.stages`): red coverage, then yellow with red kept at the level reached,
then blue, then the quality objective (walking, continuity, balance). The greedy plan is the
first hint and every stage keeps the best plan so far, so the result never falls below the
greedy baseline in the lexicographic order (a lower level may, when a higher one gained).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from matcher.circles import Candidates, ServiceCircle, build_candidates
from matcher.diagnosis import diagnose
from matcher.domain import (
    Assignment,
    Day,
    HeldPin,
    LevelResult,
    Priority,
    Problem,
    Schedule,
    SolveStatus,
    Unmet,
    UnmetReason,
)
from matcher.greedy import greedy_plan
from matcher.i18n import _
from matcher.params import Clock, SolveParams
from matcher.partition import partition
from matcher.pinning import Commitment, commit
from matcher.progress import Progress, Reporter, SolveProgress
from matcher.settings import Settings
from matcher.stages import (
    Component,
    Context,
    greedy_coverage,
    option_walk,
    sizes,
    solve_component,
)
from matcher.timeline import Plan, covered_count, keeps_pins
from matcher.travel import TravelTimes

__all__ = ["Progress", "SolveProgress", "solve"]


def _assignments(cand: Candidates, plan: Plan) -> list[Assignment]:
    problem = cand.problem
    out: list[Assignment] = []
    for o, (start, merchant, options) in sorted(plan.covered.items()):
        occ = problem.occurrences[o]
        for i in options:
            opt = cand.options[i]
            walk = option_walk(cand, i, merchant)
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
          progress: Progress | None = None,
          on_progress: Callable[[SolveProgress], None] | None = None,
          pinned: Sequence[Assignment] = (),
          forbidden: Collection[tuple[str, str, Day]] = (),
          not_before: dt.datetime | None = None,
          offered: Sequence[Assignment] = ()) -> Schedule:
    """Solve a community's week.

    Parameters
    ----------
    problem
        Volunteers, needs and merchants for one ISO week.
    params
        Limit (deterministic unless ``wall_clock``), workers, objective weights, seed.
    travel
        Walking minutes between places; built from geodesic x detour when omitted.
    settings
        Walking speed, detour factor and circle radius (for ``travel`` and the circle).
    progress
        Called with a short English message as each step starts (the API's jobs store it).
    on_progress
        Called with a :class:`SolveProgress` as each step starts and as a level improves: the
        level, the best coverage so far, its bound, the share of the budget spent (the CLI's
        progress bar).
    pinned
        Assignments already agreed (a re-solve of a week under way): each is in the result as
        it is, and counts for every rule of the others (:mod:`matcher.pinning`). One that no
        longer fits the rules is kept too, and reported in ``Schedule.held``.
    forbidden
        ``(volunteer_id, need_id, day)`` never to assign (declines).
    not_before
        A naive local time: nothing new is offered earlier (earlier days' occurrences are
        closed, today's keep the starts still ahead). None: the whole week is open.
    offered
        Assignments offered and not yet answered: the quality stage keeps them as they are
        where that costs less than ``SolveParams.keep_weight`` each (coverage comes first).

    Returns
    -------
    Schedule
        Assignments, unmet occurrences with reasons, per-priority coverage with bounds.
    """
    params = (params or SolveParams()).within_limit()
    settings = settings or Settings()
    began = time.monotonic()
    clock = Clock(params)
    deadline = clock.after(params.budget)
    say = Reporter(progress, on_progress, clock, params.budget,
                   {p: sum(1 for o in problem.occurrences if o.need.priority is p)
                    for p in Priority})
    if travel is None:
        say("walking times (geodesic)")
        travel = TravelTimes.build(problem, settings)
    say("service circles and options")
    cand = build_candidates(problem, travel, ServiceCircle(settings.circle_min))
    commitment = None
    if pinned or forbidden or not_before is not None or offered:
        say("work under way pinned")
        commitment = commit(cand, pinned, forbidden, not_before, offered)
        cand = commitment.cand
    say("greedy baseline")
    greedy = greedy_plan(cand, base=Plan(dict(cand.pin_plan)))
    comps = [Component(part.occurrences, part.options) for part in partition(cand)]
    total_options = sum(len(c.options) for c in comps) or 1
    ctx = Context(cand, params, clock, say)
    plan = Plan()
    stats: dict[str, float | int | str] = {
        "options": len(cand.options), "components": len(comps),
    }
    for p in Priority:
        stats[f"greedy_{p.value}"] = say.best[p] = covered_count(cand, greedy, p)
        # An occurrence in no component has no option: it counts in no bound.
        say.bound_rest[p] = sum(1 for c in comps for o in c.occurrences
                                if problem.occurrences[o].need.priority is p)
    done_options = 0
    for n, comp in enumerate(comps, start=1):
        if len(comps) > 1:
            say(f"solving component {n}/{len(comps)} ({len(comp.occurrences)} occurrences)")
        else:
            say(f"solving {len(comp.occurrences)} occurrences with CP-SAT")
        # Each component gets time in proportion to its size, leftovers roll forward.
        comp_deadline = deadline.share(len(comp.options)
                                       / max(total_options - done_options, 1))
        # Stage by stage progress text only where stages take noticeable time.
        say.component(greedy_coverage(cand, greedy, comp.occurrences),
                      sizes(problem, comp.occurrences), loud=len(comp.options) >= 1000)
        part = solve_component(ctx, comp, greedy, comp_deadline)
        if not keeps_pins(cand, part, comp.occurrences):
            # Never expected (every model forces the pins); the greedy plan always keeps them.
            part = Plan({o: v for o, v in greedy.covered.items() if o in set(comp.occurrences)})
        plan.covered.update(part.covered)
        say.done({p: covered_count(cand, part, p) for p in comp.levels},
                 {p: level.bound for p, level in comp.levels.items()})
        for key, value in comp.stats.items():
            stats[key] = round(float(stats.get(key, 0)) + value, 3)
        done_options += len(comp.options)
    levels: dict[Priority, LevelResult] = {}
    for p in Priority:
        occs = [o for o, occ in enumerate(problem.occurrences) if occ.need.priority is p]
        covered = sum(1 for o in occs if o in plan.covered)
        bound = sum(c.levels[p].bound for c in comps if p in c.levels)
        optimal = all(c.levels[p].proven for c in comps if p in c.levels)
        levels[p] = LevelResult(covered, len(occs), max(bound, covered), optimal)
    all_optimal = all(lv.optimal for lv in levels.values())
    say.step("explain", "explaining unmet occurrences")
    unmet = diagnose(cand, plan, all_optimal)
    assignments = _assignments(cand, plan)
    held: list[HeldPin] = []
    if commitment is not None:
        unmet = _unmet_under_way(commitment, unmet)
        held = commitment.held
        assignments = sorted([*assignments, *(h.assignment for h in held)],
                             key=lambda a: (a.date, a.start, a.need_id, a.volunteer_id))
        stats["pinned"] = len(pinned)
        stats["pinned_held"] = len(held)
    status = (SolveStatus.EMPTY if not problem.occurrences
              else SolveStatus.OPTIMAL if all_optimal else SolveStatus.FEASIBLE)
    stats["travel"] = travel.method
    return Schedule(
        week=problem.week, assignments=assignments, unmet=unmet, levels=levels, status=status,
        total_walk_min=sum(a.walk_min for a in assignments),
        solve_seconds=time.monotonic() - began, stats=stats, held=held,
        limit=params.limit_kind, deterministic_time=clock.work,
        deterministic_limit=None if params.wall_clock else params.budget,
    )


def _unmet_under_way(commitment: Commitment, unmet: list[Unmet]) -> list[Unmet]:
    """The diagnosis, where an occurrence is closed or held, saying so instead."""
    problem = commitment.cand.problem
    index = {(o.need.id, o.day): k for k, o in enumerate(problem.occurrences)}
    why = {(h.assignment.need_id, h.assignment.day): h.detail for h in commitment.held}
    out = []
    for u in unmet:
        o = index[u.need_id, u.day]
        if o in commitment.held_occurrences:
            out.append(replace(u, reason=UnmetReason.HELD, candidates=(),
                               detail=_("kept as agreed although it breaks a rule: "
                                        "{why}").format(why=why.get((u.need_id, u.day))
                                                        or _("see its tasks")),
                               fix=_("check its tasks with the volunteers")))
        elif o in commitment.closed:
            out.append(replace(u, reason=UnmetReason.PASSED, candidates=(),
                               detail=_("its time has passed: no one new is offered it"),
                               fix=""))
        else:
            out.append(u)
    return out
