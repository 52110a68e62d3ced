"""A schedule's lists through the service layer (api/scheduling.py): tasks, unmet occurrences
and candidates come a page at a time with their total, and a schedule's tasks filter by
volunteer and by day."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def _walk(client: TestClient, headers: dict[str, str], url: str, size: int,
          **params: Any) -> list[dict[str, Any]]:
    """Every item of a list route, ``size`` at a time, checking each page's total."""
    found: list[dict[str, Any]] = []
    total = None
    while total is None or len(found) < total:
        page = client.get(url, params=params | {"limit": size, "offset": len(found)},
                          headers=headers).json()
        assert total in (None, page["total"]) and len(page["items"]) <= size
        total = page["total"]
        if not page["items"]:
            break
        found += page["items"]
    assert len(found) == total
    return found


def test_a_schedule_s_lists_come_in_pages_and_tasks_filter_by_volunteer_and_day(
        client: TestClient, coordinator: dict[str, str], published: dict[str, Any]) -> None:
    tasks = published["tasks"]
    url = f"/v1/schedules/{published['id']}"
    assert [t["id"] for t in _walk(client, coordinator, f"{url}/tasks", 7)] == [
        t["id"] for t in tasks]
    volunteer, day = tasks[0]["volunteer_id"], tasks[0]["day"]
    hers = client.get(f"{url}/tasks", params={"volunteer_id": volunteer, "limit": 500},
                      headers=coordinator).json()
    assert hers["items"] == [t for t in tasks if t["volunteer_id"] == volunteer]
    assert hers["total"] == len(hers["items"])
    that_day = client.get(f"{url}/tasks", params={"volunteer_id": volunteer, "day": day},
                          headers=coordinator).json()
    assert that_day["items"] == [t for t in hers["items"] if t["day"] == day]
    assert client.get(f"{url}/tasks", params={"day": "someday"},
                      headers=coordinator).status_code == 422
    unmet = _walk(client, coordinator, f"{url}/unmet", 5)
    assert len(unmet) + published["summary"]["covered"] == published["summary"]["occurrences"]
    if unmet:
        by_day = client.get(f"{url}/unmet", params={"day": unmet[0]["day"], "limit": 500},
                            headers=coordinator).json()
        assert by_day["items"] == [u for u in unmet if u["day"] == unmet[0]["day"]]
    task = tasks[0]
    fits = f"{url}/occurrences/{task['need_id']}/{task['day']}/candidates"
    everyone = client.get(fits, params={"limit": 500, "replacing": task["volunteer_id"]},
                          headers=coordinator).json()
    assert everyone["total"] == len(everyone["items"])
    assert _walk(client, coordinator, fits, 2, replacing=task["volunteer_id"]) == \
        everyone["items"]
