"""The web console without a browser: every console route is in the permission table and
refused to the other roles, the session cookie and CSRF token, the language switch, each
role's page renders through the API, and a bad upload shows every problem in Chinese."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api import permissions
from api.console import residents_views, views
from api.permissions import ANONYMOUS, CONSOLE, ROLES
from tests.api.conftest import make_user, set_clock
from tests.api.test_permissions import MERCHANT, VOLUNTEER

pytestmark = pytest.mark.usefixtures("cheap_hashes")  # they log in many times

PASSWORD = "password-123"


def console_login(client: TestClient, username: str) -> str:
    """Log in through the console's form; the CSRF token of the session."""
    response = client.post("/console/login", data={"username": username, "password": PASSWORD,
                                                   "next": "/console/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = client.get("/console/")
    # Every page sends the session's token with htmx requests; forms carry it too.
    match = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def _console_routes(client: TestClient) -> set[tuple[str, str]]:
    routes = [*views.router.routes, *residents_views.router.routes,
              *client.app.routes]  # type: ignore[attr-defined]
    return {(method, route.path) for route in routes
            if isinstance(route, APIRoute)
            and (route.path == "/" or route.path.startswith("/console"))
            for method in route.methods}


def test_every_console_route_is_in_the_permission_table(client: TestClient) -> None:
    assert _console_routes(client) == set(CONSOLE)


PAGES = {"coordinator": ["/console/overview", "/console/import", "/console/schedules",
                         "/console/people/volunteers", "/console/points", "/console/audit"],
         "organiser": ["/console/charity", "/console/import", "/console/people/needs"],
         "merchant": ["/console/shop"], "volunteer": ["/console/me"],
         "street_admin": ["/console/communities", "/console/district"]}


def one_account_per_role(client: TestClient) -> None:
    """An account of every role (the volunteer's and the merchant's records too)."""
    coordinator = make_user(client, "coordinator", "coordinator")
    for kind, body in (("volunteers", VOLUNTEER), ("merchants", MERCHANT)):
        assert client.post(f"/v1/{kind}", json=body, headers=coordinator).status_code == 201
    make_user(client, "organiser", "organiser")
    make_user(client, "volunteer", "volunteer", volunteer_id="V1")
    make_user(client, "merchant", "merchant", merchant_id="M1")
    make_user(client, "grid_worker", "grid_worker", grid_units="G1")
    make_user(client, "street_admin", "street_admin", street_office_id=1)
    make_user(client, "district_admin", "district_admin", district_id=1)


def test_each_role_sees_its_pages_and_is_refused_the_others(client: TestClient) -> None:
    one_account_per_role(client)
    for role in ROLES:
        client.cookies.clear()
        console_login(client, role)
        for pages in PAGES.values():
            for page in pages:
                response = client.get(page)
                template = re.sub(r"/people/\w+", "/people/{kind}", page)
                if role in permissions.allowed("GET", template):
                    assert response.status_code == 200, (role, page, response.text[:300])
                    assert "<html" in response.text
                else:
                    assert response.status_code == 403, (role, page, response.status_code)
                    assert "不是给您的账号用的" in response.text


def test_each_role_lands_on_a_home_page_of_its_own(client: TestClient) -> None:
    one_account_per_role(client)
    for role in ROLES:
        client.cookies.clear()
        console_login(client, role)
        home = client.get("/console/", follow_redirects=False).headers["location"]
        assert home != "/console/report", role  # the public report is nobody's home
        assert client.get(home).status_code == 200, (role, home)


def test_a_page_without_a_session_leads_to_the_login(client: TestClient) -> None:
    response = client.get("/console/overview", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/overview"
    assert client.get("/", follow_redirects=False).headers["location"] == "/console/"
    assert ANONYMOUS in permissions.allowed("GET", "/console/login")


def test_a_form_post_without_the_session_csrf_token_is_refused(client: TestClient) -> None:
    make_user(client, "coordinator", "coordinator")
    token = console_login(client, "coordinator")
    week = {"week": "2026-W48"}
    refused = client.post("/console/schedules", data=week | {"csrf": "0" * 64},
                          follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/v1/schedules", headers={
        "Authorization": f"Bearer {client.cookies[views.SESSION_COOKIE]}"}).json()["items"] == []
    accepted = client.post("/console/schedules", data=week | {"csrf": token},
                           follow_redirects=False)
    assert accepted.status_code == 303
    assert accepted.headers["location"].startswith("/console/schedules/")


def test_wrong_password_is_said_plainly_in_chinese_and_english(client: TestClient) -> None:
    make_user(client, "coordinator", "coordinator")
    response = client.post("/console/login", data={"username": "coordinator",
                                                   "password": "nope-nope"})
    assert response.status_code == 401 and "用户名或密码不对" in response.text
    client.cookies.set(views.LANG_COOKIE, "en")
    response = client.post("/console/login", data={"username": "coordinator",
                                                   "password": "nope-nope"})
    assert "The username or password is not right." in response.text


def test_the_language_switch_sets_a_cookie_and_returns(client: TestClient) -> None:
    response = client.get("/console/lang/en", headers={"Referer": "http://x/console/report"},
                          follow_redirects=False)
    assert response.headers["location"] == "/console/report"
    assert "linli_lang=en" in response.headers["set-cookie"]
    assert "Public monthly report" in client.get("/console/report").text
    client.get("/console/lang/zh_CN")
    assert "信息公开" in client.get("/console/report").text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/v1/me"])
def test_login_returns_only_to_console_pages(target: str) -> None:
    assert views._local(target) == "/console/"


def test_a_bad_row_shows_every_problem_and_saves_nothing(client: TestClient) -> None:
    make_user(client, "coordinator", "coordinator")
    token = console_login(client, "coordinator")
    csv = ("volunteer_id,name,lat,lon,skills,availability,max_hours_week\n"
           "V1,王芳,22.534,114.017,meal_delivery,mon 08:00-12:00,4\n"
           "V2,李雷,north,114.017,meal_delivery,mon 08:00-12:00,4\n")
    response = client.post("/console/import", data={"csrf": token},
                           files=[("files", ("volunteers.csv", csv.encode(), "text/csv"))])
    assert response.status_code == 422
    assert "没有保存" in response.text and "north" in response.text
    assert "不是数字" in response.text  # the check's message, in Chinese
    assert "<td>3</td>" in response.text  # the spreadsheet row (header is row 1)
    listing = client.get("/console/people/volunteers")
    assert "王芳" not in listing.text


def test_the_overview_counts_in_plain_words_and_lists_declines(client: TestClient) -> None:
    """Covered per priority with "at most N more" from the bound, unmet visits, and a decline
    with its reason and who could take it."""
    from api.models import ScheduleRow, TaskRow
    from tests.api.test_permissions import NEED
    from tests.conftest import WEEK

    coordinator = make_user(client, "coordinator", "coordinator")
    for kind, body in (("volunteers", VOLUNTEER), ("needs", NEED)):
        assert client.post(f"/v1/{kind}", json=body, headers=coordinator).status_code == 201
    summary = {"occurrences": 9, "covered": 6,
               "covered_by_priority": {"red": 3, "yellow": 2, "blue": 1},
               "occurrences_by_priority": {"red": 3, "yellow": 3, "blue": 3},
               "bound": {"red": 3, "yellow": 3, "blue": 1}}
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        schedule = ScheduleRow(week=str(WEEK), status="published", progress="done",
                               summary=summary)
        session.add(schedule)
        session.flush()
        session.add(TaskRow(schedule_id=schedule.id, need_id="N1", day="mon", date=WEEK.monday,
                            start=9 * 60, end=9 * 60 + 30, volunteer_id="V1", walk_min=3.0,
                            state="declined", decline_reason="孩子生病"))
        session.commit()
    console_login(client, "coordinator")
    page = client.get(f"/console/overview?week={WEEK}").text
    assert "已经安排到最多了" in page  # red: every visit any plan can cover
    assert "最多还能覆盖 1 个" in page  # yellow
    assert re.search(r'<span class="big">3</span> 次服务还没人接', page)
    assert "孩子生病" in page and "/candidates/N1/mon" in page


def test_a_coordinator_confirms_completed_work_from_the_points_page(client: TestClient) -> None:
    from api.models import ScheduleRow, TaskRow
    from tests.api.test_permissions import NEED
    from tests.conftest import WEEK

    coordinator = make_user(client, "coordinator", "coordinator")
    for kind, body in (("volunteers", VOLUNTEER), ("needs", NEED)):
        assert client.post(f"/v1/{kind}", json=body, headers=coordinator).status_code == 201
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        schedule = ScheduleRow(week=str(WEEK), status="published", progress="done")
        session.add(schedule)
        session.flush()
        task = TaskRow(schedule_id=schedule.id, need_id="N1", day="mon", date=WEEK.monday,
                       start=9 * 60, end=9 * 60 + 30, volunteer_id="V1", walk_min=3.0,
                       state="completed")
        session.add(task)
        session.commit()
        task_id = task.id
    set_clock(client, WEEK.monday, "12:00")  # done and over
    csrf = console_login(client, "coordinator")
    page = client.get(f"/console/points?week={WEEK}").text
    key = re.search(r'name="key" value="([0-9a-f]+)"', page)
    assert key and f"/console/tasks/{task_id}/confirm" in page
    response = client.post(f"/console/tasks/{task_id}/confirm",
                           data={"csrf": csrf, "key": key.group(1)}, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert "没有要确认的" in client.get(f"/console/points?week={WEEK}").text
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        assert session.get(TaskRow, task_id).state == "confirmed"  # type: ignore[union-attr]


def test_the_import_page_offers_the_template_and_it_downloads(client: TestClient) -> None:
    make_user(client, "coordinator", "coordinator")
    console_login(client, "coordinator")
    page = client.get("/console/import").text
    assert 'href="/console/import/template.xlsx"' in page and "下载导入模板" in page
    response = client.get("/console/import/template.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'filename="linli-template.xlsx"' in response.headers["content-disposition"]
    assert response.content[:2] == b"PK"  # a zip: the .xlsx itself


def test_a_queued_plan_is_stopped_from_its_page_and_says_so(client: TestClient) -> None:
    from api.models import ScheduleRow
    from tests.conftest import WEEK

    make_user(client, "coordinator", "coordinator")
    client.app.state.worker.stop()  # type: ignore[attr-defined]  # nobody claims it meanwhile
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        row = ScheduleRow(week=str(WEEK), status="queued", progress="queued", attempts=0,
                          cancel_requested=False, created_by=None)
        session.add(row)
        session.commit()
        schedule_id = row.id
    csrf = console_login(client, "coordinator")
    page = client.get(f"/console/schedules/{schedule_id}").text
    assert f'action="/console/schedules/{schedule_id}/cancel"' in page
    response = client.post(f"/console/schedules/{schedule_id}/cancel", data={"csrf": csrf},
                           follow_redirects=False)
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert "已停止" in page and "/cancel" not in page
    # Stopping it again: the API says it is not running any more, and the page shows that.
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        done = session.get(ScheduleRow, schedule_id)
        assert done is not None
        done.status = "solved"
        session.commit()
    again = client.post(f"/console/schedules/{schedule_id}/cancel", data={"csrf": csrf})
    assert again.status_code == 200
    # The API's words (English or Chinese, whichever it answers in) in the page's alert.
    alert = re.search(r'<p class="error" role="alert">([^<]+)</p>', again.text)
    assert alert and alert.group(1).strip()


def test_a_list_is_read_whether_the_api_answers_a_list_or_a_page() -> None:
    rows = [{"id": 1}, {"id": 2}]
    assert views.listed(rows) == (rows, 2)
    assert views.listed({"items": rows, "total": 40, "limit": 2, "offset": 0}) == (rows, 40)
    with pytest.raises(views.Refused):
        views.listed({"detail": "odd"})


@pytest.mark.parametrize(("stored", "shown"), [
    ("blue: exact, day by day", "正在安排蓝色需求"),
    ("red: exact model, 41 options", "正在安排红色需求"),
    ("solving 120 occurrences with CP-SAT", "正在排这一周"),
    ("greedy baseline", "正在做初步安排"),
    ("quality: shorter walks, day by day", "正在让大家少走路，尽量由熟悉的志愿者上门"),
    ("something new the solver says", "正在处理"),
    ("queued", "")])
def test_progress_is_told_in_a_coordinators_words(stored: str, shown: str) -> None:
    """The solver's progress lines (English, for programs) never reach the page as they are."""
    from matcher import i18n

    with i18n.use("zh_CN"):
        assert views.progress_words(stored) == shown
    with i18n.use("en"):
        assert "CP-SAT" not in views.progress_words(stored)


def test_the_list_of_plans_tells_each_step_in_a_coordinators_words(client: TestClient) -> None:
    from api.models import ScheduleRow

    make_user(client, "coordinator", "coordinator")
    with client.app.state.db.session() as session:  # type: ignore[attr-defined]
        row = ScheduleRow(week="2026-W48", status="failed", progress="walking times",
                          attempts=1, cancel_requested=False)
        session.add(row)
        session.commit()
    console_login(client, "coordinator")
    page = client.get("/console/schedules").text
    assert "正在按街道算步行时间" in page and "walking times" not in page


def test_people_tables_are_headed_as_the_spreadsheet_is(client: TestClient) -> None:
    coordinator = make_user(client, "coordinator", "coordinator")
    assert client.post("/v1/volunteers", json=VOLUNTEER, headers=coordinator).status_code == 201
    console_login(client, "coordinator")
    page = client.get("/console/people/volunteers").text
    assert "<th>志愿者编号</th>" in page and "<th>可服务时间</th>" in page
    assert "volunteer_id" not in page and "max_hours_week" not in page
    client.cookies.set("linli_lang", "en")
    assert "<th>max hours week</th>" in client.get("/console/people/volunteers").text
