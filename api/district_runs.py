"""A street office's (or a district's) week as one job: every community of the admin's scope
solved on the district path (:func:`matcher.district.solve_district`), on Ray or in the worker.

A street or district admin queues a run for a week; a job worker claims it like any job
(:mod:`api.jobs`: lease, one retry, cancel). The worker reads each community's week in a session
scoped to it, solves the communities together (communities that share volunteers, or whose
volunteers live within a circle of another's need, form one part; a volunteer registered in one
community may so serve a need of the next), and stores, per community solved, an ordinary draft
schedule of that community (status ``solved``, ``district_run_id`` the run's). Each community's
coordinator then reviews and publishes her own schedule with the schedule routes.

The run's ``communities`` map tells each community's state as it goes: ``queued``, ``solving``,
``solved`` (with its schedule's id, coverage and occurrences), ``failed`` (its part still failed
after Ray's retries, or its stored data break a rule: ``why`` says it in words) or ``skipped``.
A community is stored in one transaction with the run's map (all of it or nothing), as soon as
its part is solved, so a part that fails loses no other community.

A community whose week already has a published schedule is left out (``skipped``): its week is
under way (tasks offered, accepted, perhaps done), so its coordinator re-solves it around that
work with ``POST /v1/schedules``; a district run would only start a second plan beside it.
A volunteer's tasks in such a published week (or in another street office's) still hold her
time: every community of the run is solved with what they leave of her week
(:func:`api.under_way.weeks_left`), as a community's own solve is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from api.community import audit, load_problem
from api.errors import Problem
from api.jobs import JobContext, Running, _finish, store_schedule, utcnow
from api.models import (
    Community,
    DistrictRunRow,
    ScheduleRow,
    StreetOffice,
    in_community,
)
from api.paging import page_rows
from api.permissions import STREET_ADMIN
from api.security import Caller
from api.under_way import weeks_left
from api.weekly import stop_job
from matcher.district import (
    Community as DistrictCommunity,
)
from matcher.district import (
    CommunityResult,
    District,
    DistrictEvent,
    Part,
    community_share,
    parts,
    solve_district,
)
from matcher.errors import InputError
from matcher.i18n import N_, _
from matcher.params import SolveParams
from matcher.settings import Settings

# A community's states in a run (codes for programs; their words for people).
STATES = (N_("queued"), N_("solving"), N_("solved"), N_("failed"), N_("skipped"))
# How many more times a part that failed is tried (by Ray, or in the worker) before its
# communities are reported failed.
MAX_RETRIES = 2


def _of_caller(user: Caller) -> ColumnElement[bool]:
    """The runs ``user`` may see: her street office's, or her district's."""
    if user.role == STREET_ADMIN:
        return DistrictRunRow.street_office_id == user.street_office_id
    return DistrictRunRow.district_id == user.district_id


def get_run(session: Session, user: Caller, run_id: int, *, lock: bool = False
            ) -> DistrictRunRow:
    """The run ``run_id`` if ``user`` may see it; 404 otherwise (also when it is another
    office's, so ids of other offices cannot be probed)."""
    query = select(DistrictRunRow).where(DistrictRunRow.id == run_id, _of_caller(user))
    row = session.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise Problem(404, _("no district run {id}").format(id=run_id))
    return row


def list_runs(session: Session, user: Caller, week: str | None, limit: int, offset: int
              ) -> tuple[list[DistrictRunRow], int]:
    """One page of ``user``'s runs, newest first, of one week if given; and their count."""
    query = select(DistrictRunRow).where(_of_caller(user))
    if week:
        query = query.where(DistrictRunRow.week == week)
    return page_rows(session, query.order_by(DistrictRunRow.id.desc()), limit, offset)


def _communities(session: Session, street_office_id: int | None, district_id: int
                 ) -> list[Community]:
    """The communities of a run's scope, in code order (the district's order of parts)."""
    query = select(Community).order_by(Community.code)
    if street_office_id is not None:
        query = query.where(Community.street_office_id == street_office_id)
    else:
        query = query.join(StreetOffice, StreetOffice.id == Community.street_office_id).where(
            StreetOffice.district_id == district_id)
    return list(session.scalars(query))


def _audit(session: Session, user: Caller, row: DistrictRunRow, action: str) -> None:
    """The run touches every community of its scope: each one's record tells it."""
    for community in _communities(session, row.street_office_id, row.district_id):
        with in_community(session, community.id):
            audit(session, user, action, f"district_run:{row.id}", f"week:{row.week}")


def queue_run(session: Session, state: Any, user: Caller, week: str,
              time_limit_s: float | None) -> DistrictRunRow:
    """Queue the week of every community of ``user``'s street office or district.

    Raises
    ------
    Problem
        409 when her scope has no community yet.
    """
    if user.role == STREET_ADMIN:
        office = session.get(StreetOffice, user.street_office_id)
        assert office is not None, "an admin's street office exists (a foreign key)"
        office_id, district_id = office.id, office.district_id
    else:
        assert user.district_id is not None, "a district admin has her district (a check)"
        office_id, district_id = None, user.district_id
    communities = _communities(session, office_id, district_id)
    if not communities:
        raise Problem(409, _("there is no community to solve yet: add the communities first"),
                      code="no_communities")
    row = DistrictRunRow(street_office_id=office_id, district_id=district_id,
                         time_limit_s=time_limit_s,
                         communities={c.code: {"state": "queued", "name": c.name}
                                      for c in communities})
    row.week, row.status, row.progress, row.created_by = week, "queued", "queued", user.id
    row.attempts, row.cancel_requested = 0, False
    session.add(row)
    session.flush()
    _audit(session, user, row, "solve")
    session.commit()
    if state.worker is not None:  # a worker thread in this process (tests, the demo)
        state.worker.wake()
    return row


def cancel_run(session: Session, user: Caller, run_id: int) -> DistrictRunRow:
    """Cancel a run: a queued one at once, a running one at its next report (the schedules it
    stored before stay, as drafts). 409 when it finished."""
    row = get_run(session, user, run_id, lock=True)
    stop_job(row)
    _audit(session, user, row, "cancel")
    session.commit()
    return row


@dataclass
class _Run:
    """What the worker knows of a claimed run while it solves it."""

    job: Running
    ids: dict[str, int]  # community code -> id
    entries: dict[str, dict[str, Any]]  # the run's communities map, as it goes

    def report(self, message: str) -> None:
        self.job.progress(message, communities={k: dict(v) for k, v in self.entries.items()})


def solve_run(ctx: JobContext, job: Running) -> None:
    """Solve a claimed run: read each community, solve them on the district path, store each
    solved community's schedule as its part ends, then the run's summary."""
    week = job.week
    with ctx.db.session() as session:
        row = session.get(DistrictRunRow, job.claim.id)
        assert row is not None, "a claimed job's row is there"
        limit = row.time_limit_s or ctx.settings.solve_time_limit_s
        earlier: dict[str, dict[str, Any]] = dict(row.communities or {})
        communities = _communities(session, row.street_office_id, row.district_id)
        published = set(session.scalars(select(ScheduleRow.community_id).where(
            ScheduleRow.week == str(week), ScheduleRow.status == "published")))
    run = _Run(job, {c.code: c.id for c in communities}, {})
    settings = Settings()
    loaded: list[DistrictCommunity] = []
    for community in communities:
        before = earlier.get(community.code, {}) | {"name": community.name}
        if before.get("state") == "solved":
            # Stored by an earlier attempt of this run (its worker stopped afterwards): solved
            # again below with the others, deterministically the same, and not stored twice.
            run.entries[community.code] = before
        elif community.id in published:
            run.entries[community.code] = {"state": "skipped", "name": community.name, "why": _(
                "week {week} is already published here, so its work is under way: its "
                "coordinator re-solves it around that work").format(week=week)}
            continue
        try:
            with ctx.db.session(community.id) as session:
                problem = load_problem(session, week)
        except InputError as exc:
            run.entries[community.code] = {"state": "failed", "name": community.name, "error": _(
                "its records break a rule, so it was not solved: {issues}").format(
                issues="; ".join(str(i) for i in exc.issues[:5]))}
            continue
        run.entries.setdefault(community.code, {"state": "queued", "name": community.name})
        run.entries[community.code]["occurrences"] = len(problem.occurrences)
        loaded.append(DistrictCommunity(community.code, problem))
    # A volunteer's tasks in published weeks (a skipped community's, another street
    # office's) hold her time: each community is solved with what they leave of her week.
    legs = any(n.merchant_service is not None for c in loaded for n in c.problem.needs)
    with ctx.db.session() as session:
        loaded = [replace(c, problem=replace(c.problem, volunteers=weeks_left(
            session, str(week), c.problem.volunteers, None, legs, settings)))
            for c in loaded]
    district = District(week, loaded)
    params = SolveParams(time_limit_s=limit, wall_clock=ctx.settings.solve_wall_clock)
    todo = {p.index: p for p in parts(district, params, settings)}
    for part in todo.values():
        for code in part.communities:
            if run.entries[code]["state"] == "queued":
                run.entries[code]["state"] = "solving"
    run.report(_("solving {n} communities in {parts} groups").format(
        n=len(loaded), parts=len(todo)))

    def on_part(event: DistrictEvent) -> None:
        part = todo[event.result.index]
        schedule = event.result.schedule
        for code in part.communities:
            if run.entries[code]["state"] == "solved":
                continue
            if schedule is None:
                run.entries[code] = run.entries[code] | {"state": "failed", "error": _(
                    "its group of communities could not be solved in {tries} tries; the "
                    "others are saved (the cause: {cause})").format(
                    tries=MAX_RETRIES + 1, cause=event.result.error or "")}
            else:
                _store(ctx, run, community_share(part.problem, schedule,
                                                 district.community(code), part.communities),
                       part)
        run.report(_("{done} of {total} groups done").format(done=event.done,
                                                             total=event.total))

    seconds = 0.0
    if todo:  # (every community skipped or failed: nothing to send to Ray)
        seconds = solve_district(district, params, settings, network=ctx.networks.get(),
                                 engine=ctx.settings.solve_engine,
                                 address=ctx.settings.ray_address, max_retries=MAX_RETRIES,
                                 on_part=on_part).seconds
    states = [e["state"] for e in run.entries.values()]
    summary = {"week": str(week), "engine": ctx.settings.solve_engine,
               "communities": len(states), "groups": len(todo), "seconds": round(seconds, 2),
               **{state: states.count(state) for state in ("solved", "failed", "skipped")}}
    with ctx.db.session() as session:
        done = job.row(session)
        assert isinstance(done, DistrictRunRow)
        done.communities = run.entries
        _finish(done, summary)
        if "failed" in states and "solved" not in states:
            done.status = "failed"
            done.error = _("no community could be solved; each one's reason is in its entry")
        session.commit()


def _store(ctx: JobContext, run: _Run, share: CommunityResult, part: Part) -> None:
    """One community's schedule and the run's map, in one transaction of its own (fenced: only
    while the run is still this worker's and not cancelled)."""
    code = share.name
    schedule = share.schedule
    with ctx.db.session(run.ids[code]) as session:
        row = run.job.row(session)
        assert isinstance(row, DistrictRunRow)
        stored = ScheduleRow(district_run_id=row.id, summary=schedule.summary(),
                             finished_at=utcnow())
        stored.week, stored.status, stored.progress = str(run.job.week), "solved", "done"
        stored.created_by, stored.attempts, stored.cancel_requested = row.created_by, 1, False
        session.add(stored)
        session.flush()
        store_schedule(session, stored.id, schedule)
        run.entries[code] = run.entries[code] | {
            "state": "solved", "schedule_id": stored.id, "covered": schedule.covered,
            "occurrences": schedule.occurrences, "group": list(part.communities)}
        row.communities = {k: dict(v) for k, v in run.entries.items()}
        row.claimed_until = utcnow() + run.job.lease
        session.commit()

