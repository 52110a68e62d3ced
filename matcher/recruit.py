"""Where to recruit: from a week's unmet occurrences, the places where one more volunteer with a
skill, free at the times that went unmet, would cover the most of them.

The places are street nodes (or, without a network, the needs' own places). A place *reaches*
an unmet occurrence when the need is within the circle of it (and, for a need served with a
merchant, a merchant offering the service is within the circle of both). Choosing ``k`` places
that reach the most occurrences is maximum coverage: solved exactly with CP-SAT for ``k`` up to
:data:`EXACT_MAX_K`, and greedily (always the place adding the most) for every ``k``; coverage
is submodular, so the greedy reaches at least 1 - 1/e of the optimum (Nemhauser, Wolsey and
Fisher 1978), and both are reported.

Reaching is not serving: a recruit has weekly hours and one pair of hands, so each suggestion is
then checked by re-solving the week with a synthetic volunteer there (the suggestions before it
included), and the gain reported is the gain that solve finds, not the coverage estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from ortools.sat.python import cp_model

from matcher.domain import Availability, Day, Location, Need, Problem, TimeWindow, Volunteer
from matcher.i18n import _
from matcher.params import SolveParams
from matcher.settings import Settings
from matcher.solver import solve
from matcher.travel import TravelTimes, WalkingNetwork, walk_minutes

EXACT_MAX_K = 10
GREEDY_GUARANTEE = 1.0 - 1.0 / math.e
RECRUIT_PREFIX = "RECRUIT-"


def skill_label(skill: str) -> str:
    """A skill as people say it after 会 ("can ..."); the code itself when we have no words."""
    labels = {
        "meal_delivery": _("deliver meals"),
        "escort_medical": _("escort to the doctor"),
        "childcare": _("look after children"),
        "childminding_certified": _("mind children (certified)"),
        "tutoring": _("help with homework"),
        "cleaning": _("clean"),
        "first_aid": _("give first aid"),
    }
    return labels.get(skill, skill)


def _part_of_day(start: int) -> str:
    if start < 12 * 60:
        return _("morning")
    if start < 18 * 60:
        return _("afternoon")
    return _("evening")


def _day_name(day: Day) -> str:
    names = {Day.MON: _("Monday"), Day.TUE: _("Tuesday"), Day.WED: _("Wednesday"),
             Day.THU: _("Thursday"), Day.FRI: _("Friday"), Day.SAT: _("Saturday"),
             Day.SUN: _("Sunday")}
    return names[day]


def when_free(availability: Sequence[Availability]) -> str:
    """"Wednesday afternoon, Friday morning": the days and parts of day of the windows."""
    days = list(Day)
    parts = sorted({(days.index(a.day), a.window.start >= 12 * 60, a.window.start >= 18 * 60,
                     a.day, a.window.start) for a in availability})
    said: list[str] = []
    for _k, _pm, _eve, day, start in parts:
        text = _("{day} {part}").format(day=_day_name(day), part=_part_of_day(start))
        if text not in said:
            said.append(text)
    return _(" or ").join(said)


def merge_windows(availability: Sequence[Availability]) -> tuple[Availability, ...]:
    """Overlapping or touching windows of a day as one."""
    out: list[Availability] = []
    for a in sorted(availability, key=lambda a: (list(Day).index(a.day), a.window.start)):
        last = out[-1] if out else None
        if last is not None and last.day == a.day and a.window.start <= last.window.end:
            end = max(last.window.end, a.window.end)
            out[-1] = Availability(a.day, TimeWindow(last.window.start, end))
        else:
            out.append(a)
    return tuple(out)


@dataclass(frozen=True)
class Suggestion:
    """One place to recruit at, and what the re-solve found it adds.

    ``reaches`` are the unmet occurrences within its circle; ``adds`` those it adds to the
    coverage of the places before it (the estimate); ``gain`` the occurrences the re-solved
    week covers more than with the places before it only (the truth).
    """

    place: Location
    street: str
    availability: tuple[Availability, ...]
    reaches: tuple[tuple[str, Day], ...]
    adds: int
    gain: int
    volunteer: Volunteer


@dataclass(kw_only=True)
class PlacesChosen:
    """How k places were chosen (maximum coverage, greedy and exact) and what re-solving the
    week with them found: what recruits and partners have in common."""

    greedy_cover: int
    exact_cover: int | None  # None when k is beyond EXACT_MAX_K
    covered_before: int
    covered_after: int
    proven: bool  # every re-solve proved its coverage optimal
    greedy_places: list[int] = field(default_factory=list)

    @property
    def bound(self) -> float:
        """An upper bound on the best coverage of k places: the exact value, or the greedy's
        divided by its guarantee."""
        if self.exact_cover is not None:
            return float(self.exact_cover)
        return self.greedy_cover / GREEDY_GUARANTEE


@dataclass
class RecruitPlan(PlacesChosen):
    """The suggestions for one skill, with both coverage values and the re-solves' figures."""

    skill: str
    k: int
    unmet: int  # unmet occurrences a recruit with the skill alone could serve
    suggestions: list[Suggestion]

    def sentences(self) -> list[str]:
        """The suggestions in plain words, places on the same street together."""
        groups: list[list[Suggestion]] = []
        for s in self.suggestions:
            if groups and groups[-1][0].street == s.street:
                groups[-1].append(s)
            else:
                groups.append([s])
        out = []
        for group in groups:
            availability = [a for s in group for a in s.availability]
            out.append(_("Recruit {n} volunteer(s) near {place} who can {skill} and are free "
                         "{when}: {gain} more services covered").format(
                n=len(group), place=group[0].street, skill=skill_label(self.skill),
                when=when_free(availability), gain=sum(s.gain for s in group)))
        return out


def street_near(network: WalkingNetwork, position: int) -> str:
    """The name of a street at a node: the longest named edge there, else the nearest named
    edge within a few steps; the coordinates when none has a name."""
    node = network.nodes[position]
    frontier, seen = [node], {node}
    for _step in range(4):
        best: tuple[float, str] | None = None
        for here in frontier:
            for _a, _b, data in network.graph.edges(here, data=True):
                name = str(data.get("name") or "")
                if name and (best is None or float(data["length"]) > best[0]):
                    best = (float(data["length"]), name)
        if best is not None:
            return best[1]
        frontier = [m for here in frontier for m in network.graph.neighbors(here)
                    if m not in seen]
        seen.update(frontier)
    return f"({network.lat[position]:.4f}, {network.lon[position]:.4f})"


def max_coverage_exact(covers: Sequence[frozenset[int]], items: int, k: int,
                       time_limit_s: float = 30.0) -> list[int]:
    """The at most ``k`` sets covering the most items (CP-SAT, proven optimal or raises)."""
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{j}") for j in range(len(covers))]
    by_item: list[list[int]] = [[] for _ in range(items)]
    for j, cover in enumerate(covers):
        for o in cover:
            by_item[o].append(j)
    y = [model.new_bool_var(f"y{o}") for o in range(items)]
    for o in range(items):
        model.add(y[o] <= sum(x[j] for j in by_item[o]))
    model.add(sum(x) <= k)
    model.maximize(sum(y))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 1
    if solver.solve(model) != cp_model.OPTIMAL:
        raise RuntimeError("maximum coverage not proven within the time limit")
    return [j for j in range(len(covers)) if solver.value(x[j])]


def max_coverage_greedy(covers: Sequence[frozenset[int]], k: int) -> list[int]:
    """Up to ``k`` sets, each the one adding the most uncovered items (first on ties); stops
    when nothing more can be added."""
    chosen: list[int] = []
    covered: set[int] = set()
    for _pick in range(k):
        best, best_gain = -1, 0
        for j, cover in enumerate(covers):
            gain = len(cover - covered)
            if gain > best_gain:
                best, best_gain = j, gain
        if best < 0:
            break
        chosen.append(best)
        covered |= covers[best]
    return chosen


def _greedy_order(covers: Sequence[frozenset[int]], chosen: Sequence[int]) -> list[int]:
    """The chosen sets ordered as the greedy would take them (largest addition first)."""
    order = max_coverage_greedy([covers[j] for j in chosen], len(chosen))
    return [chosen[j] for j in order]


def _covered(problem: Problem, settings: Settings, network: WalkingNetwork | None,
             params: SolveParams) -> tuple[int, bool, set[tuple[str, Day]]]:
    travel = TravelTimes.build(problem, settings, network)
    schedule = solve(problem, params, travel=travel, settings=settings)
    proven = all(level.optimal for level in schedule.levels.values())
    return schedule.covered, proven, schedule.covered_keys()


def suggest_recruits(problem: Problem, skill: str, k: int, settings: Settings,
                     network: WalkingNetwork | None = None,
                     params: SolveParams | None = None, hours: float = 4.0) -> RecruitPlan:
    """The ``k`` places to recruit a volunteer with ``skill`` at, checked by re-solving.

    Parameters
    ----------
    problem
        The week; it is solved first to find what goes unmet.
    skill
        The recruit's one skill: only unmet occurrences needing no other skill, and one
        volunteer, count.
    k
        How many recruits.
    hours
        The recruit's weekly hours (the default of a volunteer).
    """
    params = params or SolveParams(time_limit_s=30)
    before, proven, covered_keys = _covered(problem, settings, network, params)
    wanted = [o for o in problem.occurrences
              if o.key not in covered_keys and o.need.skills <= {skill}
              and o.need.volunteers_needed == 1]
    needs = list({o.need.id: o.need for o in wanted}.values())
    if network is not None:
        places = [Location(float(a), float(b))
                  for a, b in zip(network.lat, network.lon, strict=True)]
    else:
        places = [n.location for n in needs]
    reach = _reach(problem, needs, places, settings, network)
    need_index = {n.id: i for i, n in enumerate(needs)}
    covers = [frozenset(o for o, occ in enumerate(wanted) if reach[need_index[occ.need.id], j])
              for j in range(len(places))]
    greedy = max_coverage_greedy(covers, k)
    greedy_cover = len(frozenset().union(*(covers[j] for j in greedy)))
    exact: list[int] | None = None
    if k <= EXACT_MAX_K and wanted:
        useful = [j for j, c in enumerate(covers) if c]
        picked = max_coverage_exact([covers[j] for j in useful], len(wanted), k)
        exact = [useful[j] for j in picked]
    chosen = _greedy_order(covers, exact) if exact is not None else greedy
    exact_cover = (len(frozenset().union(*(covers[j] for j in exact)))
                   if exact is not None else (0 if k <= EXACT_MAX_K else None))
    suggestions: list[Suggestion] = []
    current = problem
    covered = before
    so_far: set[int] = set()
    for number, j in enumerate(chosen, start=1):
        reached = sorted(covers[j], key=lambda o: wanted[o].key)
        availability = merge_windows([Availability(wanted[o].day, wanted[o].need.window)
                                      for o in reached])
        recruit = Volunteer(f"{RECRUIT_PREFIX}{number}", _("new volunteer"), places[j],
                            frozenset({skill}), availability, hours)
        current = replace(current, volunteers=[*current.volunteers, recruit])
        after, ok, _keys = _covered(current, settings, network, params)
        proven = proven and ok
        street = (street_near(network, j) if network is not None
                  else f"({places[j].lat:.4f}, {places[j].lon:.4f})")
        suggestions.append(Suggestion(places[j], street, availability,
                                      tuple(wanted[o].key for o in reached),
                                      len(covers[j] - so_far), after - covered, recruit))
        so_far |= covers[j]
        covered = after
    return RecruitPlan(skill, k, len(wanted), suggestions, greedy_cover=greedy_cover,
                       exact_cover=exact_cover, covered_before=before, covered_after=covered,
                       proven=proven, greedy_places=greedy)


def _reach(problem: Problem, typed: Sequence[Need], places: Sequence[Location],
           settings: Settings, network: WalkingNetwork | None) -> np.ndarray:
    """Needs x places: whether a volunteer living at the place could serve the need (R4: the
    need, and for a merchant need some merchant offering the service, within the circle)."""
    if not typed:
        return np.zeros((0, len(places)), dtype=bool)
    circle = settings.circle_min
    minutes = walk_minutes([n.location for n in typed], places, settings, network)
    ok = minutes <= circle
    merchants = problem.merchants
    if any(n.merchant_service for n in typed) and merchants:
        to_places = walk_minutes([m.location for m in merchants], places, settings, network)
        to_needs = walk_minutes([m.location for m in merchants], [n.location for n in typed],
                                settings, network)
        for i, n in enumerate(typed):
            if n.merchant_service is None:
                continue
            offering = [m for m, shop in enumerate(merchants)
                        if n.merchant_service in shop.services and to_needs[m, i] <= circle]
            via = (to_places[offering] <= circle).any(axis=0) if offering else False
            ok[i] &= via
    elif any(n.merchant_service for n in typed):
        for i, n in enumerate(typed):
            if n.merchant_service is not None:
                ok[i] = False
    return ok
