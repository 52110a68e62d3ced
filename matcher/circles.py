"""The 15-minute service circle (15分钟生活圈) and who can serve which occurrence.

An :class:`Option` is one way a volunteer could serve one occurrence: inside one of the
volunteer's availability windows that day, with the merchants that lie in both circles. Options
are the only pairs the solver and the greedy baseline consider, so rules R1 (skills), R2
(availability), R3 (window), R4 (circle) and the static part of R8 (service, opening hours) hold
for every option by construction.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from matcher.domain import Day, Need, Occurrence, Problem, Volunteer
from matcher.travel import TravelTimes

if TYPE_CHECKING:
    from matcher.timeline import Cover

EPS = 1e-9


@dataclass(frozen=True)
class ServiceCircle:
    """Who is near enough: a walking radius in minutes (SCHEMA.md: 15)."""

    radius_min: float = 15.0

    def contains(self, walk_min: float) -> bool:
        """Whether a walk of ``walk_min`` minutes stays inside the circle."""
        return walk_min <= self.radius_min + EPS


def walk_ceil(minutes: float) -> int:
    """Whole minutes to reserve for a walk: starts and ends are whole minutes (HH:MM)."""
    return math.ceil(minutes - 1e-7)


@dataclass(frozen=True, slots=True)
class Option:
    """Volunteer ``volunteer`` can serve occurrence ``occurrence`` starting in ``[lo, hi]``.

    ``merchants`` are the merchant indices usable by this volunteer (empty when the need has no
    ``merchant_service``) and ``walks`` the matching home -> (merchant ->) need walking minutes;
    without a merchant ``walks`` has the single home -> need walk.
    """

    volunteer: int
    occurrence: int
    lo: int
    hi: int
    merchants: tuple[int, ...]
    walks: tuple[float, ...]

    @property
    def best_walk(self) -> float:
        return min(self.walks)


@dataclass
class Candidates:
    """Every option of a problem, indexed for the model, greedy and diagnosis."""

    problem: Problem
    travel: TravelTimes
    circle: ServiceCircle
    options: list[Option]
    merchant_starts: dict[tuple[int, int], tuple[int, int]]  # (occ, merchant) -> start bounds
    by_occurrence: list[list[int]] = field(default_factory=list)
    by_volunteer: list[list[int]] = field(default_factory=list)
    # Work already under way (matcher.pinning): options every plan must choose, the covered
    # occurrences they make up (occurrence -> start, merchant, options), and the R6/R8 limits
    # left where tasks held outside the model use some.
    pinned: frozenset[int] = frozenset()
    pin_plan: dict[int, Cover] = field(default_factory=dict)
    minutes_caps: dict[int, int] = field(default_factory=dict)
    merchant_caps: dict[tuple[int, Day], int] = field(default_factory=dict)
    # Options that would keep an offer already made, with its start and merchant (quality).
    kept_offers: dict[int, tuple[int, int | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_occ, n_vol = len(self.problem.occurrences), len(self.problem.volunteers)
        self.by_occurrence = [[] for _ in range(n_occ)]
        self.by_volunteer = [[] for _ in range(n_vol)]
        for i, opt in enumerate(self.options):
            self.by_occurrence[opt.occurrence].append(i)
            self.by_volunteer[opt.volunteer].append(i)
        v_keys = [("V", v.id) for v in self.problem.volunteers]
        n_keys = [("N", n.id) for n in self.problem.needs]
        m_keys = [("M", m.id) for m in self.problem.merchants]
        idx = self.travel.index
        self._v = [idx[k] for k in v_keys]
        self._n = [idx[k] for k in n_keys]
        self._m = [idx[k] for k in m_keys]
        need_pos = {n.id: i for i, n in enumerate(self.problem.needs)}
        self.occ_need = [need_pos[o.need.id] for o in self.problem.occurrences]
        self.occ_merchants: list[dict[int, tuple[int, int]]] = [{} for _ in range(n_occ)]
        for (o, j), bounds in self.merchant_starts.items():
            self.occ_merchants[o][j] = bounds
        # R5's walks by (occurrence, occurrence, merchant): they depend on places alone, not
        # on the volunteer, and the models, timelines and patterns ask for the same ones often.
        self._transitions: dict[tuple[int, int, int | None], float] = {}

    def minutes_cap(self, volunteer: int) -> int:
        """R6: the minutes volunteer ``volunteer`` may work this week in a plan."""
        return self.minutes_caps.get(volunteer,
                                     self.problem.volunteers[volunteer].max_minutes_week)

    def merchant_capacity(self, merchant: int, day: Day) -> int:
        """R8: the orders merchant ``merchant`` may take on ``day`` in a plan."""
        return self.merchant_caps.get((merchant, day),
                                      self.problem.merchants[merchant].capacity_per_day)

    def distinct_volunteers(self, occurrence: int) -> int:
        return len({self.options[i].volunteer for i in self.by_occurrence[occurrence]})

    def coverable(self, occurrence: int) -> bool:
        """Enough distinct volunteers have an option (R7 needs exactly ``volunteers_needed``)."""
        need = self.problem.occurrences[occurrence].need
        return self.distinct_volunteers(occurrence) >= need.volunteers_needed

    # Walking minutes between places, by index.
    def home_to_need(self, v: int, occ: int) -> float:
        return self.travel.at(self._v[v], self._n[self.occ_need[occ]])

    def need_to_need(self, a: int, b: int) -> float:
        return self.travel.at(self._n[self.occ_need[a]], self._n[self.occ_need[b]])

    def need_to_merchant(self, occ: int, m: int) -> float:
        return self.travel.at(self._n[self.occ_need[occ]], self._m[m])

    def home_to_merchant(self, v: int, m: int) -> float:
        return self.travel.at(self._v[v], self._m[m])

    def transition(self, a: int, b: int, merchant_b: int | None) -> float:
        """R5: walking minutes from occurrence ``a``'s place to ``b``'s start of service."""
        key = (a, b, merchant_b)
        walk = self._transitions.get(key)
        if walk is None:
            walk = self._transitions[key] = (
                self.need_to_need(a, b) if merchant_b is None
                else self.need_to_merchant(a, merchant_b) + self.need_to_merchant(b, merchant_b))
        return walk


def _skilled(volunteer: Volunteer, need: Need) -> bool:
    return need.skills <= volunteer.skills


def merchant_choices(problem: Problem, travel: TravelTimes, circle: ServiceCircle,
                     occ: Occurrence) -> dict[int, tuple[int, int]]:
    """Merchants that could serve an occurrence, with the start bounds their hours allow.

    R8 (static part): offers the service, open at the start, capacity above zero; R4: within the
    circle of the need. Returns ``{merchant index: (earliest start, latest start)}``.
    """
    need = occ.need
    out: dict[int, tuple[int, int]] = {}
    if need.merchant_service is None:
        return out
    for j, m in enumerate(problem.merchants):
        if need.merchant_service not in m.services or m.capacity_per_day <= 0:
            continue
        if not circle.contains(travel.between(("M", m.id), ("N", need.id))):
            continue
        lo = max(occ.earliest_start, m.open.start)
        hi = min(occ.latest_start, m.open.end - 1)  # open at start: start < closing time
        if lo <= hi:
            out[j] = (lo, hi)
    return out


def _occurrence_options(problem: Problem, travel: TravelTimes, circle: ServiceCircle, o: int,
                        near: list[tuple[int, float]], mchoices: dict[int, tuple[int, int]]
                        ) -> list[Option]:
    """The options of occurrence ``o``; ``near`` holds the volunteers within the circle of its
    place, in volunteer order, with their walks to it."""
    occ = problem.occurrences[o]
    need = occ.need
    options: list[Option] = []
    if need.merchant_service is not None and not mchoices:
        return options
    for v, direct in near:
        volunteer = problem.volunteers[v]
        if not _skilled(volunteer, need) or need.duration_min > volunteer.max_minutes_week:
            continue
        merchants: list[int] = []
        walks: list[float] = []
        if need.merchant_service is None:
            walks.append(direct)
            start_lo, start_hi = occ.earliest_start, occ.latest_start
        else:
            for j in mchoices:
                to_m = travel.between(("V", volunteer.id), ("M", problem.merchants[j].id))
                if circle.contains(to_m):
                    merchants.append(j)
                    walks.append(to_m + travel.between(
                        ("M", problem.merchants[j].id), ("N", need.id)))
            if not merchants:
                continue
            start_lo = min(mchoices[j][0] for j in merchants)
            start_hi = max(mchoices[j][1] for j in merchants)
        for window in volunteer.windows_on(occ.day):
            lo = max(start_lo, window.start)
            hi = min(start_hi, window.end - need.duration_min)
            if lo <= hi:
                options.append(Option(v, o, lo, hi, tuple(merchants), tuple(walks)))
    return options


def build_candidates(problem: Problem, travel: TravelTimes,
                     circle: ServiceCircle) -> Candidates:
    """Enumerate every option (volunteer, occurrence, availability window).

    Cost is linear in the pairs within the circle (each need's row of the travel table), not
    in volunteers x needs.
    """
    idx = travel.index
    need_pos = {n.id: i for i, n in enumerate(problem.needs)}
    # Each need's volunteers within the circle, in volunteer order, from the volunteers' rows of
    # the travel table: the loop below visits only those, never every volunteer.
    need_at = {idx[("N", n.id)]: k for k, n in enumerate(problem.needs)}
    near: list[list[tuple[int, float]]] = [[] for _ in problem.needs]
    for v, volunteer in enumerate(problem.volunteers):
        places, minutes = travel.row(idx[("V", volunteer.id)])
        for place, walk in zip(places.tolist(), minutes.tolist(), strict=True):
            if place in need_at and circle.contains(walk):
                near[need_at[place]].append((v, walk))
    merchant_starts: dict[tuple[int, int], tuple[int, int]] = {}
    options: list[Option] = []
    for o, occ in enumerate(problem.occurrences):
        mchoices = merchant_choices(problem, travel, circle, occ)
        for (j, bounds) in mchoices.items():
            merchant_starts[(o, j)] = bounds
        options += _occurrence_options(problem, travel, circle, o,
                                       near[need_pos[occ.need.id]], mchoices)
    return Candidates(problem, travel, circle, options, merchant_starts)


def changed_candidates(cand: Candidates, problem: Problem, travel: TravelTimes,
                       occurrence: int) -> Candidates:
    """``cand`` for ``problem``, a copy of ``cand.problem`` changed so that no rule gets
    stricter, volunteers and merchants only added after the others: ``occurrence``'s options and
    merchants are computed anew, every other option is kept as it was (a plan of ``cand`` stays
    valid and keeps its option indices). ``travel`` covers the places of ``problem``.

    Cheap where :func:`build_candidates` is not: it serves "would this change let the
    occurrence be covered with the rest of the week as planned?" for each unmet occurrence.
    """
    occ = problem.occurrences[occurrence]
    mchoices = merchant_choices(problem, travel, circle := cand.circle, occ)
    # On the same table (new places aside), the volunteers already there keep their places in
    # it: only new ones are looked up.
    known = len(cand.problem.volunteers) if travel.keys is cand.travel.keys else 0
    homes = cand._v[:known] + [travel.index[("V", v.id)] for v in problem.volunteers[known:]]
    place = travel.index[("N", occ.need.id)]
    walks = ((v, travel.at(home, place)) for v, home in enumerate(homes))
    near = [(v, walk) for v, walk in walks if circle.contains(walk)]
    fresh = _occurrence_options(problem, travel, circle, occurrence, near, mchoices)
    out = copy.copy(cand)
    out.problem, out.travel = problem, travel
    out.options = [*cand.options, *fresh]
    out.by_occurrence = list(cand.by_occurrence)
    out.by_occurrence[occurrence] = list(range(len(cand.options), len(out.options)))
    out.by_volunteer = []  # not kept up to date: nothing that checks one occurrence needs it
    out.merchant_starts = {k: v for k, v in cand.merchant_starts.items() if k[0] != occurrence}
    out.merchant_starts.update({(occurrence, j): b for j, b in mchoices.items()})
    out.occ_merchants = list(cand.occ_merchants)
    out.occ_merchants[occurrence] = dict(mchoices)
    out._v = homes
    out._m = [travel.index[("M", m.id)] for m in problem.merchants]
    out._transitions = {}  # walks on the changed problem's places
    return out
