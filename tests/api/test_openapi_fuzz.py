"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document (schemathesis),
as each role and anonymously: no request may get a 5xx, and every response must be one the
document describes (status code, content type, headers and body schema), and every problem
answered without Accept-Language reads in Chinese, its detail as well as its title.

The street-office and district admins are fuzzed too, each example naming (in the
``X-Linli-Community`` header) no community, one of her scope, one outside it or garbage: the
header decides which rows every route reads, so it is part of what is generated."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok
from sqlalchemy import create_engine, make_url, select, text

from api.community import save_tables
from api.db import Database
from api.main import create_app
from api.migrate import upgrade
from api.models import (
    Community,
    CommunityVersion,
    District,
    MerchantRow,
    StreetOffice,
    User,
    VolunteerRow,
)
from api.security import create_token
from api.settings import ApiSettings
from matcher.spreadsheets import COLUMNS, read_tables
from tests.api.conftest import BACKENDS, PG_URL

# Examples per operation, role and generation mode: the whole fuzz takes a few minutes on two
# cores. Raise it locally (LINLI_FUZZ_EXAMPLES=200) for a longer hunt.
EXAMPLES = int(os.environ.get("LINLI_FUZZ_EXAMPLES", "12"))
# The admins' examples spread over the header's cases, most of which end at the door (a code
# outside her scope, garbage): half as many keep the suite's time in budget.
ADMIN_EXAMPLES = max(1, EXAMPLES // 2)
CJK = re.compile(r"[\u4e00-\u9fff]")


@schemathesis.check
def problem_detail_in_chinese(ctx: Any, response: Any, case: Any) -> bool | None:
    """A problem answered to a request naming no language has a Chinese detail (Chinese is the
    product's default), not an English sentence under a Chinese title."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    content_type = headers.get("content-type", "")
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    asked = {k.lower() for k in (case.headers or {})}
    if "problem+json" not in content_type or "accept-language" in asked:
        return None
    detail = response.json().get("detail", "")
    if not CJK.search(detail):
        raise AssertionError(f"{response.status_code} detail not in Chinese: {detail!r}")
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, problem_detail_in_chinese]
ROLES = ["anonymous", "coordinator", "organiser", "volunteer", "merchant"]
ADMINS = ["street_admin", "district_admin"]
# The header an admin's example sends: her (street office's) community (most often, so that
# the routes themselves are fuzzed), none, one of another street office of her district (the
# district admin's, not the street admin's), one of another district, an unknown code, and
# garbage.
COMMUNITY_HEADERS = st.one_of(
    st.sampled_from(["default", None, "neighbour", "default", "faraway", "default", "nowhere"]),
    # Printable ASCII, no blank at either end: what an HTTP client can send at all.
    st.from_regex(r"\A[!-~]([ -~]{0,48}[!-~])?\Z"))


def _fuzz_postgres() -> str:
    """A database of its own (other tests empty theirs at any time), fresh for this module."""
    if not PG_URL:
        if os.environ.get("LINLI_REQUIRE_POSTGRES"):
            pytest.fail("LINLI_REQUIRE_POSTGRES is set but LINLI_TEST_DATABASE_URL is not")
        pytest.skip("no PostgreSQL (set LINLI_TEST_DATABASE_URL; .ci/run starts one)")
    base = make_url(PG_URL)
    url = base.set(database=f"{base.database}_fuzz_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             community_files: Path) -> Iterator[tuple[FastAPI, dict[str, dict[str, str]]]]:
    """The app on a database holding a small community and one account per role."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'linli.db'}" \
        if request.param == "sqlite" else _fuzz_postgres()
    settings = ApiSettings(database_url=url,
                           secret_key="test-secret-key-0123456789abcdef", run_workers=False,
                           webhook_url=None)
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    tables, _ = read_tables(community_files, tuple(COLUMNS))
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    with db.session() as session:
        save_tables(session, tables)
        session.flush()
        volunteer_id = session.scalars(select(VolunteerRow.volunteer_id)).first()
        merchant_id = session.scalars(select(MerchantRow.merchant_id)).first()
        links = {"volunteer": {"volunteer_id": volunteer_id},
                 "merchant": {"merchant_id": merchant_id}}
        home, admins = _other_communities(session)
        for role in ROLES[1:] + ADMINS:
            scope = admins[role] if role in ADMINS else {"community_id": home}
            user = User(username=f"fuzz-{role}", password_hash="not-a-hash", role=role,
                        calendar_token=f"cal-{role}", **links.get(role, {}), **scope)
            session.add(user)
            session.flush()
            headers[role] = {"Authorization": f"Bearer {create_token(user, settings)}"}
        session.commit()
    db.dispose()
    yield create_app(settings), headers


def _other_communities(session: Any) -> tuple[int, dict[str, dict[str, Any]]]:
    """A second street office of the default district and another district, each with a
    community; the default community's id and the admins' scopes (the default street office,
    the default district)."""
    home = session.scalars(select(Community).where(Community.code == "default")).one()
    office = session.get(StreetOffice, home.street_office_id)
    elsewhere = District(code="elsewhere", name="外区")
    session.add(elsewhere)
    session.flush()
    for code, district_id in (("neighbour", office.district_id), ("faraway", elsewhere.id)):
        street = StreetOffice(code=f"{code}-office", name=f"{code}街道",
                              district_id=district_id)
        session.add(street)
        session.flush()
        community = Community(code=code, name=f"{code}社区", street_office_id=street.id)
        session.add(community)
        session.flush()
        session.add(CommunityVersion(community_id=community.id, version=0))
    return home.id, {"street_admin": {"street_office_id": office.id},
                     "district_admin": {"district_id": office.district_id}}


def _operations(app: FastAPI) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document describes it validly
        operations.append(result.ok())
    return operations


@pytest.mark.parametrize("role", ROLES + ADMINS)
def test_no_request_breaks_the_service_or_its_document(
        fuzz_app: tuple[FastAPI, dict[str, dict[str, str]]], role: str) -> None:
    app, headers = fuzz_app
    communities = COMMUNITY_HEADERS if role in ADMINS else st.none()
    examples = ADMIN_EXAMPLES if role in ADMINS else EXAMPLES
    failures: list[str] = []
    for operation in _operations(app):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, headers[role], communities, examples)()
            except Unsatisfiable:  # nothing in the operation can be made invalid
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's failures
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


def _fuzz(operation: Any, mode: GenerationMode, auth: dict[str, str],
          communities: st.SearchStrategy[str | None], examples: int) -> Callable[[], None]:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=operation.as_strategy(generation_mode=mode), community=communities)
    def run(case: schemathesis.Case[Any], community: str | None) -> None:
        if auth and case.headers:  # a generated API key would be tried before the token
            case.headers.pop("X-API-Key", None)
        headers = auth if community is None else auth | {"X-Linli-Community": community}
        case.call_and_validate(headers=headers, checks=CHECKS)

    return run
