"""Duplicate suggestions over 1,000,000 clients (issue 18 point 7; DESIGN §12: ≤ 60 s).

    .venv/bin/python bench/duplicates.py [--clients 1000000] [--force] [--runs 1]

Its own database, the bench database's name with `_dups` (`voronka_bench_dups`; in CI
`voronka_bench_ci_dups`; BENCH_DUPS_DATABASE_URL overrides), never the other benches' one,
created and migrated if missing. The clients are built set-based (one INSERT … SELECT over
generate_series, the clients table's indexes dropped during the load and created again after it, in
the same transaction) unless the table already holds exactly `--clients` (then reused; `--force`
rebuilds): names of two or three words (a surname, a first name, half with a patronymic; a surname
of three syllables and an ending: 189,000 of them), a city for 85 % (60 cities, the first ones far
more common), a company for 25 %, a phone each (unique), an e-mail for 60 %. Then 1 % more clients are planted as duplicates of
random others, a third of each kind, marked by their external id `dup-<kind>-<original id>`:

- phone: the original's phone, as the main phone (half) or as an extra phone (half), another name;
- email: the original's e-mail in capitals, another name and phone;
- name: the original's words in another order (half) or with the last letter of the first word
  changed (half), the same city, another phone and no e-mail.

Timed (`duplicates_scan_1m_s`; for another size `duplicates_scan_s`): `clients.duplicates.rebuild()`
as `manage.py find_duplicates` runs it, from an empty suggestion table (ANALYZE first, untimed), the
best of `--runs`. Then recall (`duplicates_recall`): the share of planted pairs found (either order);
`duplicates_found` all pairs, by kind. The incremental lookup is timed too: as an import chunk
asks it, for 1,000 clients at once, names by their words (`duplicates_import_chunk_1k_ms`), and as a
save asks it, for one client, names by trigram similarity (`duplicates_incremental_one_ms`, p50 of 20). The last line is one JSON object (bench/common.py emit).
"""

import argparse
import os
import statistics
import time

# A database of its own: the bench database's name with "_dups" (voronka_bench_dups; in CI
# voronka_bench_ci_dups), never the one the other benches fill. BENCH_DUPS_DATABASE_URL overrides.
_shared = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voronka_bench")
os.environ["BENCH_DATABASE_URL"] = os.environ.get("BENCH_DUPS_DATABASE_URL", _shared + "_dups")

from common import emit, ensure_database, fail, setup_django  # noqa: E402 (reads BENCH_DATABASE_URL)
from robot_runs import insert_select  # noqa: E402

BUDGET_S = 60.0  # DESIGN §12
SYLLABLES = ["ба", "во", "ге", "да", "ке", "ли", "ма", "но", "па", "ро", "са", "ту", "фе", "ха", "це", "ша",
             "бу", "ви", "гу", "де", "зо", "ку", "ла", "ме", "ни", "по", "ру", "си", "та", "ше"]
ENDINGS = ["ов", "ев", "ин", "ский", "енко", "ян", "ук"]
FIRST = ["Иван", "Пётр", "Анна", "Мария", "Ольга", "Сергей", "Алексей", "Елена", "Дмитрий", "Наталья", "Андрей",
         "Татьяна", "Михаил", "Ирина", "Николай", "Светлана", "Павел", "Юлия", "Артём", "Ксения", "Егор", "Дарья",
         "Максим", "Полина", "Роман", "Вера", "Олег", "Нина", "Кирилл", "Алина"]
PATRONYMICS = ["Иванович", "Петрович", "Сергеевич", "Алексеевич", "Дмитриевич", "Андреевич", "Михайлович",
               "Ивановна", "Петровна", "Сергеевна", "Алексеевна", "Дмитриевна", "Андреевна", "Михайловна"]
CITIES = ["Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Нижний Новгород", "Челябинск",
          "Самара", "Омск", "Ростов-на-Дону", "Уфа", "Красноярск", "Воронеж", "Пермь", "Волгоград", "Краснодар",
          "Саратов", "Тюмень", "Тольятти", "Ижевск", "Барнаул", "Ульяновск", "Иркутск", "Хабаровск", "Ярославль",
          "Владивосток", "Махачкала", "Томск", "Оренбург", "Кемерово", "Новокузнецк", "Рязань", "Астрахань",
          "Набережные Челны", "Пенза", "Киров", "Липецк", "Чебоксары", "Калининград", "Тула", "Курск", "Ставрополь",
          "Сочи", "Улан-Удэ", "Тверь", "Магнитогорск", "Иваново", "Брянск", "Белгород", "Сургут", "Владимир",
          "Архангельск", "Чита", "Калуга", "Смоленск", "Волжский", "Курган", "Орёл", "Череповец", "Вологда"]


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def r(seed: int, expr: str = "g") -> str:
    """A pseudo-random fraction in [0, 1) of the row (deterministic: hash of the row number and a seed)."""
    return f"((hashint8(({expr})::bigint * 1000 + {seed}) & 2147483647)::float8 / 2147483648.0)"


def pick(array: str, seed: int, expr: str = "g", skew: float = 1.0) -> str:
    """An element of an SQL array chosen by the row's hash (skew > 1: the first ones more often)."""
    return f"({array})[1 + floor(power({r(seed, expr)}, {skew}) * array_length({array}, 1))::int]"


def execute(sql: str, params: list | tuple | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def scalar(sql: str, params: list | tuple | None = None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def name_expr(seed: int, expr: str = "g") -> str:
    syllables, endings = _array(SYLLABLES), _array(ENDINGS)
    first, patronymics = _array(FIRST), _array(PATRONYMICS)
    surname = (f"initcap({pick(syllables, seed, expr)} || {pick(syllables, seed + 1, expr)} || "
               f"{pick(syllables, seed + 6, expr)} || {pick(endings, seed + 2, expr)})")
    return (f"left({surname} || ' ' || {pick(first, seed + 3, expr, 1.5)} || "
            f"CASE WHEN {r(seed + 4, expr)} < 0.5 THEN ' ' || {pick(patronymics, seed + 5, expr)} ELSE '' END, 30)")


def phone_expr(n: str) -> str:
    """A unique Russian mobile for each n < 10⁹ (48271 is prime to 10⁹: n ↦ 48271·n mod 10⁹ is one-to-one)."""
    return f"'+79' || lpad(mod(({n})::bigint * 48271, 1000000000)::text, 9, '0')"


def build(clients: int) -> None:
    """`clients` clients, 1 % of them planted duplicates, in one transaction with the indexes dropped
    during the load and made again after it."""
    from django.db import transaction

    from clients.models import Client

    base = clients - clients // 100
    planted = clients - base
    started = time.perf_counter()
    with transaction.atomic():
        execute("SET LOCAL maintenance_work_mem = '512MB'")
        indexes = [definition for (definition,) in _rows(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'clients_client' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)")]
        names = [name for (name,) in _rows(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'clients_client' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)")]
        execute("TRUNCATE clients_client RESTART IDENTITY CASCADE")
        for name in names:
            execute(f'DROP INDEX "{name}"')
        cities = _array(CITIES)
        insert_select(Client, {
            "name": name_expr(10),
            "phone": phone_expr("g"),
            "extra_phones": "'[]'::jsonb",
            "phone_digits": f"substr({phone_expr('g')}, 2)",
            "email": f"CASE WHEN {r(20)} < 0.6 THEN 'u' || g || '@example.ru' ELSE '' END",
            "city": f"CASE WHEN {r(21)} < 0.85 THEN {pick(cities, 22, 'g', 2.0)} ELSE '' END",
            "company": f"CASE WHEN {r(23)} < 0.25 THEN 'ООО «' || initcap({pick(_array(SYLLABLES), 24)} || "
                       f"{pick(_array(SYLLABLES), 25)} || {pick(_array(SYLLABLES), 26)}) || '»' ELSE '' END",
        }, f"generate_series(1, {base}) AS g")
        print(f"{base} clients in {time.perf_counter() - started:.1f} s", flush=True)
        # The originals: random live clients with an e-mail and a city, each kind a third.
        execute(f"""CREATE TEMP TABLE planted ON COMMIT DROP AS
            SELECT row_number() OVER () AS n, o.* FROM (
                SELECT id, name, phone, email, city FROM clients_client WHERE email <> '' AND city <> ''
                ORDER BY hashint8(id::bigint * 7 + 3) LIMIT {planted}) o""")
        kind = "(ARRAY['phone', 'email', 'name'])[1 + mod(n, 3)]"
        swapped = ("array_to_string(ARRAY[split_part(name, ' ', 2), split_part(name, ' ', 1)] || "
                   "(string_to_array(name, ' '))[3:], ' ')")
        typo = "overlay(split_part(name, ' ', 1) placing 'ъ' from length(split_part(name, ' ', 1))) || substr(name, length(split_part(name, ' ', 1)) + 1)"
        other_name = name_expr(40, "n + 5000000")
        fresh_phone = phone_expr(f"n + {clients} + 10")
        insert_select(Client, {
            "name": f"CASE WHEN mod(n, 3) = 2 THEN CASE WHEN mod(n, 2) = 0 THEN {swapped} ELSE {typo} END ELSE {other_name} END",
            "phone": f"CASE WHEN mod(n, 3) = 0 AND mod(n, 2) = 0 THEN phone ELSE {fresh_phone} END",
            "extra_phones": "CASE WHEN mod(n, 3) = 0 AND mod(n, 2) = 1 THEN jsonb_build_array(phone) ELSE '[]'::jsonb END",
            "phone_digits": (f"CASE WHEN mod(n, 3) = 0 AND mod(n, 2) = 0 THEN substr(phone, 2) ELSE substr({fresh_phone}, 2) END"
                             " || CASE WHEN mod(n, 3) = 0 AND mod(n, 2) = 1 THEN ' ' || substr(phone, 2) ELSE '' END"),
            "email": "CASE WHEN mod(n, 3) = 1 THEN upper(email) ELSE '' END",
            "city": f"CASE WHEN mod(n, 3) = 2 THEN city ELSE {pick(cities, 41, 'n + 5000000', 2.0)} END",
            "external_id": f"'dup-' || {kind} || '-' || id",
        }, "planted")
        print(f"{planted} planted duplicates in {time.perf_counter() - started:.1f} s", flush=True)
        fill_name_keys()  # as Client.save and the import's writer leave them (the SQL above cannot make them)
        execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign-key checks now: CREATE INDEX refuses to wait
        for definition in indexes:
            execute(definition)
        print(f"indexes made again in {time.perf_counter() - started:.1f} s", flush=True)
    execute("ANALYZE clients_client")


def fill_name_keys() -> None:
    """Client.name_key of every client built here, by the migration that fills those of older clients."""
    import importlib

    from django.apps import apps
    from django.db import connection

    with connection.schema_editor(atomic=False) as editor:
        importlib.import_module("clients.migrations.0021_fill_client_name_key").fill(apps, editor)


def _rows(sql: str, params: list | tuple | None = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def recall() -> dict:
    """Planted pairs found (either order), by kind, and all pairs found by kind."""
    found = dict(_rows("SELECT kind, count(*) FROM clients_duplicatesuggestion GROUP BY kind"))
    rows = _rows("""
        SELECT split_part(c.external_id, '-', 2) AS kind, count(*),
               count(*) FILTER (WHERE EXISTS (SELECT 1 FROM clients_duplicatesuggestion d
                   WHERE (d.client_id = c.id AND d.other_id = split_part(c.external_id, '-', 3)::bigint)
                      OR (d.other_id = c.id AND d.client_id = split_part(c.external_id, '-', 3)::bigint)))
        FROM clients_client c WHERE c.external_id LIKE 'dup-%' GROUP BY 1""")
    planted = sum(row[1] for row in rows)
    hits = sum(row[2] for row in rows)
    return {
        "duplicates_planted": planted,
        "duplicates_recall": round(hits / planted, 4) if planted else None,
        **{f"duplicates_recall_{kind}": round(hit / total, 4) for kind, total, hit in rows},
        "duplicates_found": sum(found.values()),
        **{f"duplicates_found_{kind}": count for kind, count in found.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--force", action="store_true", help="build the clients again even when there")
    parser.add_argument("--runs", type=int, default=1, help="timed rebuilds (the best is the figure)")
    args = parser.parse_args()
    ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from clients import duplicates

    present = scalar("SELECT count(*) FROM clients_client")
    if args.force or present != args.clients:
        build(args.clients)
    else:
        print(f"reusing {present} clients", flush=True)
    execute("ANALYZE clients_client")
    times = []
    for _ in range(max(1, args.runs)):
        execute("TRUNCATE clients_duplicatesuggestion")
        started = time.perf_counter()
        added = duplicates.rebuild()
        times.append(time.perf_counter() - started)
        print(f"rebuild: {added} pairs in {times[-1]:.1f} s", flush=True)
    scan = round(min(times), 2)
    result = {"clients": args.clients, "duplicates_scan_s": scan}
    if args.clients == 1_000_000:
        result["duplicates_scan_1m_s"] = scan
        result["duplicates_scan_1m_budget_s"] = BUDGET_S
    result.update(recall())
    # The incremental lookup as a save and an import chunk use it (nothing new to add: the list is whole).
    ids = [pk for (pk,) in _rows("SELECT id FROM clients_client ORDER BY hashint8(id) LIMIT 1020")]
    started = time.perf_counter()
    duplicates.suggest_for(ids[:1000], similar_names=False)
    result["duplicates_import_chunk_1k_ms"] = round((time.perf_counter() - started) * 1000, 1)
    one = []
    for pk in ids[1000:1020]:
        started = time.perf_counter()
        duplicates.suggest_for([pk])
        one.append((time.perf_counter() - started) * 1000)
    result["duplicates_incremental_one_ms"] = round(statistics.median(one), 2)
    print(f"incremental: an import chunk of 1,000 clients {result['duplicates_import_chunk_1k_ms']} ms, "
          f"one save {result['duplicates_incremental_one_ms']} ms", flush=True)
    emit(result)
    if result["duplicates_recall"] is not None and result["duplicates_recall"] < 0.99:
        fail(f"recall {result['duplicates_recall']}: planted duplicates were missed")


if __name__ == "__main__":
    main()
