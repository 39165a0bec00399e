"""Time a 100,000-row × 10-column Excel import run by the worker's code, with its peak memory,
and the enqueueing of a 10,000-recipient mass send.

    .venv/bin/python bench/import_send.py [--rows 100000] [--recipients 10000]

Needs generate_clients.py first (the mass send picks its recipients among those clients).
The import runs in a separate process (`bench/import_worker.py`, the same function a Celery
worker runs) under /usr/bin/time -v, which reports the peak resident memory.
"""

import argparse
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from common import BENCH_DB, emit, setup_django

OUT = Path(__file__).resolve().parent / "out"


def make_file(rows: int) -> Path:
    from openpyxl import Workbook

    OUT.mkdir(exist_ok=True)
    path = OUT / f"import_{rows}.xlsx"
    if path.exists():
        return path
    rnd = random.Random(3)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Клиенты")
    sheet.append(["ФИО", "Телефон", "Email", "Город", "Компания", "Адрес", "Страна", "Канал", "ID игрока", "Дата регистрации"])
    for i in range(rows):
        sheet.append([f"Импорт Клиент {i}", f"+7 925 {rnd.randint(1000000, 9999999)}", f"imp{i}@example.com",
                      rnd.choice(["Москва", "Казань", "Тула"]), f"ООО Ромашка {i % 500}", f"ул. Ленина, {i % 200}",
                      "RU", "telegram", f"P{i}", f"2024-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}"])
    book.save(path)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--recipients", type=int, default=10_000)
    args = parser.parse_args()
    path = make_file(args.rows)
    setup_django()
    from django.core.files.uploadedfile import SimpleUploadedFile

    from clients import import_services
    from clients.models import Client, ImportJob
    from crm.models import User

    admin = User.objects.get(username="bench-admin")
    job = import_services.import_upload(actor=admin, uploaded=SimpleUploadedFile(path.name, path.read_bytes()))
    headers = ["ФИО", "Телефон", "Email", "Город", "Компания", "Адрес", "Страна", "Канал", "ID игрока", "Дата регистрации"]
    mapping = {str(i): key for i, key in enumerate(["name", "phone", "email", "city", "company", "address", "country",
                                                     "channel", "external_id", "registration_date"])}
    import_services.import_set_mapping(actor=admin, job=job, mapping=mapping, duplicates="create", headers=headers)
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", sys.executable, str(Path(__file__).with_name("import_worker.py")), str(job.pk)],
                            capture_output=True, text=True)
    import_s = time.perf_counter() - started
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    job = ImportJob.objects.get(pk=job.pk)
    print(f"import {job.created} rows created, {job.failed} failed, status {job.status}: {import_s:.1f} s, peak {peak_kb / 1024:.0f} MB", flush=True)
    if job.status != "done":
        print(result.stderr[-2000:], file=sys.stderr)

    from django.db import transaction

    from messenger import services as send_services

    ids = list(Client.objects.alive().exclude(email="").order_by("pk").values_list("pk", flat=True)[: args.recipients])
    started = time.perf_counter()
    with transaction.atomic():
        send = send_services.mass_send_start(actor=admin, channel="email", clients=Client.objects.filter(pk__in=ids),
                                             digest=None, subject="Bench", body="Hello")
    enqueue_s = time.perf_counter() - started
    print(f"mass send to {send.total} recipients enqueued in {enqueue_s:.2f} s", flush=True)
    emit({"import_rows": job.created, "import_100k_s": round(import_s, 1), "import_100k_peak_mb": round(peak_kb / 1024),
          "mass_send_recipients": send.total, "mass_send_10k_enqueue_s": round(enqueue_s, 2), "db": BENCH_DB.rsplit("/", 1)[-1]})


if __name__ == "__main__":
    main()
