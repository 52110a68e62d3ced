"""Values the database columns cannot hold are import errors naming the cell, on the API and in
imported files alike, never a database error (PostgreSQL refuses what SQLite would keep)."""

from __future__ import annotations

from fastapi.testclient import TestClient

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
