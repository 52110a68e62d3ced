"""Idempotency keys: a retry replays, the same key on another request is refused, and a key is
scoped by user, method and route; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.ledger import ISSUER, transfer
from tests.api.conftest import login, make_user

PROBLEM_JSON = "application/problem+json"
VOLUNTEER = {"volunteer_id": "V1", "name": "王芳", "lat": 22.534, "lon": 114.017,
             "skills": "meal_delivery", "availability": "mon 08:00-12:00"}
MERCHANT = {"merchant_id": "M1", "name": "幸福食堂", "lat": 22.5338, "lon": 114.0169,
            "services": "meal", "capacity_per_day": 30, "open": "10:00-20:00"}


def _shop_with_two_pending(client: TestClient, coordinator: dict[str, str]
                           ) -> tuple[dict[str, str], dict[str, str], list[dict[str, Any]]]:
    """A volunteer with points, a merchant, and two pending redemptions at it."""
    assert client.post("/v1/volunteers", json=VOLUNTEER, headers=coordinator).status_code == 201
    assert client.post("/v1/merchants", json=MERCHANT, headers=coordinator).status_code == 201
    vol = make_user(client, "vol", "volunteer", volunteer_id="V1")
    shop = make_user(client, "shop", "merchant", merchant_id="M1")
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        transfer(session, ISSUER, ("volunteer", "V1"), 100, "test credit")
        session.commit()
    reward = client.post("/v1/rewards", json={"name": "理发", "points": 30}, headers=shop).json()
    made = [client.post("/v1/redemptions", json={"reward_id": reward["id"]},
                        headers=vol | {"Idempotency-Key": f"redeem-{i:04d}"})
            for i in range(2)]
    assert [r.status_code for r in made] == [201, 201]
    return vol, shop, [r.json() for r in made]


def _status(client: TestClient, shop: dict[str, str], redemption_id: int) -> str:
    mine = {r["id"]: r for r in client.get("/v1/redemptions", headers=shop).json()["items"]}
    return str(mine[redemption_id]["status"])


def test_a_key_is_scoped_by_route_and_refused_on_another_request(
        client: TestClient, coordinator: dict[str, str]) -> None:
    _, shop, (first, second) = _shop_with_two_pending(client, coordinator)
    key = {"Idempotency-Key": "decide-0001"}
    confirmed = client.post(f"/v1/redemptions/{first['id']}/confirm", headers=shop | key)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    retry = client.post(f"/v1/redemptions/{first['id']}/confirm", headers=shop | key)
    assert (retry.status_code, retry.json()) == (200, confirmed.json())  # replayed
    # The same key on the same route for another redemption: refused, not a replay of the
    # first answer, and the second redemption is untouched.
    other = client.post(f"/v1/redemptions/{second['id']}/confirm",
                        headers=shop | key | {"Accept-Language": "en"})
    assert other.status_code == 422 and other.headers["content-type"] == PROBLEM_JSON
    assert "different request" in other.json()["detail"]
    assert other.json()["errors"][0]["path"] == ["header", "idempotency-key"]
    assert _status(client, shop, second["id"]) == "pending"
    # Another route (refuse) is another scope: the key does its own work there.
    refused = client.post(f"/v1/redemptions/{second['id']}/refuse", headers=shop | key)
    assert refused.status_code == 200
    assert (refused.json()["id"], refused.json()["status"]) == (second["id"], "refused")
    assert _status(client, shop, second["id"]) == "refused"
    assert _status(client, shop, first["id"]) == "confirmed"


def test_a_key_reused_with_another_body_is_refused(client: TestClient,
                                                   coordinator: dict[str, str]) -> None:
    vol, shop, (first, _) = _shop_with_two_pending(client, coordinator)
    other = client.post("/v1/rewards", json={"name": "洗车", "points": 10}, headers=shop).json()
    key = {"Idempotency-Key": "redeem-0000"}  # used for the first redemption
    again = client.post("/v1/redemptions", json={"reward_id": first["reward_id"]},
                        headers=vol | key)
    assert (again.status_code, again.json()) == (201, first)  # the same request: replayed
    changed = client.post("/v1/redemptions", json={"reward_id": other["id"]}, headers=vol | key)
    assert changed.status_code == 422 and changed.headers["content-type"] == PROBLEM_JSON
    assert client.get("/v1/redemptions", headers=vol).json()["total"] == 2  # nothing redeemed
    assert client.get("/v1/me/statement", headers=vol).json()["balance"] == 100 - 2 * 30


def test_keys_of_different_users_do_not_meet(client: TestClient,
                                             coordinator: dict[str, str]) -> None:
    _, shop, _ = _shop_with_two_pending(client, coordinator)
    make_user(client, "vol2", "volunteer", volunteer_id="V1")
    twin = login(client, "vol2")
    reward = client.post("/v1/rewards", json={"name": "洗车", "points": 10}, headers=shop).json()
    # vol used "redeem-0000" for another reward: vol2's own key of that name is free.
    made = client.post("/v1/redemptions", json={"reward_id": reward["id"]},
                       headers=twin | {"Idempotency-Key": "redeem-0000"})
    assert made.status_code == 201 and made.json()["reward_id"] == reward["id"]
