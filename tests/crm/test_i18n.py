"""Both catalogues are complete and compiled: every string a user sees exists in Russian and English."""

import gettext
import re
from pathlib import Path

import pytest

LOCALE = Path(__file__).resolve().parents[2] / "locale"
ENTRY = re.compile(r'^(?:msgctxt "(?P<ctx>.*)"\n)?msgid "(?P<id>.*)"\n(?:msgid_plural .*\n)?msgstr(?:\[0\])? "(?P<str>.*)"$', re.M)


def entries(language):
    text = (LOCALE / language / "LC_MESSAGES" / "django.po").read_text()
    found = []
    for block in text.split("\n\n"):
        if "#, fuzzy" in block and 'msgid ""\nmsgstr ""\n"Project' not in block:
            found.append(("FUZZY", block))
        body = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
        body = body.replace('"\n"', "")  # join continued strings
        match = ENTRY.search(body)
        if match and match["id"]:
            found.append((match["ctx"], match["id"], match["str"]))
    return found


@pytest.mark.parametrize("language", ["ru", "en"])
def test_catalogue_complete(language):
    rows = entries(language)
    assert len(rows) > 200
    assert not [r for r in rows if r[0] == "FUZZY"], "fuzzy entries left"
    assert not [r[1] for r in rows if not r[2]], "untranslated entries"


def test_catalogues_list_the_same_strings():
    assert {r[:2] for r in entries("ru")} == {r[:2] for r in entries("en")}


def test_compiled_catalogue_matches_source():
    translation = gettext.translation("django", localedir=LOCALE, languages=["ru"])
    for ctx, msgid, msgstr in entries("ru"):
        if "%" in msgid or "\\" in msgid:
            continue
        got = translation.pgettext(ctx, msgid) if ctx else translation.gettext(msgid)
        assert got == msgstr, f"stale .mo for {msgid!r}: run scripts/i18n"
