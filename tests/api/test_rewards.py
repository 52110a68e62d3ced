"""Points through the service layer (api/rewards.py): the catalogue, redemptions and the
statement come a page at a time with their totals; a statement's totals cover the whole month,
not only the page shown."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.ledger import ISSUER, transfer
from tests.api.conftest import make_user
from tests.api.test_idempotency import MERCHANT, VOLUNTEER


def test_catalogue_redemptions_and_statement_come_in_pages(
        client: TestClient, coordinator: dict[str, str]) -> None:
    assert client.post("/v1/volunteers", json=VOLUNTEER, headers=coordinator).status_code == 201
    assert client.post("/v1/merchants", json=MERCHANT, headers=coordinator).status_code == 201
    vol = make_user(client, "vol", "volunteer", volunteer_id="V1")
    shop = make_user(client, "shop", "merchant", merchant_id="M1")
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        for amount in (40, 50, 60):
            transfer(session, ISSUER, ("volunteer", "V1"), amount, f"credit {amount}")
        session.commit()
    made = [client.post("/v1/rewards", json={"name": f"理发 {i}", "points": 10 + i},
                        headers=shop).json() for i in range(3)]
    first = client.get("/v1/rewards", params={"limit": 2}, headers=vol).json()
    assert first["total"] == 3 and (first["limit"], first["offset"]) == (2, 0)
    rest = client.get("/v1/rewards", params={"limit": 2, "offset": 2}, headers=vol).json()
    assert [r["id"] for r in first["items"] + rest["items"]] == [r["id"] for r in made]
    assert client.get("/v1/rewards", params={"limit": 0}, headers=vol).status_code == 422
    for i, reward in enumerate(made):
        assert client.post("/v1/redemptions", json={"reward_id": reward["id"]},
                           headers=vol | {"Idempotency-Key": f"redeem-{i:04d}"}
                           ).status_code == 201
    newest = client.get("/v1/redemptions", params={"limit": 1}, headers=shop).json()
    assert newest["total"] == 3 and newest["items"][0]["reward_id"] == made[-1]["id"]
    # Three credits and three holds: the page shows two entries, the totals all six.
    statement = client.get("/v1/me/statement", params={"limit": 2, "offset": 1},
                           headers=vol).json()
    assert statement["entries"]["total"] == 6
    assert [e["amount"] for e in statement["entries"]["items"]] == [50, 60]
    assert (statement["total_in"], statement["total_out"]) == (150, 10 + 11 + 12)
    assert statement["balance"] == 150 - 33
