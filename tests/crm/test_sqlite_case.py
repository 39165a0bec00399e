"""The embedded SQLite database changes and compares case as PostgreSQL does, Cyrillic included."""

import sqlite3
from types import SimpleNamespace

from crm import sqlite


def test_lower_upper_and_like_know_cyrillic():
    raw = sqlite3.connect(":memory:")
    assert raw.execute("SELECT lower('НОВЫЙ Ёж'), 'Петров' LIKE '%петр%'").fetchone() == ("НОВЫЙ Ёж", 0)  # SQLite's own
    sqlite.install(None, SimpleNamespace(vendor="sqlite", connection=raw))
    assert raw.execute("SELECT lower('НОВЫЙ Ёж'), upper('новый ёж'), lower(NULL), 'Петров' LIKE '%петр%'").fetchone() == (
        "новый ёж", "НОВЫЙ ЁЖ", None, 1)
    raw.execute("CREATE TABLE tag (name TEXT)")
    raw.execute("INSERT INTO tag VALUES ('Новый'), ('VIP')")
    assert raw.execute("SELECT name FROM tag WHERE lower(name) IN ('новый', 'vip') ORDER BY name").fetchall() == [("VIP",), ("Новый",)]
