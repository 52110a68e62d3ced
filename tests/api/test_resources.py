"""Resources and imports against hostile and careless input: what is stored is what the parser
understood (normal form), ids and names within limits, and the corpus of broken spreadsheets
refused through ``POST /v1/imports`` with the same messages as on the command line."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import make_user
from tests.matcher.test_spreadsheets_corpus import CORPUS, EXPECTED, source_of

MERCHANT = {"merchant_id": "M1", "name": "幸福食堂", "lat": 22.5338, "lon": 114.0169,
            "services": "Meal；drinks", "capacity_per_day": 30, "open": "9:30 - 20:30"}
VOLUNTEER = {"volunteer_id": "V1", "name": "王芳", "lat": 22.534, "lon": 114.017,
             "skills": "meal_delivery", "availability": "Mon 8:00-12:00；wed 14:00～18:00"}


def test_merchant_hours_are_stored_normalised(client: TestClient,
                                              coordinator: dict[str, str]) -> None:
    created = client.post("/v1/merchants", json=MERCHANT, headers=coordinator)
    assert created.status_code == 201, created.text
    assert created.json()["open"] == "09:30-20:30"
    assert created.json()["services"] == "drinks;meal"
    shop = make_user(client, "shop", "merchant", merchant_id="M1")
    put = client.put("/v1/merchants/M1", json=MERCHANT | {"open": "10:00～21:00"}, headers=shop)
    assert put.status_code == 200, put.text
    assert client.get("/v1/merchants/M1", headers=shop).json()["open"] == "10:00-21:00"
    bad = client.put("/v1/merchants/M1", json=MERCHANT | {"open": "9.30-20.30"},
                     headers=shop | {"Accept-Language": "en"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == ["body", "open"]
    assert "type e.g. 09:30-20:30" in bad.json()["errors"][0]["message"]
    # Chinese when the client asks for nothing else, on the same JSON path.
    zh = client.put("/v1/merchants/M1", json=MERCHANT | {"open": "9.30-20.30"},
                    headers=shop).json()["errors"][0]
    assert zh["path"] == ["body", "open"] and "09:30-20:30" in zh["message"]
    assert zh["message"] != bad.json()["errors"][0]["message"]
    volunteer = client.post("/v1/volunteers", json=VOLUNTEER, headers=coordinator).json()
    assert volunteer["availability"] == "mon 08:00-12:00;wed 14:00-18:00"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("volunteer_id", "V/../1", "is not an id"),
    ("volunteer_id", "..", "is not an id"),
    ("volunteer_id", "V 1", "is not an id"),
    ("volunteer_id", "V" * 25, "an id has at most 24"),
    ("name", "王" * 1_000_000, "a name has at most 100"),
    ("name", "王\x00芳", "contains a NUL character"),
])
def test_ids_and_names_have_limits(client: TestClient, coordinator: dict[str, str], field: str,
                                   value: str, message: str) -> None:
    # In English, the words these were written in (Chinese is the default).
    response = client.post("/v1/volunteers", json=VOLUNTEER | {field: value},
                           headers=coordinator | {"Accept-Language": "en"})
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["path"] == ["body", field] and message in error["message"]
    assert client.get("/v1/volunteers", headers=coordinator).json()["total"] == 0


def test_an_id_with_chinese_letters_dots_and_dashes_round_trips(
        client: TestClient, coordinator: dict[str, str]) -> None:
    body = VOLUNTEER | {"volunteer_id": "香蜜湖-3.栋_7"}
    assert client.post("/v1/volunteers", json=body, headers=coordinator).status_code == 201
    assert client.get("/v1/volunteers/香蜜湖-3.栋_7", headers=coordinator).status_code == 200
    assert client.delete("/v1/volunteers/香蜜湖-3.栋_7", headers=coordinator).status_code == 204


def _upload(client: TestClient, headers: dict[str, str], source: Path) -> Any:
    paths = [source] if source.is_file() else sorted(source.glob("*.csv"))
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    return client.post("/v1/imports", files=files, headers=headers)


def test_the_corpus_is_refused_through_imports_with_the_same_messages(
        client: TestClient, coordinator: dict[str, str], tmp_path: Path) -> None:
    for case, rows in EXPECTED.items():
        errors = [r["message"] for r in rows if r["kind"] == "error"]
        if not errors:
            continue
        folder = tmp_path / case
        folder.mkdir()
        # The corpus holds the English messages (the CLI's, in English).
        response = _upload(client, coordinator | {"Accept-Language": "en"},
                           source_of(case, folder))
        assert response.status_code == 422, (case, response.text)
        assert [e["detail"] for e in response.json()["errors"]] == errors, case
    assert client.get("/v1/volunteers", headers=coordinator).json()["total"] == 0


def test_an_import_stores_normal_forms(client: TestClient, coordinator: dict[str, str],
                                       tmp_path: Path) -> None:
    folder = source_of("spaced-times", tmp_path)
    response = _upload(client, coordinator, folder)
    assert response.status_code == 200, response.text
    assert client.get("/v1/merchants/M1", headers=coordinator).json()["open"] == "09:30-20:30"
    need = client.get("/v1/needs/N1", headers=coordinator).json()
    assert need["window"] == "11:00-12:30"


def test_a_file_beyond_the_size_limit_is_refused(client: TestClient, coordinator: dict[str, str],
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("api.routers.resources.MAX_FILE_BYTES", 200)
    shutil.copy(CORPUS / "_base" / "volunteers.csv", tmp_path / "volunteers.csv")
    response = _upload(client, coordinator | {"Accept-Language": "en"}, tmp_path)
    assert response.status_code == 413
    assert "volunteers.csv: at most" in response.json()["detail"]


@pytest.mark.parametrize("case", ["need-in-the-sea", "skill-typo", "service-typo"])
def test_an_import_notes_far_places_and_unknown_names(client: TestClient,
                                                      coordinator: dict[str, str],
                                                      tmp_path: Path, case: str) -> None:
    response = _upload(client, coordinator, source_of(case, tmp_path))
    assert response.status_code == 200, response.text
    expected = [r["message"] for r in EXPECTED[case] if r["kind"] == "note"]
    assert response.json()["notes"] == expected
    # A later import of needs alone is weighed against the volunteers on file.
    needs_only = tmp_path / "again"
    needs_only.mkdir()
    shutil.copy(tmp_path / "needs.csv", needs_only / "needs.csv")
    assert _upload(client, coordinator, needs_only).json()["notes"] == expected


def test_a_need_phone_and_address_have_limits(client: TestClient,
                                              coordinator: dict[str, str]) -> None:
    need = {"need_id": "N1", "kind": "elderly", "service": "home_visit", "beneficiary": "张奶奶",
            "lat": 22.5352, "lon": 114.0183, "days": "Monday；WED", "window": "9:00 - 11:00",
            "duration_min": 30}
    for field, value in (("phone", "1" * 33), ("address", "路" * 201)):
        response = client.post("/v1/needs", json=need | {field: value}, headers=coordinator)
        assert response.status_code == 422
        assert response.json()["errors"][0]["path"] == ["body", field]
    created = client.post("/v1/needs", json=need | {"phone": "1" * 32, "address": "路" * 200},
                          headers=coordinator)
    assert created.status_code == 201, created.text
    assert created.json()["days"] == "mon;wed" and created.json()["window"] == "09:00-11:00"
