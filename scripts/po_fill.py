"""Fill Russian translations from a JSON file, or list what is missing.

    .venv/bin/python scripts/po_fill.py              # print untranslated/fuzzy msgids as JSON
    .venv/bin/python scripts/po_fill.py ru.json      # fill them: {"msgid": "перевод", ...};
                                                     # plurals: {"msgid": ["одна", "две", "пять"]}
Then run scripts/i18n to compile.
"""

import json
import sys
from pathlib import Path

import polib

PO = Path(__file__).resolve().parents[1] / "locale" / "ru" / "LC_MESSAGES" / "django.po"


def missing(po):
    return [e for e in po if not e.obsolete and (not e.translated() or "fuzzy" in e.flags)]


def main():
    po = polib.pofile(str(PO), wrapwidth=100)
    if sys.argv[1:] == ["--check"]:
        left = missing(po)
        for entry in left:
            print(f"untranslated: {entry.msgid!r}", file=sys.stderr)
        sys.exit(1 if left else 0)
    if len(sys.argv) == 1:
        print(json.dumps({e.msgid: (["", "", ""] if e.msgid_plural else "") for e in missing(po)}, ensure_ascii=False, indent=1))
        return
    given = json.loads(Path(sys.argv[1]).read_text())
    for entry in missing(po):
        if entry.msgid not in given:
            continue
        value = given[entry.msgid]
        if entry.msgid_plural:
            entry.msgstr_plural = {i: v for i, v in enumerate(value)}
        else:
            entry.msgstr = value
        if "fuzzy" in entry.flags:
            entry.flags.remove("fuzzy")
        entry.previous_msgid = entry.previous_msgid_plural = entry.previous_msgctxt = None
    po.save()
    left = missing(po)
    print(f"{len(left)} left" + (": " + ", ".join(e.msgid[:40] for e in left) if left else ""))


if __name__ == "__main__":
    main()
