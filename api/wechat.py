"""Where a WeChat mini program's login plugs in (off unless a provider is given).

A mini program calls ``wx.login()``, gets a one-time ``code`` and posts it to
``POST /v1/auth/wechat``. Only the server may trade the code for the user's ``openid``: WeChat's
``code2session`` (``GET https://api.weixin.qq.com/sns/jscode2session?appid=...&secret=...
&js_code=...&grant_type=authorization_code``) needs the mini program's AppSecret. That call is
a :class:`Code2Session` given to the app (``create_app(settings, wechat=provider)``), or
:class:`JsCode2Session` when ``LINLI_WECHAT_APPID`` and ``LINLI_WECHAT_SECRET`` are set; without
one, the WeChat routes answer 404 ``wechat_login_not_configured`` and nothing else changes.

An openid reaches an account only after its owner linked it, logged in with her password
(``POST /v1/me/wechat``): WeChat says who the person is, the community says what she may do.
The session key WeChat also returns is never stored or sent on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True, slots=True)
class WeChatIdentity:
    """Who WeChat says the person is, for this mini program."""

    openid: str
    unionid: str | None = None


class WeChatLoginError(Exception):
    """WeChat refused the code (used, expired, or from another mini program: errcode 40029,
    40163 ...) or could not be asked; ``reason`` says which, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Code2Session(Protocol):
    """Trades a ``wx.login()`` code for the person's identity.

    An implementation calls ``jscode2session`` with the mini program's AppID and AppSecret (kept
    in the server's environment, never in the mini program), with a short timeout, and raises
    :class:`WeChatLoginError` on any ``errcode`` or failure to reach WeChat.
    """

    async def __call__(self, code: str) -> WeChatIdentity: ...


JSCODE2SESSION = "https://api.weixin.qq.com/sns/jscode2session"


class JsCode2Session:
    """:class:`Code2Session` over WeChat's HTTPS API, for a mini program's AppID and AppSecret
    (``LINLI_WECHAT_APPID`` and ``LINLI_WECHAT_SECRET`` turn it on)."""

    def __init__(self, appid: str, secret: str, *, url: str = JSCODE2SESSION,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout_s: float = 5.0) -> None:
        self.appid, self.secret, self.url = appid, secret, url
        self.transport, self.timeout_s = transport, timeout_s

    async def __call__(self, code: str) -> WeChatIdentity:
        params = {"appid": self.appid, "secret": self.secret, "js_code": code,
                  "grant_type": "authorization_code"}
        try:
            async with httpx.AsyncClient(transport=self.transport,
                                         timeout=self.timeout_s) as client:
                response = await client.get(self.url, params=params)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WeChatLoginError(f"WeChat could not be asked: {type(exc).__name__}") from exc
        # WeChat answers HTTP 200 with an errcode when it refuses the code.
        openid = answer.get("openid") if isinstance(answer, dict) else None
        if not isinstance(openid, str) or not openid or answer.get("errcode"):
            errcode = answer.get("errcode") if isinstance(answer, dict) else None
            raise WeChatLoginError(f"WeChat refused the code (errcode {errcode})")
        unionid = answer.get("unionid")
        return WeChatIdentity(openid=openid,
                              unionid=unionid if isinstance(unionid, str) else None)
