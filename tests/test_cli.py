"""The command line on communities it has never seen, checked by the independent validator."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from matcher.cli import app
from matcher.domain import Assignment, Day, Week, parse_hhmm
from matcher.spreadsheets import read_community
from tests.conftest import NETWORK
from tests.validator import network_walk, validate

runner = CliRunner()


def read_assignments(out: Path) -> list[Assignment]:
    frame = pd.read_csv(out / "assignments.csv", dtype=str, keep_default_na=False)
    return [Assignment(r.need_id, Day(r.day), pd.Timestamp(r.date).date(), parse_hhmm(r.start),
                       parse_hhmm(r.end), r.volunteer_id, r.merchant_id or None,
                       float(r.walk_min)) for r in frame.itertuples()]


def test_generate_then_solve_on_real_streets(tmp_path: Path, futian) -> None:
    data, out = tmp_path / "community", tmp_path / "out"
    result = runner.invoke(app, ["generate", "--out", str(data), "--volunteers", "60",
                                 "--needs", "80", "--merchants", "6", "--radius-m", "900",
                                 "--network", str(NETWORK), "--seed", "3"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["solve", "--data", str(data), "--week", "2026-W49", "--out",
                                 str(out), "--network", str(NETWORK), "--time-limit", "20"])
    assert result.exit_code == 0, result.output
    assert "red" in result.output and "Why occurrences stay unmet" in result.output
    summary = json.loads((out / "summary.json").read_text())
    problem = read_community(data, Week.parse("2026-W49")).problem
    assignments = read_assignments(out)
    # The walking oracle: the shipped network, independent Dijkstra per pair (networkx).
    assert validate(problem, assignments, network_walk(futian)) == []
    assert summary["covered"] == len({(a.need_id, a.day) for a in assignments})
    assert summary["limit"] == "deterministic" and summary["deterministic_time"] > 0
    unmet = pd.read_csv(out / "unmet.csv")
    assert len(unmet) + summary["covered"] == summary["occurrences"]
    assert unmet["reason"].str.len().min() > 10
    assert (out / "map.html").read_text().count("OpenStreetMap") >= 1
    ics = next((out / "calendars").glob("*.ics")).read_text()
    assert "BEGIN:VEVENT" in ics and "Asia/Shanghai" in ics


def test_bad_input_exits_with_the_cell(tmp_path: Path) -> None:
    (tmp_path / "volunteers.csv").write_text(
        "volunteer_id,name,lat,lon,availability\nV1,王芳,22.5,114.0,mon 09:00-12:00\n")
    (tmp_path / "needs.csv").write_text(
        "need_id,kind,service,beneficiary,lat,lon,days,window,duration_min\n"
        "N1,elderly,visit,张奶奶,22.5,114.0,mon,25:00-26:00,30\n")
    result = runner.invoke(app, ["solve", "--data", str(tmp_path), "--week", "2026-W48",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "needs.csv row 2, window: '25:00-26:00'" in result.output
    assert not (tmp_path / "out" / "assignments.csv").exists()


def test_bad_week(tmp_path: Path) -> None:
    result = runner.invoke(app, ["solve", "--data", str(tmp_path), "--week", "W48",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not an ISO week" in result.output


def test_demo_runs_on_the_embedded_data(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--time-limit", "15"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["occurrences"] > 800
    assert summary["covered_by_priority"]["red"] >= summary["stats"]["greedy_red"]


def test_allocate_writes_valid_allocations_and_delivery_needs(tmp_path: Path) -> None:
    from matcher.spreadsheets import read_charity
    from tests.allocation_check import check_allocation
    from tests.validator import geodesic_walk

    data, out = tmp_path / "community", tmp_path / "alloc"
    result = runner.invoke(app, ["generate", "--out", str(data), "--volunteers", "30",
                                 "--needs", "20", "--merchants", "3", "--requests", "120",
                                 "--donations", "30", "--categories", "6", "--seed", "4"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["allocate", "--data", str(data), "--week", "2026-W48",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "lowest fill" in result.output
    problem = read_charity(data, Week.parse("2026-W48")).problem
    frame = pd.read_csv(out / "allocations.csv", dtype={"donation_id": str, "request_id": str})
    from matcher.charity import AllocationLine

    lines = [AllocationLine(r.donation_id, r.request_id, int(r.quantity), float(r.walk_min),
                            r.delivery == "yes") for r in frame.itertuples()]
    assert check_allocation(problem, lines, geodesic_walk()) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "optimal"
    assert sum(summary["allocated_by_priority"].values()) == frame["quantity"].sum()
    deliveries = pd.read_csv(out / "delivery_needs.csv")
    assert len(deliveries) == (frame["delivery"] == "yes").sum()
    # ... and the week takes them as needs.
    result = runner.invoke(app, ["solve", "--data", str(data), "--week", "2026-W48", "--out",
                                 str(tmp_path / "week"), "--time-limit", "10", "--wall-clock",
                                 "--add-needs", str(out / "delivery_needs.csv")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "week" / "summary.json").read_text())["limit"] == "wall_clock"


def test_allocate_reports_bad_rows(tmp_path: Path) -> None:
    (tmp_path / "donations.csv").write_text(
        "donation_id,donor,category,quantity,lat,lon,expires\n"
        "D1,超市,rice,-3,22.53,114.01,2026-13-01\n", encoding="utf-8")
    (tmp_path / "requests.csv").write_text(
        "request_id,beneficiary,category,quantity,lat,lon,priority\n"
        "R1,王家,rice,2,22.53,114.01,purple\n", encoding="utf-8")
    result = runner.invoke(app, ["allocate", "--data", str(tmp_path), "--week", "2026-W48",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "donations.csv row 2, quantity: '-3'" in text
    assert "donations.csv row 2, expires: '2026-13-01' is not a date" in text
    assert "requests.csv row 2, priority: 'purple'" in text
    assert not (tmp_path / "out").exists()
