"""Generate N clients (default 1,000,000) in the bench database with COPY.

    .venv/bin/python bench/generate_clients.py [--clients 1000000] [--users 20] [--force]

The database is created and migrated if needed. The users: `bench-admin` (Admin), `bench-manager0`…
(Manager, own visibility; the built-in Manager role may not import), and `bench-importer`, own
visibility like a manager but with the import permission (a role "Bench importer" an admin could
make), for the import bench's manager figure.

Indexes on the clients table are dropped during the load and rebuilt after it (much faster than
maintaining them row by row), all in one transaction with the load: a run killed at any moment
leaves the database as it was, indexes included. What "all indexes" means is not taken from the bench database itself
(a run killed mid-load would have lost some): a scratch database is migrated from scratch and its
indexes on the two tables (model, migrations' SQL, per-column statistics targets) are the reference.
The rebuild creates exactly those (and their statistics targets), and every run ends by comparing
the bench database's `pg_indexes` with the reference: a difference is an error (exit status 1).

When the table already holds exactly N clients, the load is skipped (the indexes are still checked
and made good); `--force` reloads.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

import psycopg
from common import BENCH_DB, ROOT, emit, setup_django

FIRST = ["Иван", "Пётр", "Анна", "Мария", "Ольга", "Сергей", "Алексей", "Елена", "John", "Emily", "Michael", "Sarah", "David", "Laura"]
LAST = ["Иванов", "Петров", "Сидоров", "Смирнова", "Кузнецова", "Попов", "Волков", "Новикова", "Smith", "Brown", "Taylor", "Wilson", "Clark", "Evans"]
COUNTRIES = ["RU", "RU", "RU", "KZ", "BY", "UZ", "AM", "TR", "DE", "US"]
CHANNELS = ["phone", "website", "email", "telegram", "whatsapp", "instagram", "vk", "referral", "ads"]
SOURCES = ["", "", "", "Авито", "Cold call", "Выставка", "Сайт"]
CITIES = ["", "Москва", "Санкт-Петербург", "Казань", "Новосибирск", "Алматы", "Минск"]
TABLES = ("clients_client", "clients_client_tags")
IMPORTER_ROLE = "Bench importer"


def server_and_name(url: str) -> tuple[str, str]:
    base, _slash, name = url.rpartition("/")
    return base, name


def ensure_database():
    base, name = server_and_name(BENCH_DB)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def read_indexes(conn) -> dict[str, tuple[str, str]]:
    """{index name: (table, definition)} of the indexes that are not a constraint's."""
    rows = conn.execute(
        "SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s) "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)", [list(TABLES)]
    ).fetchall()
    return {name: (table, definition) for name, table, definition in rows}


def read_constraint_indexes(conn) -> set[str]:
    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s) "
        "AND indexname IN (SELECT conname FROM pg_constraint)", [list(TABLES)]
    ).fetchall()
    return {name for (name,) in rows}


def read_statistics(conn) -> dict[tuple[str, int], int]:
    """Per-column statistics targets set on the tables' indexes ({(index, column number): target})."""
    rows = conn.execute(
        "SELECT c.relname, a.attnum, a.attstattarget FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_attribute a ON a.attrelid = c.oid WHERE i.indrelid::regclass::text = ANY(%s) AND a.attstattarget > 0",
        [list(TABLES)],
    ).fetchall()
    return {(name, number): target for name, number, target in rows}


def reference() -> dict:
    """The indexes a database migrated from scratch has on the two tables (a scratch database,
    migrated in a subprocess, read, dropped)."""
    base, name = server_and_name(BENCH_DB)
    scratch = f"{name}_indexref"[:63]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        env = {**os.environ, "DATABASE_URL": f"{base}/{scratch}", "DJANGO_SETTINGS_MODULE": "crm.settings.test"}
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"], env=env, check=True, cwd=ROOT)
        with psycopg.connect(f"{base}/{scratch}") as conn:
            return {"indexes": read_indexes(conn), "constraints": read_constraint_indexes(conn),
                    "statistics": read_statistics(conn)}
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def make_good(conn, wanted: dict) -> list[str]:
    """Create every reference index the database lacks, drop the ones the reference does not have,
    and set the reference's statistics targets; return what was done."""
    done = []
    present = read_indexes(conn)
    for name in sorted(set(present) - set(wanted["indexes"])):
        conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        done.append(f"dropped {name} (not in the migrations)")
    conn.execute("SET maintenance_work_mem = '1GB'")
    for name, (_table, definition) in sorted(wanted["indexes"].items()):
        if name not in present:
            conn.execute(definition)
            done.append(f"created {name}")
    for (name, number), target in sorted(wanted["statistics"].items()):
        conn.execute(f'ALTER INDEX "{name}" ALTER COLUMN {number} SET STATISTICS {target}')
    return done


def verify(conn, wanted: dict) -> list[str]:
    """The differences between the bench database and the reference (empty: all there)."""
    problems = []
    present = read_indexes(conn)
    for name, (table, definition) in sorted(wanted["indexes"].items()):
        if name not in present:
            problems.append(f"missing index {name} on {table}")
        elif present[name][1] != definition:
            problems.append(f"index {name} differs: {present[name][1]!r}, migrations: {definition!r}")
    problems += [f"extra index {name}" for name in sorted(set(present) - set(wanted["indexes"]))]
    problems += [f"missing constraint index {name}" for name in sorted(wanted["constraints"] - read_constraint_indexes(conn))]
    statistics = read_statistics(conn)
    problems += [f"statistics target of {name} column {number} is {statistics.get((name, number))}, migrations: {target}"
                 for (name, number), target in sorted(wanted["statistics"].items()) if statistics.get((name, number)) != target]
    return problems


def ensure_users(users: int) -> None:
    from django.contrib.auth.models import Group, Permission

    from crm.models import Role, User
    from crm.roles import MANAGER_PERMISSIONS
    from tests.factories import UserFactory, role  # the same factories as the tests

    if not User.objects.filter(username="bench-admin").exists():
        UserFactory(username="bench-admin", role=role("Admin"))
    for i in range(users):
        if not User.objects.filter(username=f"bench-manager{i}").exists():
            UserFactory(username=f"bench-manager{i}", role=role("Manager"))
    group, _created = Group.objects.get_or_create(name=IMPORTER_ROLE)
    importer_role, _created = Role.objects.get_or_create(group=group, defaults={"visibility": Role.Visibility.OWN})
    codes = [*MANAGER_PERMISSIONS, "clients.import_clients"]
    group.permissions.set([Permission.objects.get(content_type__app_label=c.split(".")[0], codename=c.split(".")[1]) for c in codes])
    if not User.objects.filter(username="bench-importer").exists():
        UserFactory(username="bench-importer", role=importer_role)


def copy_columns(conn) -> tuple[list[str], dict]:
    """The COPY's columns: the generated ones, plus every other NOT NULL column without a database
    default, filled with its model field's default (a column added later never breaks the load;
    one without a default stops it with its name)."""
    from clients.models import Client

    generated = [
        "name", "name_key", "responsible_id", "phone", "extra_phones", "phone_digits", "email", "country", "city", "address",
        "company", "channel", "source", "priority", "lifecycle", "external_id", "registration_date", "custom",
        "sales_count", "sales_sum", "created_at", "modified_at", "created_by_id", "modified_by_id",
    ]
    required = [name for (name,) in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'clients_client' "
        "AND is_nullable = 'NO' AND column_default IS NULL AND column_name <> 'id' ORDER BY ordinal_position"
    ).fetchall()]
    by_column = {f.column: f for f in Client._meta.concrete_fields}
    constants = {}
    for column in required:
        if column in generated:
            continue
        field = by_column.get(column)
        if field is None or not field.has_default():
            raise SystemExit(f"generate_clients.py: clients_client.{column} is NOT NULL without a default: add it to the COPY")
        value = field.get_default()
        constants[column] = json.dumps(value) if isinstance(value, (dict, list)) else value
        print(f"note: {column} filled with its default {value!r}", flush=True)
    return generated + list(constants), constants


def load(conn, clients: int, user_ids: list[int], tag_ids: list[int]) -> None:
    from clients.names import name_key

    columns, constants = copy_columns(conn)
    rnd = random.Random(1)
    now = datetime.now(UTC)
    extra = list(constants.values())
    with conn.cursor().copy(f"COPY clients_client ({', '.join(columns)}) FROM STDIN") as copy:
        for i in range(clients):
            phone_body = f"9{rnd.randint(100000000, 999999999)}"
            created = now - timedelta(seconds=rnd.randint(0, 3 * 365 * 86400))
            modified = created + timedelta(seconds=rnd.randint(0, 30 * 86400))
            owner = rnd.choice(user_ids)
            sales = rnd.choice([0, 0, 0, 1, 2])
            registered = date(2020, 1, 1) + timedelta(days=rnd.randint(0, 2000)) if rnd.random() < 0.5 else None
            name = f"{rnd.choice(LAST)} {rnd.choice(FIRST)} {i}"[:30]
            copy.write_row((
                name, name_key(name), owner, f"+7{phone_body}", "[]",
                f"7{phone_body}", f"client{i}@example.com", rnd.choice(COUNTRIES), rnd.choice(CITIES), "", "",
                rnd.choice(CHANNELS), rnd.choice(SOURCES), rnd.choice(["low", "normal", "high"]),
                rnd.choice(["potential", "converted"]), "", registered, "{}", sales, sales * 1500, created,
                min(modified, now), owner, owner, *extra,
            ))
    with conn.cursor().copy("COPY clients_client_tags (client_id, tag_id) FROM STDIN") as copy:
        for client_id in range(1, clients + 1):
            if rnd.random() < 0.4:
                for tag_id in rnd.sample(tag_ids, k=rnd.choice([1, 1, 2])):
                    copy.write_row((client_id, tag_id))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--force", action="store_true", help="reload even when the table holds --clients clients")
    args = parser.parse_args()
    started = time.perf_counter()
    ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from clients.models import Tag
    from crm.models import User

    ensure_users(args.users)
    user_ids = list(User.objects.filter(username__startswith="bench-").order_by("pk").values_list("pk", flat=True))
    tag_ids = [Tag.objects.get_or_create(name=f"bench-tag{i}")[0].pk for i in range(10)]
    wanted = reference()
    load_s = index_s = 0.0
    with psycopg.connect(BENCH_DB, autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM clients_client").fetchone()[0]
        loaded = args.force or count != args.clients
        if loaded:
            # One transaction: the truncation, the dropped indexes, the rows and the rebuilt indexes
            # commit together or not at all, so no committed state ever lacks an index, even if the
            # run is killed.
            with conn.transaction():
                # Foreign keys are checked at each statement's end, not queued to the commit: an
                # index cannot be built on a table with pending trigger events.
                conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
                conn.execute("TRUNCATE clients_client_tags, clients_client RESTART IDENTITY CASCADE")
                for name in read_indexes(conn):
                    conn.execute(f'DROP INDEX "{name}"')
                load_started = time.perf_counter()
                load(conn, args.clients, user_ids, tag_ids)
                load_s = time.perf_counter() - load_started
                index_started = time.perf_counter()
                make_good(conn, wanted)
                index_s = time.perf_counter() - index_started
        else:
            print(f"clients_client holds {count} clients already: load skipped (--force reloads)", flush=True)
            for line in make_good(conn, wanted):
                print(line, flush=True)
        conn.execute("ANALYZE clients_client")
        conn.execute("ANALYZE clients_client_tags")
        problems = verify(conn, wanted)
        present = len(read_indexes(conn))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        raise SystemExit("generate_clients.py: the indexes differ from the migrations' (above)")
    print(f"indexes: {present} on {', '.join(TABLES)} besides constraints, as the migrations make them", flush=True)
    emit({
        "clients": args.clients,
        "loaded": loaded,
        "copy_s": round(load_s, 1),
        "index_s": round(index_s, 1),
        "indexes": present,
        "total_s": round(time.perf_counter() - started, 1),
    })


if __name__ == "__main__":
    main()
