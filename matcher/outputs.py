"""Write results: a schedule (assignments.csv, unmet.csv, summary.json, one .ics per volunteer, a
map) and a charity allocation (allocations.csv, unmet_requests.csv, leftover.csv, ...).

Every file is written to a temporary folder first and moved into place together, so a failed
run never leaves a half-written schedule behind. CSV files start with a UTF-8 byte-order mark,
so Excel opens Chinese text correctly (our readers accept it). Places are written in the
coordinate system the user gave (``coords``); inside Linli they are WGS84.
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
from matcher.coords import CoordSystem, from_wgs84
from matcher.domain import Problem, Schedule, format_hhmm
from matcher.settings import Settings
from matcher.travel import WalkingNetwork

TZ = ZoneInfo("Asia/Shanghai")
CSV_ENCODING = "utf-8-sig"  # with a byte-order mark: Excel reads UTF-8 only with one
COORDS_NAME = {CoordSystem.WGS84: "WGS-84", CoordSystem.GCJ02: "GCJ-02",
               CoordSystem.BD09: "BD-09"}


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """A CSV file for people: UTF-8 with a byte-order mark."""
    frame.to_csv(path, index=False, encoding=CSV_ENCODING)


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


def volunteer_calendar(problem: Problem, schedule: Schedule, volunteer_id: str,
                       coords: CoordSystem = CoordSystem.WGS84) -> bytes:
    """An iCalendar file of one volunteer's tasks (the beneficiary is theirs to see). GEO and
    LOCATION are in ``coords``, the system the places were given in, so they open where they
    belong in the map app they came from; the description names the system."""
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
        lat, lon = from_wgs84(need.location.lat, need.location.lon, coords)
        event.add("geo", (lat, lon))
        where = f"{lat:.6f},{lon:.6f}"
        note = f"需求 {need.id}; 步行约 {a.walk_min:.0f} 分钟; 坐标 {COORDS_NAME[coords]}"
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
                   map_html: bool = True, network: WalkingNetwork | None = None,
                   coords: CoordSystem = CoordSystem.WGS84) -> list[Path]:
    """Write every output file into ``out`` atomically; returns the files written. The map
    draws the streets and 15-minute circles of ``network`` when given. Places in files are in
    ``coords`` (the map follows its tiles instead: WGS84, or GCJ-02 under Amap tiles)."""
    written: list[Path] = []
    with atomic_folder(out, written) as tmp:
        write_csv(assignments_frame(schedule), tmp / "assignments.csv")
        write_csv(unmet_frame(schedule), tmp / "unmet.csv")
        _write_json(tmp / "summary.json", {**schedule.summary(), "coords": coords.value})
        if calendars:
            (tmp / "calendars").mkdir()
            for vid in sorted({a.volunteer_id for a in schedule.assignments}):
                (tmp / "calendars" / f"{vid}.ics").write_bytes(
                    volunteer_calendar(problem, schedule, vid, coords))
        if map_html:
            from matcher.mapview import write_map

            write_map(tmp / "map.html", problem, schedule, network, settings or Settings())
    return written


def allocation_frames(allocation: Allocation) -> dict[str, pd.DataFrame]:
    """allocations.csv (SCHEMA.md), unmet_requests.csv and leftover.csv as DataFrames. Each
    allocation line has a date: ``deliver_on`` for a delivery, ``collect_by`` for a pickup."""
    return {
        "allocations": pd.DataFrame(
            [{"donation_id": a.donation_id, "request_id": a.request_id, "quantity": a.quantity,
              "walk_min": a.walk_min, "delivery": "yes" if a.delivery else "no",
              "deliver_on": a.date.isoformat() if a.delivery else "",
              "collect_by": "" if a.delivery else a.date.isoformat()}
             for a in allocation.lines],
            columns=["donation_id", "request_id", "quantity", "walk_min", "delivery",
                     "deliver_on", "collect_by"]),
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


def delivery_needs_frame(problem: CharityProblem, allocation: Allocation,
                         coords: CoordSystem = CoordSystem.WGS84) -> pd.DataFrame:
    """delivery_needs.csv: the needs.csv format with places in ``coords`` and a ``coords``
    column saying so, which the importer obeys whatever ``--coords`` it is given (so a place is
    never converted twice)."""
    from matcher.allocation import delivery_needs
    from matcher.spreadsheets import needs_frame

    needs = delivery_needs(problem, allocation)
    frame = needs_frame(needs)
    places = [from_wgs84(n.location.lat, n.location.lon, coords) for n in needs]
    frame["lat"] = [round(lat, 6) for lat, _ in places]
    frame["lon"] = [round(lon, 6) for _, lon in places]
    frame["coords"] = coords.value
    return frame


def write_allocation(problem: CharityProblem, allocation: Allocation, out: Path,
                     coords: CoordSystem = CoordSystem.WGS84) -> list[Path]:
    """Write allocations.csv, unmet_requests.csv, leftover.csv, delivery_needs.csv (in the
    needs.csv format, ready for ``linli solve --add-needs``, places in ``coords``) and
    summary.json, atomically."""
    written: list[Path] = []
    with atomic_folder(out, written) as tmp:
        for name, frame in allocation_frames(allocation).items():
            write_csv(frame, tmp / f"{name}.csv")
        write_csv(delivery_needs_frame(problem, allocation, coords), tmp / "delivery_needs.csv")
        _write_json(tmp / "summary.json", {**allocation.summary(), "coords": coords.value})
    return written
