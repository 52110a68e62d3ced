"""The import template through the API: the caller's own tables, the community's own words in
the drop-downs, and the importer reads it back cleanly."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
from fastapi.testclient import TestClient

from matcher.spreadsheets import read_charity, read_community
from matcher.template import HEADERS
from tests.api.conftest import make_user
from tests.api.test_permissions import VOLUNTEER
from tests.conftest import WEEK


def _words(book: openpyxl.Workbook, sheet: str, column: str) -> list[str]:
    position = list(HEADERS[{"志愿者": "volunteers", "需求": "needs"}[sheet]]).index(column) + 1
    cell = f"{openpyxl.utils.get_column_letter(position)}3"
    [check] = [v for v in book[sheet].data_validations.dataValidation if cell in v.sqref]
    return str(check.formula1).strip('"').split(",")


def test_a_coordinator_gets_the_community_sheets_with_its_own_skills(
        client: TestClient, tmp_path: Path) -> None:
    coordinator = make_user(client, "coordinator", "coordinator")
    body = VOLUNTEER | {"skills": "sign_language;first_aid"}
    assert client.post("/v1/volunteers", json=body, headers=coordinator).status_code == 201
    response = client.get("/v1/imports/template", headers=coordinator)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["志愿者", "需求", "商家"]
    assert _words(book, "志愿者", "skills") == ["first_aid", "sign_language"]
    path = tmp_path / "template.xlsx"
    path.write_bytes(response.content)
    assert read_community(path, WEEK).notes == []


def test_an_organiser_gets_the_charity_sheets_and_not_the_community_ones(
        client: TestClient, tmp_path: Path) -> None:
    organiser = make_user(client, "organiser", "organiser")
    response = client.get("/v1/imports/template", headers=organiser)
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["捐赠", "求助"]
    path = tmp_path / "charity.xlsx"
    path.write_bytes(response.content)
    assert read_charity(path, WEEK).notes == []
    refused = client.get("/v1/imports/template", params={"tables": "community"},
                         headers=organiser)
    assert refused.status_code == 403
    assert client.get("/v1/imports/template", params={"tables": "all"},
                      headers=organiser).status_code == 422


def test_the_template_imported_through_the_api_saves_its_example_rows(
        client: TestClient) -> None:
    coordinator = make_user(client, "coordinator", "coordinator")
    data = client.get("/v1/imports/template", headers=coordinator).content
    response = client.post("/v1/imports", headers=coordinator,
                           files=[("files", ("模板.xlsx", data, "application/octet-stream"))])
    assert response.status_code == 200, response.text
    assert response.json()["created"] == {"volunteers": 1, "needs": 1, "merchants": 1}
