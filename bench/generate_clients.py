"""Generate N clients (default 1,000,000) in the bench database with COPY.

    .venv/bin/python bench/generate_clients.py [--clients 1000000]

The database is created and migrated if needed. Indexes on the clients table are dropped
during the load and rebuilt after it (much faster than maintaining them row by row).
"""

import argparse
import random
import time
from datetime import datetime, timedelta, timezone

import psycopg

from common import BENCH_DB, emit, setup_django

FIRST = ["Иван", "Пётр", "Анна", "Мария", "Ольга", "Сергей", "Алексей", "Елена", "John", "Emily", "Michael", "Sarah", "David", "Laura"]
LAST = ["Иванов", "Петров", "Сидоров", "Смирнова", "Кузнецова", "Попов", "Волков", "Новикова", "Smith", "Brown", "Taylor", "Wilson", "Clark", "Evans"]
COUNTRIES = ["RU", "RU", "RU", "KZ", "BY", "UZ", "AM", "TR", "DE", "US"]
CHANNELS = ["phone", "website", "email", "telegram", "whatsapp", "instagram", "vk", "referral", "ads"]


def ensure_database():
    base, _slash, name = BENCH_DB.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tests.factories import UserFactory, role  # the same factories as the tests

    from clients.models import Tag
    from crm.models import User

    if not User.objects.filter(username="bench-admin").exists():
        UserFactory(username="bench-admin", role=role("Admin"))
        for i in range(args.users):
            UserFactory(username=f"bench-manager{i}", role=role("Manager"))
    user_ids = list(User.objects.values_list("pk", flat=True))
    tag_ids = [Tag.objects.get_or_create(name=f"bench-tag{i}")[0].pk for i in range(10)]

    rnd = random.Random(1)
    now = datetime.now(timezone.utc)
    with psycopg.connect(BENCH_DB, autocommit=True) as conn:
        conn.execute("TRUNCATE clients_client_tags, clients_client RESTART IDENTITY CASCADE")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('clients_client', 'clients_client_tags') "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        load_started = time.perf_counter()
        columns = (
            "name, responsible_id, phone, extra_phones, phone_digits, email, country, city, address, company, channel, "
            "priority, lifecycle, external_id, custom, created_at, modified_at, created_by_id, modified_by_id"
        )
        with conn.cursor().copy(f"COPY clients_client ({columns}) FROM STDIN") as copy:
            for i in range(args.clients):
                phone_body = f"9{rnd.randint(100000000, 999999999)}"
                created = now - timedelta(seconds=rnd.randint(0, 3 * 365 * 86400))
                modified = created + timedelta(seconds=rnd.randint(0, 30 * 86400))
                owner = rnd.choice(user_ids)
                copy.write_row((
                    f"{rnd.choice(LAST)} {rnd.choice(FIRST)} {i}"[:30], owner, f"+7{phone_body}", "[]",
                    f"7{phone_body}", f"client{i}@example.com", rnd.choice(COUNTRIES), "", "", "",
                    rnd.choice(CHANNELS), rnd.choice(["low", "normal", "high"]),
                    rnd.choice(["potential", "converted"]), "", "{}", created, min(modified, now), owner, owner,
                ))
        with conn.cursor().copy("COPY clients_client_tags (client_id, tag_id) FROM STDIN") as copy:
            for client_id in range(1, args.clients + 1):
                if rnd.random() < 0.4:
                    for tag_id in rnd.sample(tag_ids, k=rnd.choice([1, 1, 2])):
                        copy.write_row((client_id, tag_id))
        load_s = time.perf_counter() - load_started
        index_started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _name, definition in indexes:
            conn.execute(definition)
        conn.execute("ANALYZE clients_client")
        conn.execute("ANALYZE clients_client_tags")
        index_s = time.perf_counter() - index_started
    emit({
        "clients": args.clients,
        "copy_s": round(load_s, 1),
        "index_s": round(index_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
    })


if __name__ == "__main__":
    main()
