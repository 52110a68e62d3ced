"""The CP-SAT model of one component of a weekly schedule.

Built in the fixed order data -> variables -> constraints -> objectives. Each rule of SCHEMA.md
is one method that posts its constraints; the rules that hold by construction of the options
(R1 skills, R3 window, R4 circle of the need) are checked in :mod:`matcher.circles`.

The model comes in two strengths. With ``travel=True`` it is exact. With ``travel=False`` it
drops the walk between consecutive tasks (R5 becomes a plain no-overlap), which makes it a
relaxation: every valid schedule is feasible in it, so its optimum bounds the exact one from
above, and it is small enough to solve to optimality at street scale.

How travel is expressed (R5): a volunteer's options on one day are compared pairwise, but most
pairs need nothing. When one order is always satisfied by the start bounds (a morning visit and an
afternoon one), no constraint is posted; when neither order can fit, the pair becomes one clause;
only pairs whose windows really overlap get an order literal and enforced inequalities. A
NoOverlap over the same tasks gives CP-SAT its strong scheduling propagation.

A volunteer going via a merchant is not a variable of its own: the occurrence's merchant is, and
the volunteer's merchant is the same one (R8), so "a, then b via merchant j" is enforced by the
literals of a, b and "b uses j".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable
from itertools import combinations

from ortools.sat.python import cp_model

from matcher.circles import Candidates, walk_ceil
from matcher.domain import Day, Priority
from matcher.params import SolveParams
from matcher.timeline import Cover, Plan

INF_WALK = 10**6


class ComponentModel:
    """Variables and constraints for the occurrences and options of one component.

    Parameters
    ----------
    cand
        All options of the problem.
    occurrences
        Indices of the coverable occurrences in this component.
    options
        Indices of the options touching them (all of them, or a shortlist).
    travel
        Whether R5 includes the walk between tasks (exact) or not (the relaxation).
    minutes_left
        R6 caps to use instead of the weekly ones (when other days are planned already).
    """

    def __init__(self, cand: Candidates, occurrences: list[int], options: list[int],
                 params: SolveParams, *, travel: bool = True,
                 minutes_left: dict[int, int] | None = None) -> None:
        self.cand, self.params, self.travel = cand, params, travel
        self.minutes_left = minutes_left or {}
        # Auxiliary variables and what fixes them in a plan, so that hints are complete.
        self.orders: list[tuple[cp_model.IntVar, int, int]] = []  # true: a before b
        self.vias: list[tuple[cp_model.IntVar, int, int]] = []  # option i via merchant j
        self.serves: list[tuple[cp_model.IntVar, list[int]]] = []  # any of the options
        self.excess: list[tuple[cp_model.IntVar, list[tuple[int, int]], int]] = []
        self.keeps: list[tuple[cp_model.IntVar, int, int]] = []  # option i at start s
        self.goal: tuple[cp_model.IntVar, Priority] | None = None  # see maximize_coverage
        self.cap = 0  # the goal's upper bound
        self.unit = 1  # the objective's weight of one covered occurrence
        self.occurrences, self.options = occurrences, options
        self.by_occurrence: dict[int, list[int]] = {o: [] for o in occurrences}
        for i in options:
            self.by_occurrence[cand.options[i].occurrence].append(i)
        self.model = cp_model.CpModel()
        self._variables()
        self._r7_staffing()
        self._r2_availability()
        self._r8_merchants()
        self._r6_hours()
        self._r5_no_overlap()
        self._energy_cuts()

    # ----------------------------------------------------------------- variables
    def _label(self, o: int) -> str:
        occ = self.cand.problem.occurrences[o]
        return f"{occ.need.id}@{occ.day}"

    def _variables(self) -> None:
        m, cand = self.model, self.cand
        problem = cand.problem
        self.covered = {o: m.new_bool_var(f"covered[{self._label(o)}]") for o in self.occurrences}
        self.start = {
            o: m.new_int_var(problem.occurrences[o].earliest_start,
                             problem.occurrences[o].latest_start, f"start[{self._label(o)}]")
            for o in self.occurrences
        }
        self.x = {}
        for i in self.options:
            opt = cand.options[i]
            vid = problem.volunteers[opt.volunteer].id
            self.x[i] = m.new_bool_var(f"assign[{vid},{self._label(opt.occurrence)},{opt.lo}]")
        self.use_merchant: dict[tuple[int, int], cp_model.IntVar] = {}
        self.merchants_of: dict[int, list[int]] = defaultdict(list)
        for (o, j) in cand.merchant_starts:
            if o in self.covered:
                mid = problem.merchants[j].id
                self.use_merchant[o, j] = m.new_bool_var(f"merchant[{self._label(o)},{mid}]")
                self.merchants_of[o].append(j)

    # ----------------------------------------------------------------- rules
    def _r7_staffing(self) -> None:
        """R7/R9: exactly volunteers_needed distinct volunteers, or none; covered at most once."""
        per_volunteer: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i in self.options:
            opt = self.cand.options[i]
            per_volunteer[opt.volunteer, opt.occurrence].append(i)
        for o in self.occurrences:
            need = self.cand.problem.occurrences[o].need
            xs = [self.x[i] for i in self.by_occurrence[o]]
            self.model.add(sum(xs) == need.volunteers_needed * self.covered[o])
        for group in per_volunteer.values():
            if len(group) > 1:  # one volunteer, several windows: at most one of them
                self.model.add_at_most_one(self.x[i] for i in group)
        for i in self.cand.pinned:  # work under way is part of every plan (matcher.pinning)
            if i in self.x:
                self.model.add(self.x[i] == 1)

    def _r2_availability(self) -> None:
        """R2: the task lies inside the chosen availability window of the volunteer."""
        for i in self.options:
            opt = self.cand.options[i]
            occ = self.cand.problem.occurrences[opt.occurrence]
            start = self.start[opt.occurrence]
            if opt.lo > occ.earliest_start:
                self.model.add(start >= opt.lo).only_enforce_if(self.x[i])
            if opt.hi < occ.latest_start:
                self.model.add(start <= opt.hi).only_enforce_if(self.x[i])

    def _r8_merchants(self) -> None:
        """R8: one merchant per covered merchant need, open at start, within daily capacity."""
        cand, m = self.cand, self.model
        by_occ: dict[int, list[int]] = defaultdict(list)
        by_day: dict[tuple[int, Day], list[cp_model.IntVar]] = defaultdict(list)
        for (o, j), var in self.use_merchant.items():
            by_occ[o].append(j)
            by_day[j, cand.problem.occurrences[o].day].append(var)
            lo, hi = cand.merchant_starts[o, j]
            m.add(self.start[o] >= lo).only_enforce_if(var)
            m.add(self.start[o] <= hi).only_enforce_if(var)
        for o, merchants in by_occ.items():
            m.add(sum(self.use_merchant[o, j] for j in merchants) == self.covered[o])
        for (j, day), uses in by_day.items():
            capacity = cand.merchant_capacity(j, day)
            if len(uses) > capacity:
                m.add(sum(uses) <= capacity)
        # R4 with a merchant: each volunteer also has the occurrence's merchant in her circle.
        for i in self.options:
            opt = cand.options[i]
            if opt.merchants and len(opt.merchants) < len(self.merchants_of[opt.occurrence]):
                m.add_bool_or([self.x[i].Not(),
                               *(self.use_merchant[opt.occurrence, j] for j in opt.merchants)])

    def _r6_hours(self) -> None:
        """R6: a volunteer's task minutes in the week stay within the cap."""
        cand = self.cand
        load: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for i in self.options:
            opt = cand.options[i]
            load[opt.volunteer].append((i, cand.problem.occurrences[opt.occurrence].need
                                        .duration_min))
        self.load_terms = load
        for v, terms in load.items():
            cap = self.minutes_left.get(v, cand.minutes_cap(v))
            if sum(d for _, d in terms) > cap:
                self.model.add(sum(d * self.x[i] for i, d in terms) <= cap)

    def _transitions(self, a: int, b: int) -> list[tuple[int | None, int]]:
        """(merchant of b or None, whole minutes from a's place to b's service) per choice."""
        opt_b = self.cand.options[b]
        choices: list[int | None] = list(opt_b.merchants) or [None]
        out = []
        for j in choices:
            t = self.cand.transition(self.cand.options[a].occurrence, opt_b.occurrence, j)
            out.append((j, walk_ceil(t) if t < INF_WALK else INF_WALK))
        return out

    def _r5_no_overlap(self) -> None:
        """R5: a volunteer walks from one task to the next before it starts."""
        cand, m = self.cand, self.model
        by_day: dict[tuple[int, Day], list[int]] = defaultdict(list)
        for i in self.options:
            opt = cand.options[i]
            by_day[opt.volunteer, cand.problem.occurrences[opt.occurrence].day].append(i)
        self.walked: set[tuple[int, int]] = set()  # option pairs whose walk is enforced
        for group in by_day.values():
            if len(group) < 2:
                continue
            intervals = []
            for i in group:
                o = cand.options[i].occurrence
                duration = cand.problem.occurrences[o].need.duration_min
                intervals.append(m.new_optional_fixed_size_interval_var(
                    self.start[o], duration, self.x[i], f"task[{i}]"))
            m.add_no_overlap(intervals)
            if self.travel:
                self.add_walks(combinations(group, 2))

    def add_walks(self, pairs: Iterable[tuple[int, int]]) -> int:
        """Enforce the walk between each pair of options of one volunteer's day (R5 in full
        for them); returns how many pairs were new.

        A model built with ``travel=False`` stays a relaxation while pairs lack their walks;
        walks added where a plan broke them (:mod:`matcher.lazy`) make it exact where it
        matters. Pairs with an option outside the model are skipped.
        """
        added = 0
        for a, b in pairs:
            key = (min(a, b), max(a, b))
            if key in self.walked or a not in self.x or b not in self.x or \
                    self.cand.options[a].occurrence == self.cand.options[b].occurrence:
                continue
            self.walked.add(key)
            self._pair(*key)
            added += 1
        return added

    def _pair(self, a: int, b: int) -> None:
        cand, m = self.cand, self.model
        oa, ob = cand.options[a], cand.options[b]
        da = cand.problem.occurrences[oa.occurrence].need.duration_min
        db = cand.problem.occurrences[ob.occurrence].need.duration_min
        t_ab, t_ba = self._transitions(a, b), self._transitions(b, a)
        max_ab, max_ba = max(t for _, t in t_ab), max(t for _, t in t_ba)
        min_ab, min_ba = min(t for _, t in t_ab), min(t for _, t in t_ba)
        if oa.hi + da + max_ab <= ob.lo or ob.hi + db + max_ba <= oa.lo:
            return
        can_ab = oa.lo + da + min_ab <= ob.hi
        can_ba = ob.lo + db + min_ba <= oa.hi
        if not can_ab and not can_ba:
            m.add_bool_or([self.x[a].Not(), self.x[b].Not()])
            return
        if can_ab and can_ba:
            first = m.new_bool_var(f"order[{a},{b}]")
            self.orders.append((first, a, b))
            self._precede(a, b, da, t_ab, [first])
            self._precede(b, a, db, t_ba, [first.Not()])
        elif can_ab:
            self._precede(a, b, da, t_ab, [])
        else:
            self._precede(b, a, db, t_ba, [])

    def _precede(self, a: int, b: int, da: int, transitions: list[tuple[int | None, int]],
                 order: list[cp_model.LiteralT]) -> None:
        """When both are chosen (and the order literal says a first): b starts after a + walk."""
        cand = self.cand
        sa = self.start[cand.options[a].occurrence]
        sb = self.start[cand.options[b].occurrence]
        if len({t for _, t in transitions}) == 1:
            t = transitions[0][1]
            self.model.add(sb >= sa + da + t).only_enforce_if([self.x[a], self.x[b], *order])
            return
        ob = cand.options[b].occurrence
        for j, t in transitions:
            assert j is not None
            lits = [self.x[a], self.x[b], self.use_merchant[ob, j], *order]
            self.model.add(sb >= sa + da + t).only_enforce_if(lits)

    def _energy_cuts(self) -> None:
        """Redundant cuts for the LP bound: in any span of a volunteer's day, the tasks that
        must lie inside it cannot last longer than the span (tasks never overlap, R5)."""
        cand = self.cand
        by_day: dict[tuple[int, str], list[tuple[int, int, int, int]]] = defaultdict(list)
        for i in self.options:
            opt = cand.options[i]
            occ = cand.problem.occurrences[opt.occurrence]
            d = occ.need.duration_min
            by_day[opt.volunteer, occ.day].append((opt.lo, opt.hi + d, d, i))
        for spans in by_day.values():
            if len(spans) < 2:
                continue
            for a, b in {(lo, end) for lo, end, _, _ in spans}:
                inside = [(d, i) for lo, end, d, i in spans if a <= lo and end <= b]
                if sum(d for d, _ in inside) > b - a:
                    self.model.add(sum(d * self.x[i] for d, i in inside) <= b - a)

    # ----------------------------------------------------------------- objectives
    def keep_at_least(self, priority: Priority, covered: int) -> None:
        """Lexicographic order: a level already reached is never traded away."""
        expr = self.coverage(priority)
        if expr is not None:
            self.model.add(expr >= covered)

    def maximize_coverage(self, priority: Priority, cap: int, *,
                          shorter_walks: bool = False,
                          prefer: Collection[int] | None = None) -> None:
        """Maximise ``priority``'s coverage, known to be at most ``cap`` (a bound): as the
        objective's domain the cap lets CP-SAT stop the moment a plan reaches it, which a
        constraint on the sum would not.

        With ``shorter_walks``, among plans covering as many the one with less walking wins:
        one more occurrence outweighs any walking (the unit exceeds every option's walk taken
        together), so the order stays strictly lexicographic. Used where no proof is expected
        and nothing else would prefer near volunteers. With ``prefer`` (options), among plans
        covering as many the one whose tasks outside ``prefer`` take fewer minutes wins: a
        choice made for the whole week, followed where it costs no coverage, so the minutes
        it leaves a volunteer are there for her other days.
        """
        expr = self.coverage(priority)
        assert expr is not None
        goal = self.model.new_int_var(0, cap, f"covered[{priority.value}]")
        self.model.add(goal == expr)
        self.goal, self.cap = (goal, priority), cap
        costs: list[cp_model.LinearExpr] = []
        unit = 1
        if shorter_walks:
            unit += sum(round(self.params.walk_weight * max(self.cand.options[i].walks))
                        for i in self.options)
            costs.append(self.walking())
        if prefer is not None:
            kept = set(prefer)
            minutes = {i: self.cand.problem.occurrences[self.cand.options[i].occurrence]
                       .need.duration_min for i in self.options if i not in kept}
            unit += sum(minutes.values())
            costs.append(sum(d * self.x[i] for i, d in minutes.items()))  # type: ignore[arg-type]
        self.unit = unit
        self.model.maximize(unit * goal - sum(costs) if costs else goal)

    def lower_cap(self, cap: int) -> None:
        """Lower the goal's cap to a bound proven since (as by an earlier solve of this
        model, which only gains constraints): the next solve stops as soon as it meets it."""
        assert self.goal is not None, "maximize_coverage sets the goal first"
        if cap < self.cap:
            self.goal[0].with_domain(cp_model.Domain(0, cap))
            self.cap = cap

    def coverage_bound(self, solver: cp_model.CpSolver) -> int:
        """The solver's bound on the coverage goal after a solve (see maximize_coverage)."""
        # unit * goal - walking <= bound and walking <= unit - 1, so unit * goal is at most
        # bound + unit - 1 (just the bound without walking, where the unit is 1).
        bound = (solver.best_objective_bound + self.unit - 1) / self.unit
        return min(self.cap, math.floor(bound + 1e-6))

    def coverage(self, priority: Priority,
                 among: Iterable[int] | None = None) -> cp_model.LinearExpr | None:
        """Covered occurrences of one priority, of the model's or of those ``among`` them
        that it holds (None when there are none)."""
        occurrences = self.occurrences if among is None else \
            [o for o in among if o in self.covered]
        terms = [self.covered[o] for o in occurrences
                 if self.cand.problem.occurrences[o].need.priority is priority]
        return sum(terms) if terms else None  # type: ignore[return-value]

    def walking(self) -> cp_model.LinearExpr:
        """Walking minutes home -> (merchant ->) task, weighted by :class:`SolveParams`."""
        cand, m, p = self.cand, self.model, self.params
        terms = []
        for i in self.options:
            opt = cand.options[i]
            shortest = min(opt.walks)
            terms.append(round(p.walk_weight * shortest) * self.x[i])
            # Via a farther merchant costs the difference: "i and the occurrence uses j".
            for j, walk in zip(opt.merchants, opt.walks, strict=False):  # none without merchants
                extra = round(p.walk_weight * walk) - round(p.walk_weight * shortest)
                if extra > 0:
                    via = m.new_bool_var(f"via[{i},{j}]")
                    self.vias.append((via, i, j))
                    m.add_bool_or([self.x[i].Not(), self.use_merchant[opt.occurrence, j].Not(),
                                   via])
                    terms.append(extra * via)
        return sum(terms)  # type: ignore[return-value]

    def quality(self) -> cp_model.LinearExpr:
        """Walking, continuity, balance and offers kept, weighted by :class:`SolveParams`."""
        cand, m, p = self.cand, self.model, self.params
        terms = [self.walking()]
        if p.continuity_weight:
            by_need: dict[tuple[int, int], list[int]] = defaultdict(list)
            for i in self.options:
                opt = cand.options[i]
                by_need[opt.volunteer, cand.occ_need[opt.occurrence]].append(i)
            for (v, n), group in by_need.items():
                occs = {cand.options[i].occurrence for i in group}
                if len(occs) < 2:
                    continue
                serves = m.new_bool_var(f"serves[{v},{n}]")
                self.serves.append((serves, group))
                for i in group:
                    m.add_implication(self.x[i], serves)
                terms.append(p.continuity_weight * serves)
        if p.keep_weight:
            # An offer kept as made: the option chosen at the start it was offered at.
            for i, (start, merchant) in cand.kept_offers.items():
                if i not in self.x:
                    continue
                o = cand.options[i].occurrence
                keep = m.new_bool_var(f"keep[{i}]")
                self.keeps.append((keep, i, start))
                m.add_implication(keep, self.x[i])
                m.add(self.start[o] == start).only_enforce_if(keep)
                if merchant is not None:
                    m.add_implication(keep, self.use_merchant[o, merchant])
                terms.append(-p.keep_weight * keep)
        if p.balance_weight:
            for v, load in self.load_terms.items():
                total = sum(d for _, d in load)
                cap = min(total, cand.minutes_cap(v))
                for hour in range(1, cap // 60 + 1):
                    excess = m.new_int_var(0, cap, f"excess[{v},{hour}h]")
                    self.excess.append((excess, load, hour))
                    m.add(excess >= sum(d * self.x[i] for i, d in load) - 60 * hour)
                    terms.append(p.balance_weight * excess)
        return sum(terms)  # type: ignore[return-value]

    # ----------------------------------------------------------------- solutions
    def hint(self, plan: Plan) -> None:
        """Hint a plan (e.g. the greedy one) for the next solve, every variable of the model
        included: CP-SAT starts from a complete feasible hint at once, but has to repair an
        incomplete one and may not."""
        m = self.model
        m.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools
        chosen = {i for _, _, opts in plan.covered.values() for i in opts}
        for o in self.occurrences:
            entry = plan.covered.get(o)
            m.add_hint(self.covered[o], entry is not None)
            # An uncovered occurrence's start is free; its earliest is always in its domain.
            m.add_hint(self.start[o], self.cand.problem.occurrences[o].earliest_start
                       if entry is None else entry.start)
        for i in self.options:
            m.add_hint(self.x[i], i in chosen)
        for (o, j), var in self.use_merchant.items():
            entry = plan.covered.get(o)
            m.add_hint(var, entry is not None and entry.merchant == j)

        def start(i: int) -> int:
            entry = plan.covered.get(self.cand.options[i].occurrence)
            return entry.start if entry is not None else 0

        for var, a, b in self.orders:
            m.add_hint(var, start(a) <= start(b))
        for var, i, j in self.vias:
            entry = plan.covered.get(self.cand.options[i].occurrence)
            m.add_hint(var, i in chosen and entry is not None and entry.merchant == j)
        for var, group in self.serves:
            m.add_hint(var, any(i in chosen for i in group))
        for var, i, at in self.keeps:
            m.add_hint(var, i in chosen and start(i) == at)
        for var, load, hour in self.excess:
            m.add_hint(var, max(0, sum(d for i, d in load if i in chosen) - 60 * hour))
        if self.goal is not None:
            goal, priority = self.goal
            m.add_hint(goal, sum(1 for o in self.occurrences if o in plan.covered and
                                 self.cand.problem.occurrences[o].need.priority is priority))

    def read(self, solver: cp_model.CpSolver) -> Plan:
        """The plan in the solver's current solution."""
        plan = Plan()
        for o in self.occurrences:
            if not solver.boolean_value(self.covered[o]):
                continue
            options = tuple(i for i in self.by_occurrence[o]
                            if solver.boolean_value(self.x[i]))
            merchant = next((j for j in self.merchants_of[o]
                             if solver.boolean_value(self.use_merchant[o, j])), None)
            plan.covered[o] = Cover(solver.value(self.start[o]), merchant, options)
        return plan
