"""`linli generate-district` and `linli solve` on a district: in Chinese by default, one line per
community as its part ends, the same files from the local and the Ray engine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from matcher.cli import app
from matcher.domain import Problem, Week
from matcher.spreadsheets import read_community
from tests.test_cli import read_assignments
from tests.validator import geodesic_walk, validate

chinese = CliRunner(env={"LC_ALL": None, "LC_MESSAGES": None, "LANG": None})


def flat(output: str) -> str:
    """The output without the line breaks rich adds at the terminal's width."""
    return output.replace("\n", "")


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("district")
    result = chinese.invoke(app, ["generate-district", "--out", str(folder),
                                  "--communities", "3", "--volunteers", "45", "--needs", "60",
                                  "--merchants", "6", "--radius-m", "300", "--seed", "4",
                                  "--grid-units", "3"])
    assert result.exit_code == 0, result.output
    assert "3 个社区" in flat(result.output) and "志愿者 45 位" in flat(result.output)
    assert "每个社区分了 3 个网格，写在各自的 grids.geojson 里" in flat(result.output)
    return folder


def _solve(district: Path, out: Path, *extra: str) -> str:
    result = chinese.invoke(app, ["solve", "--data", str(district), "--week", "2026-W48",
                                  "--out", str(out), "--time-limit", "1", *extra])
    assert result.exit_code == 0, result.output
    return flat(result.output)


def test_a_district_is_solved_community_by_community(district: Path, tmp_path: Path) -> None:
    output = _solve(district, tmp_path)
    names = sorted(p.name for p in district.iterdir())
    assert names == ["C01", "C02", "C03"]
    for name in names:
        assert f"{name}：已安排" in output  # one line per community, in Chinese
        problem = read_community(district / name, Week.parse("2026-W48")).problem
        frame = pd.read_csv(tmp_path / name / "assignments.csv", dtype=str,
                            keep_default_na=False)
        assert set(frame["need_id"]) <= {n.id for n in problem.needs}
        assert (tmp_path / name / "unmet.csv").read_bytes().startswith(b"\xef\xbb\xbf")
        assert (tmp_path / name / "map.html").exists()
    assert "全街道" in output
    summary = pd.read_csv(tmp_path / "district_summary.csv", encoding="utf-8-sig")
    assert list(summary["community"]) == names
    assert (tmp_path / "district_summary.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    # The district report: a row per community and per grid unit, and its map.
    assert "district_report.csv" in output and "district_map.html" in output
    report = pd.read_csv(tmp_path / "district_report.csv", encoding="utf-8-sig", dtype=str,
                         keep_default_na=False)
    assert report.columns[0] == "社区/community"
    rows = list(zip(report["社区/community"], report["网格编号/unit_id"], strict=True))
    assert [r for r in rows if r[1] == ""] == [(name, "") for name in names]
    for name in names:
        assert [u for c, u in rows if c == name and u] == [f"{name}-G{k}" for k in (1, 2, 3)]
    page = (tmp_path / "district_map.html").read_text("utf-8")
    assert all(f'"community":"{name}"' in page for name in names)
    # Every assignment, in whichever community it is written, keeps the rules of the district
    # (a volunteer registered with two communities has one weekly cap).
    week = Week.parse("2026-W48")
    problems = [read_community(district / name, week).problem for name in names]
    merged = Problem(week, list({v.id: v for p in problems for v in p.volunteers}.values()),
                     [n for p in problems for n in p.needs],
                     list({m.id: m for p in problems for m in p.merchants}.values()))
    assignments = [a for name in names for a in read_assignments(tmp_path / name)]
    assert assignments and validate(merged, assignments, geodesic_walk()) == []


def test_the_ray_engine_writes_the_same_files(district: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    _solve(district, tmp_path / "local")
    output = _solve(district, tmp_path / "ray", "--engine", "ray")
    assert "用 Ray 分头排" in output
    for name in ("C01", "C02", "C03"):
        for file in ("assignments.csv", "unmet.csv"):
            assert (tmp_path / "ray" / name / file).read_bytes() == \
                (tmp_path / "local" / name / file).read_bytes()
    left = pd.read_csv(tmp_path / "local" / "district_summary.csv", encoding="utf-8-sig")
    right = pd.read_csv(tmp_path / "ray" / "district_summary.csv", encoding="utf-8-sig")
    pd.testing.assert_frame_equal(left, right)
    assert (tmp_path / "ray" / "district_report.csv").read_bytes() == \
        (tmp_path / "local" / "district_report.csv").read_bytes()


def test_ray_on_one_community_says_what_it_wants(district: Path, tmp_path: Path) -> None:
    result = chinese.invoke(app, ["solve", "--data", str(district / "C01"), "--week",
                                  "2026-W48", "--out", str(tmp_path), "--engine", "ray"])
    assert result.exit_code == 2
    assert "整个街道排班" in flat(result.output)
    result = chinese.invoke(app, ["solve", "--data", str(district), "--week", "2026-W48",
                                  "--out", str(tmp_path), "--engine", "spark"])
    assert result.exit_code == 2 and "只能是 local 或 ray" in flat(result.output)


def test_an_unreachable_ray_cluster_is_an_error_not_a_traceback(
        district: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")

    def unreachable(**_kwargs: object) -> None:
        raise SystemExit(15)  # what ray.init does when the address never answers

    monkeypatch.setattr(ray, "init", unreachable)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    result = chinese.invoke(app, ["solve", "--data", str(district), "--week", "2026-W48",
                                  "--out", str(tmp_path), "--engine", "ray", "--address",
                                  "10.0.0.1:6379"])
    assert result.exit_code == 2, result.output
    assert "连不上 Ray 集群 10.0.0.1:6379：对方没有响应" in flat(result.output)
    assert not (tmp_path / "district_summary.csv").exists()
