"""Values the database columns cannot hold are import errors naming the cell, on the API and in
imported files alike, never a database error (PostgreSQL refuses what SQLite would keep)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.community import load_problem
from api.models import MerchantRow, VolunteerRow
from matcher.domain import Problem
from matcher.errors import InputError
from matcher.spreadsheets import read_community
from tests.conftest import WEEK

PROBLEM_JSON = "application/problem+json"
MERCHANT = {"merchant_id": "M1", "name": "幸福食堂", "lat": 22.5338, "lon": 114.0169,
            "services": "meal", "capacity_per_day": 30, "open": "10:00-20:00"}


def test_too_long_text_and_too_large_numbers_are_422(client: TestClient,
                                                      coordinator: dict[str, str]) -> None:
    for change, column in (({"merchant_id": "M" * 65}, "merchant_id"),
                           ({"name": "食" * 129}, "name"),
                           ({"capacity_per_day": 2**40}, "capacity_per_day")):
        response = client.post("/v1/merchants", json=MERCHANT | change, headers=coordinator)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert ["body", column] in [e.get("path") for e in response.json()["errors"]]
    assert client.post("/v1/merchants", json=MERCHANT | {"name": "食" * 100},
                       headers=coordinator).status_code == 201


def test_an_import_names_the_cell_too_long_for_its_column(client: TestClient,
                                                          coordinator: dict[str, str]) -> None:
    header = ",".join(MERCHANT)
    good = ",".join(str(v) for v in MERCHANT.values())
    long_name = good.replace("幸福食堂", "食" * 200)
    csv = f"{header}\n{good.replace('M1', 'M2')}\n{long_name.replace('M1', 'M3')}\n"
    response = client.post("/v1/imports", headers=coordinator, files=[
        ("files", ("merchants.csv", csv.encode(), "text/csv"))])
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["file"], e["row"], e["column"]) for e in errors] == [
        ("merchants.csv", 3, "name")]
    assert client.get("/v1/merchants/M2", headers=coordinator).status_code == 404  # all or none


SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.mark.parametrize("source", ["csv", "xlsx"])
def test_spreadsheets_and_the_database_give_the_same_problem(
        client: TestClient, coordinator: dict[str, str], source: str) -> None:
    """The sample community imported through the API and loaded back from the database is the
    week the spreadsheet importer reads (lists, windows and numbers alike)."""
    if source == "csv":
        files = [("files", (p.name, p.read_bytes(), "text/csv"))
                 for p in sorted(SAMPLE.glob("*.csv"))]
        expected = read_community(SAMPLE, WEEK).problem
    else:
        book = SAMPLE / "社区示例.xlsx"
        files = [("files", (book.name, book.read_bytes(), "application/octet-stream"))]
        expected = read_community(book, WEEK).problem
    assert client.post("/v1/imports", files=files, headers=coordinator).status_code == 200
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        loaded = load_problem(session, WEEK)

    def by_id(problem: Problem) -> Problem:
        return Problem(problem.week, sorted(problem.volunteers, key=lambda v: v.id),
                       sorted(problem.needs, key=lambda n: n.id),
                       sorted(problem.merchants, key=lambda m: m.id))

    assert by_id(loaded) == by_id(expected)
    assert len(loaded.volunteers) == 300 and any(v.availability for v in loaded.volunteers)


def test_a_stored_row_breaking_a_domain_rule_is_named(client: TestClient) -> None:
    """Rows written around the importer are checked by the domain types on load."""
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        session.add(VolunteerRow(volunteer_id="V1", name="王芳", lat=22.5, lon=114.0,
                                 skills=["Meal Delivery"], max_hours_week=4,
                                 availability=[{"day": "mon", "start": 480, "end": 720}]))
        session.add(MerchantRow(merchant_id="M1", name="食堂", lat=22.5, lon=114.0,
                                services=[], capacity_per_day=3, open="10:00-20:00"))
        session.commit()
        with pytest.raises(InputError) as caught:
            load_problem(session, WEEK)
    assert [str(i) for i in caught.value.issues] == [
        "volunteers table, volunteer_id V1: 'Meal Delivery' is not a code (use "
        "lower_snake_case, no spaces)",
        "merchants table, merchant_id M1: offers no service"]


def test_volunteers_and_merchants_are_filtered_by_one_list_item(
        client: TestClient, coordinator: dict[str, str]) -> None:
    """A skill or service matches a whole item of the list, never part of one."""
    volunteer = {"volunteer_id": "V1", "name": "王芳", "lat": 22.5341, "lon": 114.0177,
                 "skills": "meal_delivery;escort_medical", "availability": "mon 08:00-12:00"}
    for ident, skills in (("V1", "meal_delivery;escort_medical"), ("V2", "meal"),
                          ("V3", "")):
        assert client.post("/v1/volunteers", json=volunteer | {
            "volunteer_id": ident, "skills": skills}, headers=coordinator).status_code == 201
    for ident, services in (("M1", "meal;tea"), ("M2", "meal_box")):
        assert client.post("/v1/merchants", json=MERCHANT | {
            "merchant_id": ident, "services": services}, headers=coordinator).status_code == 201

    def ids(kind: str, query: str) -> list[str]:
        page = client.get(f"/v1/{kind}?{query}", headers=coordinator).json()
        return [item[f"{kind[:-1]}_id"] for item in page["items"]]

    assert ids("volunteers", "skill=meal") == ["V2"]
    assert ids("volunteers", "skill=escort_medical") == ["V1"]
    assert ids("volunteers", "skill=%25") == []  # LIKE's wildcard is a plain character here
    assert ids("merchants", "service=meal") == ["M1"]
    assert ids("merchants", "service=meal_box") == ["M2"]
    volunteer_view = client.get("/v1/volunteers/V1", headers=coordinator).json()
    assert volunteer_view["skills"] == "escort_medical;meal_delivery"
    assert volunteer_view["availability"] == "mon 08:00-12:00"
