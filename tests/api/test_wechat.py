"""WeChat mini-program login: off by default (404 wechat_login_not_configured), and with a
code2session provider given to the app (a fake one here), a linked account logs in with a
wx.login() code; the HTTPS code2session reads WeChat's answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from api.wechat import JsCode2Session, WeChatIdentity, WeChatLoginError
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
            assert response.status_code == 404
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


def _wechat_answering(answer: object, status: int = 200) -> JsCode2Session:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["grant_type"] == "authorization_code"
        assert request.url.params["appid"] == "wx123" and request.url.params["secret"] == "s3"
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(status, json=answer)

    return JsCode2Session("wx123", "s3", transport=httpx.MockTransport(handler))


def test_code2session_over_https_reads_wechats_answer() -> None:
    identity = asyncio.run(_wechat_answering({"openid": "o-1", "session_key": "k",
                                              "unionid": "u-1"})("c"))
    assert identity == WeChatIdentity(openid="o-1", unionid="u-1")
    for refused in (_wechat_answering({"errcode": 40029, "errmsg": "invalid code"}),
                    _wechat_answering(["odd"]), _wechat_answering({"openid": ""}),
                    _wechat_answering(httpx.ConnectTimeout("slow"))):
        with pytest.raises(WeChatLoginError):
            asyncio.run(refused("c"))


def test_the_appid_and_secret_turn_wechat_login_on(settings: ApiSettings) -> None:
    app = create_app(settings.model_copy(update={"wechat_appid": "wx1",
                                                 "wechat_secret": "s"}))
    assert isinstance(app.state.wechat, JsCode2Session)
    assert create_app(settings).state.wechat is None
