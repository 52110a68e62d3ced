"""Write results: a schedule (assignments.csv, unmet.csv, summary.json, one .ics per volunteer, a
map) and a charity allocation (allocations.csv, unmet_requests.csv, leftover.csv, ...).

Every file is written to a temporary folder first and moved into place together, so a failed
run never leaves a half-written schedule behind.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from icalendar import Calendar, Event

from matcher.charity import Allocation, CharityProblem
from matcher.domain import Problem, Schedule, format_hhmm
from matcher.settings import Settings
from matcher.travel import WalkingNetwork

TZ = ZoneInfo("Asia/Shanghai")


def assignments_frame(schedule: Schedule) -> pd.DataFrame:
    """assignments.csv as a DataFrame (SCHEMA.md columns)."""
    return pd.DataFrame(
        [{
            "need_id": a.need_id, "day": a.day.value, "date": a.date.isoformat(),
            "start": format_hhmm(a.start), "end": format_hhmm(a.end),
            "volunteer_id": a.volunteer_id, "merchant_id": a.merchant_id or "",
            "walk_min": round(a.walk_min, 1),
        } for a in schedule.assignments],
        columns=["need_id", "day", "date", "start", "end", "volunteer_id", "merchant_id",
                 "walk_min"],
    )


def unmet_frame(schedule: Schedule) -> pd.DataFrame:
    """unmet.csv as a DataFrame: SCHEMA.md columns plus ``fix`` and ``candidates``."""
    return pd.DataFrame(
        [{
            "need_id": u.need_id, "day": u.day.value, "date": u.date.isoformat(),
            "reason_code": u.reason.value, "reason": u.detail, "fix": u.fix,
            "candidates": ";".join(u.candidates),
        } for u in schedule.unmet],
        columns=["need_id", "day", "date", "reason_code", "reason", "fix", "candidates"],
    )


def volunteer_calendar(problem: Problem, schedule: Schedule, volunteer_id: str) -> bytes:
    """An iCalendar file of one volunteer's tasks (the beneficiary is theirs to see)."""
    cal = Calendar()
    cal.add("prodid", "-//Linli//weekly schedule//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"邻里志愿服务 {volunteer_id} {schedule.week}")
    needs = problem.need_by_id
    merchants = problem.merchant_by_id
    for a in schedule.assignments:
        if a.volunteer_id != volunteer_id:
            continue
        need = needs[a.need_id]
        event = Event()
        event.add("uid", f"{a.need_id}-{a.date.isoformat()}-{a.volunteer_id}@linli")
        event.add("summary", f"{need.service} · {need.beneficiary}")
        event.add("dtstart", dt.datetime.combine(a.date, dt.time(a.start // 60, a.start % 60),
                                                 TZ))
        end = dt.datetime.combine(a.date, dt.time(0, 0), TZ) + dt.timedelta(minutes=a.end)
        event.add("dtend", end)
        event.add("dtstamp", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        event.add("geo", (need.location.lat, need.location.lon))
        where = f"{need.location.lat:.6f},{need.location.lon:.6f}"
        note = f"需求 {need.id}; 步行约 {a.walk_min:.0f} 分钟"
        if a.merchant_id:
            m = merchants[a.merchant_id]
            note += f"; 先到 {m.name} ({m.id}) 取 {need.merchant_service}"
        event.add("location", where)
        event.add("description", note)
        cal.add_component(event)
    # Every TZID needs its VTIMEZONE (RFC 5545); transitions for this week only.
    cal.add_missing_timezones(schedule.week.monday - dt.timedelta(days=1),
                              schedule.week.monday + dt.timedelta(days=8))
    return bytes(cal.to_ical())


@contextmanager
def atomic_folder(out: Path, written: list[Path]) -> Iterator[Path]:
    """Yield a temporary folder inside ``out``; on success move its files into ``out``.

    Nothing reaches ``out`` if the block raises, so a failed run never leaves a half-written
    result next to an older complete one.
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".linli-") as tmp_name:
        tmp = Path(tmp_name)
        yield tmp
        for item in sorted(tmp.iterdir()):
            target = out / item.name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            item.rename(target)
            written.append(target)


def _write_json(path: Path, content: dict[str, object]) -> None:
    path.write_text(json.dumps(content, ensure_ascii=False, indent=2), encoding="utf-8")


def write_schedule(problem: Problem, schedule: Schedule, out: Path, *,
                   settings: Settings | None = None, calendars: bool = True,
                   map_html: bool = True, network: WalkingNetwork | None = None) -> list[Path]:
    """Write every output file into ``out`` atomically; returns the files written. The map
    draws 15-minute circles on ``network`` when given."""
    written: list[Path] = []
    with atomic_folder(out, written) as tmp:
        assignments_frame(schedule).to_csv(tmp / "assignments.csv", index=False)
        unmet_frame(schedule).to_csv(tmp / "unmet.csv", index=False)
        _write_json(tmp / "summary.json", schedule.summary())
        if calendars:
            (tmp / "calendars").mkdir()
            for vid in sorted({a.volunteer_id for a in schedule.assignments}):
                (tmp / "calendars" / f"{vid}.ics").write_bytes(
                    volunteer_calendar(problem, schedule, vid))
        if map_html:
            from matcher.mapview import schedule_map  # folium is only needed for the map

            schedule_map(problem, schedule, settings or Settings(), network).save(
                str(tmp / "map.html"))
    return written


def allocation_frames(allocation: Allocation) -> dict[str, pd.DataFrame]:
    """allocations.csv (SCHEMA.md), unmet_requests.csv and leftover.csv as DataFrames."""
    return {
        "allocations": pd.DataFrame(
            [{"donation_id": a.donation_id, "request_id": a.request_id, "quantity": a.quantity,
              "walk_min": a.walk_min, "delivery": "yes" if a.delivery else "no"}
             for a in allocation.lines],
            columns=["donation_id", "request_id", "quantity", "walk_min", "delivery"]),
        "unmet_requests": pd.DataFrame(
            [{"request_id": s.request_id, "category": s.category, "priority": s.priority.value,
              "requested": s.requested, "allocated": s.allocated, "reason_code": s.reason.value,
              "reason": s.detail} for s in allocation.short],
            columns=["request_id", "category", "priority", "requested", "allocated",
                     "reason_code", "reason"]),
        "leftover": pd.DataFrame(
            [{"donation_id": left.donation_id, "category": left.category,
              "quantity": left.quantity,
              "expires": left.expires.isoformat() if left.expires else "",
              "reason": "expired" if left.expired else "not_requested"}
             for left in allocation.leftovers],
            columns=["donation_id", "category", "quantity", "expires", "reason"]),
    }


def write_allocation(problem: CharityProblem, allocation: Allocation, out: Path) -> list[Path]:
    """Write allocations.csv, unmet_requests.csv, leftover.csv, delivery_needs.csv (in the
    needs.csv format, ready for ``linli solve --add-needs``) and summary.json, atomically."""
    from matcher.allocation import delivery_needs
    from matcher.spreadsheets import needs_frame

    written: list[Path] = []
    with atomic_folder(out, written) as tmp:
        for name, frame in allocation_frames(allocation).items():
            frame.to_csv(tmp / f"{name}.csv", index=False)
        needs_frame(delivery_needs(problem, allocation)).to_csv(tmp / "delivery_needs.csv",
                                                                index=False)
        _write_json(tmp / "summary.json", allocation.summary())
    return written
