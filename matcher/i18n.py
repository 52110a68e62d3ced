"""Translations: every word a person reads is Simplified Chinese first, English second.

Messages are written in the code in English, marked with :func:`_` (``_("{n} needs left
unmet").format(n=3)``: format after translating, so the catalog sees one message), and
translated through the gettext catalogs in ``matcher/locale/<lang>/LC_MESSAGES/*.po``: one
file per part of the product (``linli.po`` for what is shared, ``console.po`` for the web
console, ...), read from their text and compiled in memory into one catalog once per process
(no compiled files to keep in step). The language is a context variable: a request, a job or a
command sets it once (:func:`use`), and everything below it translates without passing it
along. Codes that programs read (reason codes, error types, states) are never translated.

``pybabel extract -F babel.cfg -o /tmp/linli.pot .`` lists the marked messages;
``tests/matcher/test_i18n.py`` checks that each has a Chinese translation.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "linli"
LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "zh_CN"
SUPPORTED = ("zh_CN", "en")

_current: ContextVar[str] = ContextVar("linli_language", default=DEFAULT)


@cache
def translation(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang`` (one of :data:`SUPPORTED`): every ``.po`` file of the language
    in one; English is the messages as written, corrected where its catalogs say so."""
    files = sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po"))
    if not files:
        return gettext.NullTranslations()
    with files[0].open("rb") as source:
        catalog = read_po(source, locale=lang)
    for path in files[1:]:
        with path.open("rb") as source:
            for message in read_po(source, locale=lang):
                if message.id:
                    catalog[message.id] = message
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def normalise(lang: str | None) -> str:
    """A supported language for a tag like ``zh-CN``, ``zh_Hans_CN``, ``zh``, ``en-US`` or
    ``C.UTF-8``; Chinese when nothing matches."""
    if not lang:
        return DEFAULT
    tag = lang.split(".")[0].split("@")[0].replace("-", "_").lower()
    if tag.startswith("zh"):
        return "zh_CN"
    if tag.startswith("en"):
        return "en"
    return DEFAULT


def negotiate(accept_language: str | None) -> str:
    """The best supported language for an HTTP ``Accept-Language`` header (RFC 9110 weights);
    Chinese when the header is missing or names nothing we have."""
    best, best_q = DEFAULT, -1.0
    for k, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        tag = tag.strip()
        if not tag or tag == "*" or q <= 0:
            continue
        lowered = tag.replace("-", "_").lower()
        if not (lowered.startswith("zh") or lowered.startswith("en")):
            continue
        if q > best_q or (q == best_q and k == 0):
            best, best_q = normalise(tag), q
    return best


def current() -> str:
    """The language of what is being done now."""
    return _current.get()


@contextmanager
def use(lang: str | None) -> Iterator[str]:
    """Translate into ``lang`` (normalised) inside the block."""
    token = _current.set(normalise(lang))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """``message`` in the current language."""
    return translation(current()).gettext(message)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark ``message`` for the catalog without translating it now: it is kept in English (an
    import error the API returns as written) and translated where it is shown
    (:meth:`matcher.errors.DataIssue.localised`)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for ``n``, in the current language."""
    return translation(current()).ngettext(singular, plural, n)
