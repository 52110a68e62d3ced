"""Translations: the catalogs load, languages are negotiated, and every message the code marks
for a person has its Simplified Chinese translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from matcher import i18n
from matcher.i18n import _

ROOT = Path(__file__).resolve().parents[2]


def test_chinese_is_the_default_and_english_is_as_written() -> None:
    assert i18n.current() == "zh_CN"
    assert _("Not found") == "找不到"
    with i18n.use("en-US"):
        assert i18n.current() == "en"
        assert _("Not found") == "Not found"
    assert _("Not found") == "找不到"


@pytest.mark.parametrize(("header", "lang"), [
    (None, "zh_CN"), ("", "zh_CN"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
    ("en-US,en;q=0.9", "en"), ("en;q=0.5, zh-Hans;q=0.9", "zh_CN"), ("fr-FR, en;q=0.3", "en"),
    ("fr-FR", "zh_CN"), ("*", "zh_CN"), ("en;q=abc", "zh_CN"), ("en;q=0", "zh_CN"),
    ("zh-TW", "zh_CN"), (",,;;", "zh_CN"),
])
def test_accept_language_is_negotiated(header: str | None, lang: str) -> None:
    assert i18n.negotiate(header) == lang


@pytest.mark.parametrize(("tag", "lang"), [
    ("zh_CN.UTF-8", "zh_CN"), ("C.UTF-8", "zh_CN"), ("en_GB.UTF-8", "en"), ("POSIX", "zh_CN"),
    (None, "zh_CN"), ("en", "en")])
def test_locale_names_are_normalised(tag: str | None, lang: str) -> None:
    assert i18n.normalise(tag) == lang


def _marked_messages() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map=[("matcher/**.py", "python"), ("api/**.py", "python"),
                                   ("api/**/templates/**.html", "jinja2")],
            keywords={"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}):
        found.update([message] if isinstance(message, str) else message)
    return found


def test_the_console_templates_are_searched_too() -> None:
    assert "Linli workbench" in _marked_messages()


def test_every_marked_message_has_a_chinese_translation() -> None:
    catalog = i18n.translation("zh_CN")
    missing = sorted(m for m in _marked_messages() if catalog.gettext(m) == m)
    assert missing == [], f"add these to a catalog in matcher/locale/zh_CN/LC_MESSAGES/: {missing}"
