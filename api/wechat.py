"""Where a WeChat mini program's login plugs in (off unless a provider is given).

A mini program calls ``wx.login()``, gets a one-time ``code`` and posts it to
``POST /v1/auth/wechat``. Only the server may trade the code for the user's ``openid``: WeChat's
``code2session`` (``GET https://api.weixin.qq.com/sns/jscode2session?appid=...&secret=...
&js_code=...&grant_type=authorization_code``) needs the mini program's AppSecret. That call is
a :class:`Code2Session` given to the app (``create_app(settings, wechat=provider)``); without
one, the WeChat routes answer 501 ``wechat_login_not_configured`` and nothing else changes.

An openid reaches an account only after its owner linked it, logged in with her password
(``POST /v1/me/wechat``): WeChat says who the person is, the community says what she may do.
The session key WeChat also returns is never stored or sent on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
