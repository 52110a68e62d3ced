"""Who may call what: the permission table, declared once as data.

Every route of the app is a key ``(method, path template)``; its value is the set of roles let
through (``anonymous`` for routes that need no login). :func:`api.security.current_user` looks
the route up on every authenticated request and answers 403 to a role not listed, or to every
role when the route is missing from the table (a new route is closed until someone decides who
may use it); ``tests/api/test_permissions.py`` calls every route of the OpenAPI document with
every role and compares with this table.

Street and district admins read what a coordinator reads (every ``GET`` route open to
coordinators), in one community of theirs at a time, and write nothing in a community: they
create communities and accounts (:func:`_admins_read`).

The table decides by role only. Rules about *which* object (a volunteer's own tasks, a
merchant's own shop) stay in the routes, and an import checks each of its files against the
create and replace rules of that file's kind (:func:`import_roles`).
"""

from __future__ import annotations

from typing import Final

ANONYMOUS: Final = "anonymous"
COORDINATOR: Final = "coordinator"
ORGANISER: Final = "organiser"
VOLUNTEER: Final = "volunteer"
MERCHANT: Final = "merchant"
GRID_WORKER: Final = "grid_worker"

STREET_ADMIN: Final = "street_admin"
DISTRICT_ADMIN: Final = "district_admin"

# Roles of one community (their rows and routes are that community's), and the admins who
# read every community of a street office or district (api.tenancy).
COMMUNITY_ROLES: Final = frozenset({COORDINATOR, ORGANISER, VOLUNTEER, MERCHANT, GRID_WORKER})
ADMINS: Final = frozenset({STREET_ADMIN, DISTRICT_ADMIN})
ROLES: Final = COMMUNITY_ROLES | ADMINS
LOGGED_IN: Final = ROLES
EVERYONE: Final = ROLES | {ANONYMOUS}
STAFF: Final = frozenset({COORDINATOR, ORGANISER})
ONLY_COORDINATOR: Final = frozenset({COORDINATOR})

_VOLUNTEER_ONLY = frozenset({VOLUNTEER})
_MERCHANT_ONLY = frozenset({MERCHANT})


def _resource(kind: str, readers: frozenset[str], writers: frozenset[str],
              replacers: frozenset[str] | None = None) -> dict[tuple[str, str], frozenset[str]]:
    """The five routes of a kept resource (list, create, read, replace, delete)."""
    item = f"/v1/{kind}/{{ident}}"
    return {("GET", f"/v1/{kind}"): readers, ("POST", f"/v1/{kind}"): writers,
            ("GET", item): readers, ("PUT", item): replacers or writers,
            ("DELETE", item): writers}


PERMISSIONS: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("GET", "/health"): EVERYONE,
    # Accounts.
    ("POST", "/v1/auth/token"): EVERYONE,
    # The refresh token is the credential; WeChat's code is checked with WeChat.
    ("POST", "/v1/auth/refresh"): EVERYONE,
    ("POST", "/v1/auth/logout"): EVERYONE,
    ("POST", "/v1/auth/wechat"): EVERYONE,
    ("POST", "/v1/me/wechat"): LOGGED_IN,
    ("GET", "/v1/me"): LOGGED_IN,
    ("POST", "/v1/me/calendar-token"): _VOLUNTEER_ONLY,  # only volunteers have a feed
    ("POST", "/v1/users"): ONLY_COORDINATOR | ADMINS,
    # Communities (社区) of street offices and districts: each account lists those it may
    # act in; admins add them.
    ("GET", "/v1/communities"): LOGGED_IN,
    ("POST", "/v1/communities"): ADMINS,
    # An admin sets where a community's webhook events go (its own receiver).
    ("PATCH", "/v1/communities/{code}"): ADMINS,
    ("POST", "/v1/users/{user_id}/api-key"): ONLY_COORDINATOR,
    # The community. Organisers read volunteers and needs (masked, coarse) and keep the charity
    # side; every account may read merchants (their services and hours are public); a merchant
    # replaces only its own shop (checked in the route).
    **_resource("volunteers", STAFF, ONLY_COORDINATOR),
    **_resource("needs", STAFF, ONLY_COORDINATOR),
    **_resource("merchants", LOGGED_IN, ONLY_COORDINATOR, ONLY_COORDINATOR | {MERCHANT}),
    **_resource("donations", STAFF, STAFF),
    **_resource("requests", STAFF, STAFF),
    ("POST", "/v1/imports"): STAFF,  # and per file kind: import_roles
    ("GET", "/v1/imports/template"): STAFF,  # and per sheet kind: import_roles
    # Schedules.
    ("POST", "/v1/schedules"): ONLY_COORDINATOR,
    ("GET", "/v1/schedules"): ONLY_COORDINATOR,
    ("GET", "/v1/schedules/{schedule_id}"): ONLY_COORDINATOR,
    ("GET", "/v1/schedules/{schedule_id}/tasks"): ONLY_COORDINATOR,
    ("GET", "/v1/schedules/{schedule_id}/unmet"): ONLY_COORDINATOR,
    ("POST", "/v1/schedules/{schedule_id}/publish"): ONLY_COORDINATOR,
    ("POST", "/v1/schedules/{schedule_id}/cancel"): ONLY_COORDINATOR,
    ("GET", "/v1/schedules/{schedule_id}/changes"): ONLY_COORDINATOR,
    ("GET", "/v1/schedules/{schedule_id}/map"): ONLY_COORDINATOR,
    ("GET", "/v1/schedules/{schedule_id}/occurrences/{need_id}/{day}/candidates"):
        ONLY_COORDINATOR,
    ("POST", "/v1/tasks/{task_id}/confirm"): ONLY_COORDINATOR,
    ("POST", "/v1/tasks/{task_id}/cancel"): ONLY_COORDINATOR,
    ("GET", "/v1/audit"): ONLY_COORDINATOR,
    # The webhook outbox: what was sent, and dead letters to send again.
    ("GET", "/v1/outbox"): ONLY_COORDINATOR,
    ("POST", "/v1/outbox/redeliver"): ONLY_COORDINATOR,
    ("POST", "/v1/outbox/{event_id}/redeliver"): ONLY_COORDINATOR,
    # A volunteer's own tasks (the route finds only the caller's own).
    ("GET", "/v1/me/tasks"): _VOLUNTEER_ONLY,
    ("POST", "/v1/me/tasks/{task_id}/accept"): _VOLUNTEER_ONLY,
    ("POST", "/v1/me/tasks/{task_id}/check-in"): _VOLUNTEER_ONLY,
    ("POST", "/v1/me/tasks/{task_id}/complete"): _VOLUNTEER_ONLY,
    ("POST", "/v1/me/tasks/{task_id}/decline"): _VOLUNTEER_ONLY,
    # The link is the secret: whoever holds it reads the feed.
    ("GET", "/v1/calendar/{token}.ics"): EVERYONE,
    # Points and merchants.
    ("GET", "/v1/rewards"): LOGGED_IN,
    ("POST", "/v1/rewards"): _MERCHANT_ONLY,
    ("GET", "/v1/redemptions"): frozenset({COORDINATOR, VOLUNTEER, MERCHANT}),
    ("POST", "/v1/redemptions"): _VOLUNTEER_ONLY,
    ("POST", "/v1/redemptions/{redemption_id}/confirm"): _MERCHANT_ONLY,
    ("POST", "/v1/redemptions/{redemption_id}/refuse"): _MERCHANT_ONLY,
    ("GET", "/v1/me/statement"): frozenset({VOLUNTEER, MERCHANT}),
    ("GET", "/v1/merchants/{merchant_id}/settlement"): frozenset({COORDINATOR, MERCHANT}),
    ("GET", "/v1/merchant/orders"): _MERCHANT_ONLY,
    # The time bank: coordinators register members and record consent; a volunteer links,
    # gives to and files for her own consented family (checked in the service).
    ("POST", "/v1/timebank/members"): ONLY_COORDINATOR,
    ("GET", "/v1/timebank/members"): ONLY_COORDINATOR,
    ("POST", "/v1/me/family"): _VOLUNTEER_ONLY,
    ("GET", "/v1/me/family"): _VOLUNTEER_ONLY,
    ("POST", "/v1/timebank/links/{link_id}/consent"): ONLY_COORDINATOR,
    ("POST", "/v1/me/timebank/transfers"): _VOLUNTEER_ONLY,
    ("POST", "/v1/timebank/requests"): frozenset({COORDINATOR, VOLUNTEER}),
    ("GET", "/v1/me/timebank/statement"): _VOLUNTEER_ONLY,
    ("GET", "/v1/timebank/members/{member_id}/statement"): frozenset({COORDINATOR, VOLUNTEER}),
    ("GET", "/v1/timebank/report/{month}"): ONLY_COORDINATOR,
    # Coordinators read their own community's lines, admins their communities'.
    ("GET", "/v1/timebank/settlement"): ONLY_COORDINATOR | ADMINS,
    ("GET", "/v1/timebank/settlement.csv"): ONLY_COORDINATOR | ADMINS,
    # Charity allocation.
    ("POST", "/v1/allocations"): STAFF,
    ("GET", "/v1/allocations"): STAFF,
    ("GET", "/v1/allocations/{allocation_id}"): STAFF,
    ("GET", "/v1/allocations/{allocation_id}/lines"): STAFF,
    ("GET", "/v1/allocations/{allocation_id}/short"): STAFF,
    ("POST", "/v1/allocations/{allocation_id}/publish"): STAFF,
    ("POST", "/v1/allocations/{allocation_id}/cancel"): STAFF,
    # The residents' 15-minute circle (便民服务圈): public, throttled per address in the route.
    ("GET", "/v1/nearby"): EVERYONE,
    ("GET", "/v1/resources"): ONLY_COORDINATOR,
    ("PUT", "/v1/resources/{resource_id}"): ONLY_COORDINATOR,
    ("DELETE", "/v1/resources/{resource_id}"): ONLY_COORDINATOR,
    ("GET", "/v1/accessibility"): ONLY_COORDINATOR,
    # Where to recruit and whom to partner with (jobs: each suggestion checked by re-solving).
    ("POST", "/v1/suggestions"): ONLY_COORDINATOR,
    ("GET", "/v1/suggestions"): ONLY_COORDINATOR,
    ("GET", "/v1/suggestions/{suggestion_id}"): ONLY_COORDINATOR,
    ("POST", "/v1/suggestions/{suggestion_id}/cancel"): ONLY_COORDINATOR,
    # Grid units (网格): coordinators upload them; a grid worker sees only her own units (the
    # routes filter, and refuse another unit by id).
    ("PUT", "/v1/grids"): ONLY_COORDINATOR,
    ("GET", "/v1/grids"): frozenset({COORDINATOR, GRID_WORKER}),
    ("GET", "/v1/grids/report"): frozenset({COORDINATOR, GRID_WORKER}),
    ("GET", "/v1/grids/{unit_id}/needs"): frozenset({COORDINATOR, GRID_WORKER}),
    ("PATCH", "/v1/grids/{unit_id}/needs/{need_id}"): frozenset({COORDINATOR, GRID_WORKER}),
    # The district report (街道报表): an admin reads every community below her, a coordinator
    # her own (api.district_report).
    ("GET", "/v1/district/report"): ONLY_COORDINATOR | ADMINS,
    ("GET", "/v1/district/report.csv"): ONLY_COORDINATOR | ADMINS,
    ("GET", "/v1/district/map"): ONLY_COORDINATOR | ADMINS,
    ("GET", "/v1/district/map.html"): ONLY_COORDINATOR | ADMINS,
    # A street office's or district's week solved as one job (api.district_runs): only the
    # admins, over their whole scope; each community's coordinator publishes her own schedule.
    ("POST", "/v1/district/schedules"): ADMINS,
    ("GET", "/v1/district/schedules"): ADMINS,
    ("GET", "/v1/district/schedules/{run_id}"): ADMINS,
    ("POST", "/v1/district/schedules/{run_id}/cancel"): ADMINS,
    # The public monthly report (信息公开).
    ("GET", "/v1/reports/allocations/{month}.csv"): EVERYONE,
    ("GET", "/v1/reports/allocations/{month}"): EVERYONE,
}



def _admins_read(table: dict[tuple[str, str], frozenset[str]]) -> None:
    """Admins may GET every route a coordinator may (not the import template: they import
    nothing)."""
    for (method, path), roles in table.items():
        if method == "GET" and COORDINATOR in roles and not path.startswith("/v1/imports"):
            table[(method, path)] = roles | ADMINS


_admins_read(PERMISSIONS)

_C = "/console"
# The web console (api/console/views.py): its pages call the routes above as the person, so
# those rules apply again to everything a page shows or does; these say who may open a page.
CONSOLE: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("GET", "/"): EVERYONE,
    ("GET", f"{_C}/login"): EVERYONE,
    ("POST", f"{_C}/login"): EVERYONE,
    ("GET", f"{_C}/lang/{{lang}}"): EVERYONE,
    ("GET", f"{_C}/report"): EVERYONE,
    ("GET", f"{_C}/"): LOGGED_IN,
    ("POST", f"{_C}/logout"): LOGGED_IN,
    ("GET", f"{_C}/overview"): ONLY_COORDINATOR,
    ("GET", f"{_C}/communities"): ADMINS,
    ("GET", f"{_C}/district"): ONLY_COORDINATOR | ADMINS,
    ("GET", f"{_C}/district.csv"): ONLY_COORDINATOR | ADMINS,
    ("POST", f"{_C}/district/schedules"): ADMINS,
    ("GET", f"{_C}/district/schedules/{{run_id}}/progress"): ADMINS,
    ("POST", f"{_C}/district/schedules/{{run_id}}/cancel"): ADMINS,
    ("GET", f"{_C}/import"): STAFF,
    ("POST", f"{_C}/import"): STAFF,
    ("GET", f"{_C}/import/template.xlsx"): STAFF,
    ("GET", f"{_C}/schedules"): ONLY_COORDINATOR,
    ("POST", f"{_C}/schedules"): ONLY_COORDINATOR,
    ("GET", f"{_C}/schedules/{{schedule_id}}"): ONLY_COORDINATOR,
    ("GET", f"{_C}/schedules/{{schedule_id}}/progress"): ONLY_COORDINATOR,
    ("POST", f"{_C}/schedules/{{schedule_id}}/publish"): ONLY_COORDINATOR,
    ("POST", f"{_C}/schedules/{{schedule_id}}/cancel"): ONLY_COORDINATOR,
    ("GET", f"{_C}/schedules/{{schedule_id}}/candidates/{{need_id}}/{{day}}"):
        ONLY_COORDINATOR,
    ("GET", f"{_C}/people/{{kind}}"): STAFF,
    ("GET", f"{_C}/points"): ONLY_COORDINATOR,
    ("POST", f"{_C}/tasks/{{task_id}}/confirm"): ONLY_COORDINATOR,
    ("GET", f"{_C}/audit"): ONLY_COORDINATOR,
    ("GET", f"{_C}/charity"): STAFF,
    ("POST", f"{_C}/allocations"): STAFF,
    ("GET", f"{_C}/allocations/{{allocation_id}}"): STAFF,
    ("GET", f"{_C}/allocations/{{allocation_id}}/progress"): STAFF,
    ("POST", f"{_C}/allocations/{{allocation_id}}/publish"): STAFF,
    ("POST", f"{_C}/allocations/{{allocation_id}}/cancel"): STAFF,
    ("GET", f"{_C}/shop"): _MERCHANT_ONLY,
    ("POST", f"{_C}/redemptions/{{redemption_id}}/{{decision}}"): _MERCHANT_ONLY,
    ("GET", f"{_C}/me"): _VOLUNTEER_ONLY,
    ("POST", f"{_C}/me/tasks/{{task_id}}/{{action}}"): _VOLUNTEER_ONLY,
    # The residents' pages (api/console/residents_views.py).
    ("GET", f"{_C}/nearby"): EVERYONE,
    ("GET", f"{_C}/circle"): ONLY_COORDINATOR,
    ("POST", f"{_C}/circle/suggestions"): ONLY_COORDINATOR,
    ("GET", f"{_C}/grids"): frozenset({COORDINATOR, GRID_WORKER}),
    ("POST", f"{_C}/grids/{{unit_id}}/needs/{{need_id}}"): frozenset({COORDINATOR, GRID_WORKER}),
}


def allowed(method: str, path: str) -> frozenset[str]:
    """The roles let through ``method`` on the route ``path`` (its template), API or console;
    none when the route is not in the table. HEAD is answered as GET."""
    key = ("GET" if method == "HEAD" else method, path)
    return PERMISSIONS.get(key) or CONSOLE.get(key, frozenset())


def import_roles(kind: str) -> frozenset[str]:
    """Who may import rows of ``kind``: an import creates and replaces, so both rules apply,
    each as the table says for that kind's own routes (by role: a merchant replacing its own
    shop is an object rule, which an import cannot check row by row)."""
    return (allowed("POST", f"/v1/{kind}") & allowed("PUT", f"/v1/{kind}/{{ident}}")
            & allowed("POST", "/v1/imports"))
