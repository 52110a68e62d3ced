"""GET /v1/nearby: public, no login; partner merchants and OSM places within the circle with
routes and Chinese directions, across the lines between communities; coordinates in the
caller's system; throttled per address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from api.models import Community
from api.settings import ApiSettings
from matcher.coords import CoordSystem, from_wgs84
from tests.conftest import CENTRE, NETWORK, offset

PLACES = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6">
  <node id="1" lat="{lat}" lon="{lon}"><tag k="amenity" v="pharmacy"/>
    <tag k="name" v="益民药店"/></node>
  <node id="2" lat="22.60" lon="114.20"><tag k="amenity" v="clinic"/></node>
</osm>
"""
CANTEEN = {"merchant_id": "M1", "name": "幸福食堂", "lat": 22.5352, "lon": 114.0181,
           "services": "meal", "capacity_per_day": 30, "open": "10:00-20:00"}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> ApiSettings:
    places = tmp_path / "places.osm"
    near = offset(250, -150)
    places.write_text(PLACES.format(lat=near.lat, lon=near.lon), encoding="utf-8")
    return ApiSettings(database_url=database_url, secret_key="test-secret-key-0123456789abcdef",
                       run_workers=False, webhook_url=None, network_path=str(NETWORK),
                       places_path=str(places), nearby_per_address=5)


@pytest.fixture
def client(settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _add_canteen(client: TestClient) -> None:
    from tests.api.conftest import make_user

    coordinator = make_user(client, "coordinator", "coordinator")
    assert client.post("/v1/merchants", json=CANTEEN, headers=coordinator).status_code == 201


def test_anyone_finds_places_with_routes_and_chinese_directions(client: TestClient) -> None:
    _add_canteen(client)
    response = client.get("/v1/nearby", params={"lat": CENTRE.lat, "lon": CENTRE.lon})
    assert response.status_code == 200, response.text
    body = response.json()
    places = {p["id"]: p for p in body["places"]}
    assert set(places) == {"merchant:M1", "osm:n1"}  # the far clinic is beyond the circle
    assert [p["minutes"] for p in body["places"]] == sorted(p["minutes"] for p in body["places"])
    canteen = places["merchant:M1"]
    assert canteen["category"] == "canteen" and canteen["category_name"] == "社区食堂"
    assert canteen["services"] == ["meal"] and 0 < canteen["minutes"] <= 15
    assert canteen["directions"].startswith("沿") and canteen["directions"].endswith("到达幸福食堂")
    line = canteen["route"]
    assert line["type"] == "LineString" and len(line["coordinates"]) >= 3
    assert line["coordinates"][0] == [round(CENTRE.lon, 6), round(CENTRE.lat, 6)]
    assert line["coordinates"][-1] == [CANTEEN["lon"], CANTEEN["lat"]]
    assert places["osm:n1"]["name"] == "益民药店" and "OpenStreetMap" in body["attribution"]
    only = client.get("/v1/nearby", params={"lat": CENTRE.lat, "lon": CENTRE.lon,
                                            "category": "pharmacy"}).json()["places"]
    assert [p["id"] for p in only] == ["osm:n1"]
    english = client.get("/v1/nearby", params={"lat": CENTRE.lat, "lon": CENTRE.lon,
                                               "category": "canteen"},
                         headers={"Accept-Language": "en"}).json()["places"][0]
    assert english["directions"].startswith("Walk ") and english["category_name"] == \
        "Community canteen"


def test_coordinates_are_in_the_callers_system(client: TestClient) -> None:
    _add_canteen(client)
    wgs = client.get("/v1/nearby", params={"lat": CENTRE.lat, "lon": CENTRE.lon}).json()
    lat, lon = from_wgs84(CENTRE.lat, CENTRE.lon, CoordSystem.GCJ02)
    gcj = client.get("/v1/nearby", params={"lat": lat, "lon": lon, "coords": "gcj02"}).json()
    assert [p["id"] for p in gcj["places"]] == [p["id"] for p in wgs["places"]]
    first_w, first_g = wgs["places"][0], gcj["places"][0]
    assert first_g["minutes"] == pytest.approx(first_w["minutes"], abs=0.1)
    expected = from_wgs84(first_w["lat"], first_w["lon"], CoordSystem.GCJ02)
    assert (first_g["lat"], first_g["lon"]) == pytest.approx(expected, abs=2e-6)
    assert first_g["route"]["coordinates"][0] == pytest.approx([lon, lat], abs=2e-6)


def test_bad_places_get_a_clear_error(client: TestClient) -> None:
    for params in ({"lat": 114.0, "lon": 22.5}, {"lat": "x", "lon": 1}, {"lat": 22.5},
                   {"lat": CENTRE.lat, "lon": CENTRE.lon, "category": "casino"},
                   {"lat": CENTRE.lat, "lon": CENTRE.lon, "coords": "mars"}):
        response = client.get("/v1/nearby", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["path"][0] == "query"
    far = client.get("/v1/nearby", params={"lat": 31.23, "lon": 121.47})  # Shanghai
    assert far.status_code == 200 and far.json()["places"] == []


def test_lookups_are_throttled_per_address(client: TestClient) -> None:
    params = {"lat": CENTRE.lat, "lon": CENTRE.lon}
    statuses = [client.get("/v1/nearby", params=params).status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5  # nearby_per_address
    assert statuses[5] == 429
    refused = client.get("/v1/nearby", params=params)
    assert int(refused.headers["Retry-After"]) >= 1


def test_coordinators_correct_hide_and_add_places(client: TestClient) -> None:
    from tests.api.conftest import make_user

    coordinator = make_user(client, "coordinator", "coordinator")
    assert client.post("/v1/merchants", json=CANTEEN, headers=coordinator).status_code == 201
    here = {"lat": CENTRE.lat, "lon": CENTRE.lon}
    listed = client.get("/v1/resources", headers=coordinator).json()["items"]
    assert {e["id"] for e in listed} == {"osm:n1", "osm:n2", "merchant:M1"}
    pharmacy = next(e for e in listed if e["id"] == "osm:n1")
    # Correct: the OSM pharmacy is really a clinic; add a library; hide the canteen.
    fixed = {k: pharmacy[k] for k in ("lat", "lon", "services")} | {
        "category": "clinic", "name": "景田社康中心"}
    response = client.put("/v1/resources/osm:n1", json=fixed, headers=coordinator)
    assert response.status_code == 200, response.text
    assert response.json()["edited"] is True
    library = {"category": "library", "name": "社区书屋", "lat": CENTRE.lat + 0.001,
               "lon": CENTRE.lon, "services": ["借书"]}
    assert client.put("/v1/resources/R1", json=library, headers=coordinator).status_code == 200
    canteen = next(e for e in listed if e["id"] == "merchant:M1")
    hide = {k: canteen[k] for k in ("category", "name", "lat", "lon", "services")} | {
        "hidden": True}
    assert client.put("/v1/resources/merchant:M1", json=hide,
                      headers=coordinator).status_code == 200
    found = {p["id"]: p for p in client.get("/v1/nearby", params=here).json()["places"]}
    assert set(found) == {"osm:n1", "R1"}
    assert found["osm:n1"]["category"] == "clinic" and found["osm:n1"]["source"] == "osm"
    assert found["R1"]["source"] == "coordinator" and found["R1"]["services"] == ["借书"]
    listed = {e["id"]: e for e in client.get("/v1/resources",
                                             headers=coordinator).json()["items"]}
    assert listed["merchant:M1"]["hidden"] is True and listed["merchant:M1"]["source"] == \
        "merchant"
    # Undo the hiding: the canteen is found again.
    assert client.delete("/v1/resources/merchant:M1", headers=coordinator).status_code == 204
    assert client.delete("/v1/resources/merchant:M1", headers=coordinator).status_code == 404
    again = {p["id"] for p in client.get("/v1/nearby", params=here).json()["places"]}
    assert again == {"osm:n1", "R1", "merchant:M1"}
    audit = client.get("/v1/audit", params={"target": "resource:"}, headers=coordinator)
    assert audit.status_code == 200
    bad = client.put("/v1/resources/R2", json=library | {"category": "casino", "lat": 91},
                     headers=coordinator)
    assert bad.status_code == 422
    assert {tuple(e["path"]) for e in bad.json()["errors"]} >= {("body", "category"),
                                                               ("body", "lat")}
    assert client.put("/v1/resources/bad id", json=library,
                      headers=coordinator).status_code == 422


def test_public_places_come_from_the_osm_network_itself(database_url: str) -> None:
    """With the shipped raw OSM export as the network (no places file), its public places are
    the resources: the canteen mapped as a restaurant is found, with a route on its streets."""
    haidian = NETWORK.parents[1] / "beijing-haidian" / "haidian_xueqing_rd.osm"
    settings = ApiSettings(database_url=database_url,
                           secret_key="test-secret-key-0123456789abcdef", run_workers=False,
                           webhook_url=None, network_path=str(haidian), places_path=None)
    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/nearby", params={"lat": 39.99900, "lon": 116.35050,
                                                "category": "canteen"}).json()
        assert [p["name"] for p in body["places"]] == ["石科院职工食堂"]
        assert body["places"][0]["directions"].endswith("到达石科院职工食堂")
        assert len(body["places"][0]["route"]["coordinates"]) >= 2
        assert "OpenStreetMap" in body["attribution"]


def test_the_circle_crosses_into_the_neighbouring_community(client: TestClient) -> None:
    """A resident at the edge of A finds B's partner shop within her 15 minutes and not B's
    shop beyond them, whoever asks (anonymous or logged in to A); B's coordinator hiding her
    shop hides it for A's residents too; nothing of B's needs or volunteers is ever shown."""
    from tests.api.conftest import make_user

    street = make_user(client, "street", "street_admin", street_office_id=1)
    made = client.post("/v1/communities", json={"code": "yi", "name": "乙社区"}, headers=street)
    assert made.status_code == 201, made.text
    db = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        b_community = session.scalar(select(Community.id).where(Community.code == "yi"))
    assert b_community is not None
    a_coordinator = make_user(client, "a-coordinator", "coordinator", community_id=1)
    b_coordinator = make_user(client, "b-coordinator", "coordinator",
                              community_id=b_community)
    assert client.post("/v1/merchants", json=CANTEEN, headers=a_coordinator).status_code == 201
    near, far = offset(300, 250), offset(0, 2600)
    for ident, name, where in (("BM1", "乙家小食堂", near), ("BM2", "乙家远食堂", far)):
        body = CANTEEN | {"merchant_id": ident, "name": name, "lat": where.lat,
                          "lon": where.lon}
        response = client.post("/v1/merchants", json=body, headers=b_coordinator)
        assert response.status_code == 201, response.text
    # B's private rows right where the resident stands.
    private = [
        ("/v1/volunteers", {"volunteer_id": "BV1", "name": "乙志愿者", "lat": CENTRE.lat,
                            "lon": CENTRE.lon, "skills": "meal_delivery",
                            "availability": "mon 08:00-12:00", "max_hours_week": 4}),
        ("/v1/needs", {"need_id": "BN1", "kind": "elderly", "service": "meal_delivery",
                       "beneficiary": "乙奶奶", "phone": "13800000001", "address": "乙路 3 栋",
                       "lat": CENTRE.lat, "lon": CENTRE.lon, "days": "mon",
                       "window": "09:00-11:00", "duration_min": 30, "priority": "red"})]
    for path, body in private:
        assert client.post(path, json=body, headers=b_coordinator).status_code == 201
    here = {"lat": CENTRE.lat, "lon": CENTRE.lon, "category": "canteen"}
    a_volunteer = make_user(client, "a-volunteer", "volunteer", community_id=1)
    # (Five lookups in all: the throttle's allowance in these tests.)
    for headers in ({}, a_volunteer | {"X-Linli-Community": "default"}, a_coordinator):
        response = client.get("/v1/nearby", params=here, headers=headers)
        assert response.status_code == 200, response.text
        found = {p["id"]: p for p in response.json()["places"]}
        assert set(found) == {"merchant:M1", "merchant:BM1"}, headers
        assert found["merchant:BM1"]["name"] == "乙家小食堂"
        assert found["merchant:BM1"]["minutes"] <= 15 and found["merchant:BM1"]["directions"]
        for secret in ("BV1", "BN1", "乙志愿者", "乙奶奶", "13800000001", "乙路"):
            assert secret not in response.text, secret
    # Each coordinator's resource list stays her own community's.
    a_list = client.get("/v1/resources", headers=a_coordinator).json()["items"]
    assert "merchant:BM1" not in {e["id"] for e in a_list}
    # B's coordinator hides her shop: A's residents no longer find it; undone, it is back.
    hide = {"category": "canteen", "name": "乙家小食堂", "lat": near.lat, "lon": near.lon,
            "services": ["meal"], "hidden": True}
    assert client.put("/v1/resources/merchant:BM1", json=hide,
                      headers=b_coordinator).status_code == 200
    gone = client.get("/v1/nearby", params=here).json()["places"]
    assert {p["id"] for p in gone} == {"merchant:M1"}
    # A's coordinator cannot hide B's shop (not hers to correct).
    assert client.put("/v1/resources/merchant:BM1", json=hide | {"hidden": False},
                      headers=a_coordinator).status_code in (404, 409)
    assert client.delete("/v1/resources/merchant:BM1",
                         headers=b_coordinator).status_code == 204
    back = client.get("/v1/nearby", params=here).json()["places"]
    assert {p["id"] for p in back} == {"merchant:M1", "merchant:BM1"}
