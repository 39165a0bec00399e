"""Name and phone search on the clients table before and after a bulk import of fresh clients.

    .venv/bin/python bench/search_after_import.py [--clients 1000000] [--rows 200000] [--runs 40] [--users 20]

In a database of its own (`BENCH_DATABASE_URL`, default `voronka_bench_search`, so the table bench's
database is never touched): makes sure it holds --clients clients (`generate_clients.py`, which
skips the load when they are there), times searches through the /clients/ page (the request the
live search sends) as `bench-admin` (visibility *all*) and as `bench-manager0` (own visibility), then
inserts --rows fresh clients the way an import writes them (one `COPY`, every row modified "now",
names from the import bench's workbook, all of them given to bench-manager0), and searches again:
`after_copy`, at once (what a search meets in the second between an import's last chunk and the
worker's next step), then `after_import`, once the worker's step after an import has run
(`clients.duplicates.settle_after_bulk_write`, timed: the GIN pending lists merged and, as
PostgreSQL's documentation asks after a bulk load and this many rows call for, `ANALYZE`).
Autovacuum is off for the clients table while the bench runs, so nothing else settles the table.
The inserted clients are deleted in a `finally` (and the table vacuumed), so a rerun meets the same
database.

The name fragments are the table bench's common ones (about a fourteenth of the generated clients
each) in two kinds: ones the imported names match as often ("Смирн", "Волко", "Taylo") and ones no
imported name matches ("Смирнова", "Кузнецова", "Новикова", "Evans", "Clark": a list of men's
names imported, a woman's surname searched): for those the newest --rows clients hold no match at
all. The last line's `clients_search_after_import_p95_ms` is the worst name / phone p95 after the
import (`after_import`), as either user; `clients_search_after_copy_p95_ms` the same at once.
"""

import argparse
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voronka_bench_search")

import psycopg
from common import BENCH_DB, ROOT, emit, setup_django, summary
from generate_clients import copy_columns
from import_file import FIRST, LAST, MIDDLE

NAMES_SHARED = ["Смирн", "Волко", "Taylo"]  # common in the generated clients and in the imported ones
NAMES_OLD_ONLY = ["Смирнова", "Кузнецова", "Новикова", "Evans", "Clark"]  # common before, absent from the import
PHONES = ["9161", "903555", "12345", "7777", "98765", "4321", "55512", "9990", "916"]
USERS = {"admin": "bench-admin", "manager": "bench-manager0"}


def ensure_clients(clients: int, users: int) -> None:
    """The generator, in its own process (it migrates, loads only when the count differs, checks
    the indexes against the migrations)."""
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate_clients.py"), "--clients", str(clients),
                    "--users", str(users)], check=True, cwd=ROOT)


def time_searches(http_clients: dict, runs: int) -> dict[str, list[float]]:
    """{"<user>_<kind>": samples in ms} for kind in name / phone, each fragment in turn."""
    hx = {"HX-Request": "true"}
    samples: dict[str, list[float]] = {}
    for who, http in http_clients.items():
        for kind, fragments in (("name", NAMES_SHARED + NAMES_OLD_ONLY), ("phone", PHONES)):
            http.get("/clients/", {"q": fragments[0]}, headers=hx)  # warm up
            taken = samples.setdefault(f"{who}_{kind}", [])
            for i in range(max(runs, len(fragments))):
                started = time.perf_counter()
                response = http.get("/clients/", {"q": fragments[i % len(fragments)]}, headers=hx)
                taken.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.status_code
    return samples


def report(stage: str, samples: dict[str, list[float]], result: dict) -> None:
    for key, taken in samples.items():
        p50, p95 = summary(taken)
        result[f"{stage}_{key}_p50_ms"], result[f"{stage}_{key}_p95_ms"] = p50, p95
        print(f"{stage:14} {key:14} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms", flush=True)


def insert_fresh(conn, rows: int, owner: int) -> int:
    """--rows new clients as the import's writer leaves them: one COPY, modified now, the
    workbook's names (surname, first name, sometimes a patronymic); returns the first new id."""
    from clients.names import name_key

    columns, constants = copy_columns(conn)
    extra = list(constants.values())
    first_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM clients_client").fetchone()[0]
    rnd = random.Random(13)
    now = datetime.now(UTC)
    with conn.cursor().copy(f"COPY clients_client ({', '.join(columns)}) FROM STDIN") as copy:
        for i in range(rows):
            body = f"9{rnd.randint(100000000, 999999999)}"
            name = " ".join(p for p in (rnd.choice(LAST), rnd.choice(FIRST), rnd.choice(MIDDLE)) if p)[:30]
            stamp = now - timedelta(milliseconds=rows - i)  # written in order, newest last
            copy.write_row((
                name, name_key(name), owner, f"+7{body}", "[]", f"7{body}", f"imported{i}@example.com", "RU", "Москва", "", "",
                "", "Импорт", "normal", "potential", "", None, "{}", 0, 0, stamp, stamp, owner, owner, *extra,
            ))
    return first_id


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=200_000, help="fresh clients the import adds")
    parser.add_argument("--runs", type=int, default=40, help="searches per figure (at least one per fragment)")
    parser.add_argument("--users", type=int, default=20, help="managers the generator makes, as generate_clients.py")
    args = parser.parse_args()
    ensure_clients(args.clients, args.users)
    setup_django()
    from django.test import Client as HttpClient

    from clients import duplicates
    from crm.models import User

    users = {who: User.objects.get(username=name) for who, name in USERS.items()}
    http_clients = {}
    for who, user in users.items():
        http_clients[who] = HttpClient()
        http_clients[who].force_login(user)

    result: dict = {"clients": args.clients, "imported_rows": args.rows, "runs": args.runs}
    report("before", time_searches(http_clients, args.runs), result)
    first_id = None
    with psycopg.connect(BENCH_DB, autocommit=True) as conn:
        conn.execute("ALTER TABLE clients_client SET (autovacuum_enabled = false)")
        try:
            started = time.perf_counter()
            with conn.transaction():
                first_id = insert_fresh(conn, args.rows, owner=users["manager"].pk)
            result["import_copy_s"] = round(time.perf_counter() - started, 1)
            print(f"inserted {args.rows} fresh clients in {result['import_copy_s']} s", flush=True)
            # the seconds between the import's last chunk and the worker's next step (informational)
            report("after_copy", time_searches(http_clients, args.runs), result)
            # what the worker does once an import is done, before looking for its duplicates
            started = time.perf_counter()
            analyzed = duplicates.settle_after_bulk_write(args.rows)
            result["import_settle_s"] = round(time.perf_counter() - started, 2)
            result["import_settle_analyzed"] = analyzed
            print(f"settled (pending GIN entries merged, analyzed: {analyzed}) in {result['import_settle_s']} s", flush=True)
            report("after_import", time_searches(http_clients, args.runs), result)
        finally:
            if first_id is not None:
                conn.execute("DELETE FROM clients_client WHERE id >= %s", [first_id])
            conn.execute("ALTER TABLE clients_client RESET (autovacuum_enabled)")
            conn.execute("VACUUM (ANALYZE) clients_client")
    after = [result[f"after_import_{who}_{kind}_p95_ms"] for who in USERS for kind in ("name", "phone")]
    result["clients_search_after_import_p95_ms"] = max(after)
    result["clients_search_after_copy_p95_ms"] = max(result[f"after_copy_{who}_{kind}_p95_ms"] for who in USERS for kind in ("name", "phone"))
    result["clients_search_before_p95_ms"] = max(result[f"before_{who}_{kind}_p95_ms"] for who in USERS for kind in ("name", "phone"))
    emit(result)


if __name__ == "__main__":
    main()
