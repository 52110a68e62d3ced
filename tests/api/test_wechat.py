"""WeChat mini-program login: off by default (501), and with a code2session provider given to
the app (a fake one here), a linked account logs in with a wx.login() code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from api.wechat import WeChatIdentity, WeChatLoginError
from tests.api.conftest import make_user


class FakeWeChat:
    """code2session as WeChat answers it: each code once, for the openid it was made for."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    def code_for(self, openid: str) -> str:
        code = f"code-{len(self.codes)}"
        self.codes[code] = openid
        return code

    async def __call__(self, code: str) -> WeChatIdentity:
        if code not in self.codes:
            raise WeChatLoginError("errcode 40029: invalid code")
        return WeChatIdentity(openid=self.codes.pop(code))


@pytest.fixture
def wechat() -> FakeWeChat:
    return FakeWeChat()


@pytest.fixture
def client(settings: ApiSettings, wechat: FakeWeChat) -> Iterator[TestClient]:
    with TestClient(create_app(settings, wechat=wechat)) as test_client:
        yield test_client


def test_wechat_login_is_off_unless_a_provider_is_given(settings: ApiSettings) -> None:
    with TestClient(create_app(settings)) as client:
        headers = make_user(client, "wangfang", "volunteer")
        for path, extra in (("/v1/auth/wechat", {}), ("/v1/me/wechat", headers)):
            response = client.post(path, json={"code": "anything"}, headers=extra)
            assert response.status_code == 501
            body = response.json()
            assert body["code"] == "wechat_login_not_configured"
            assert body["detail"] == "这里还没有开通微信登录，请用用户名和密码登录"


def test_a_linked_account_logs_in_with_a_code(client: TestClient, wechat: FakeWeChat) -> None:
    headers = make_user(client, "wangfang", "volunteer")
    before = client.post("/v1/auth/wechat", json={"code": wechat.code_for("o-wang")})
    assert before.status_code == 403 and before.json()["code"] == "wechat_not_linked"
    linked = client.post("/v1/me/wechat", json={"code": wechat.code_for("o-wang")},
                         headers=headers)
    assert linked.status_code == 204
    login = client.post("/v1/auth/wechat", json={"code": wechat.code_for("o-wang")})
    assert login.status_code == 200, login.text
    pair = login.json()
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.json()["username"] == "wangfang"
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200


def test_a_used_or_foreign_code_is_refused(client: TestClient, wechat: FakeWeChat) -> None:
    headers = make_user(client, "wangfang", "volunteer")
    code = wechat.code_for("o-wang")
    assert client.post("/v1/me/wechat", json={"code": code}, headers=headers).status_code == 204
    again = client.post("/v1/auth/wechat", json={"code": code})
    assert again.status_code == 401 and again.json()["code"] == "wechat_code_invalid"
    assert client.post("/v1/auth/wechat", json={"code": ""}).status_code == 422


def test_one_wechat_user_links_one_account(client: TestClient, wechat: FakeWeChat) -> None:
    first = make_user(client, "wangfang", "volunteer")
    second = make_user(client, "lilei", "coordinator")
    assert client.post("/v1/me/wechat", json={"code": wechat.code_for("o-wang")},
                       headers=first).status_code == 204
    taken = client.post("/v1/me/wechat", json={"code": wechat.code_for("o-wang")},
                        headers=second)
    assert taken.status_code == 409 and taken.json()["code"] == "wechat_linked_elsewhere"
