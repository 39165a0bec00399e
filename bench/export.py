"""Time a clients export to .xlsx as the worker makes it (the export job's handler), with its
peak memory.

    .venv/bin/python bench/export.py [--rows 100000]

Needs generate_clients.py first (1,000,000 clients for the DESIGN §12 figure: 100,000 clients
streamed to .xlsx in ≤ 20 s with a peak of ≤ 150 MB). Two exports, each of the table's default
columns in the user's language:

1. as `bench-admin` (visibility all), the clients created on or after the day that makes at least
   --rows of them (the table's "Created from" filter; rows sorted as the table sorts them, most
   recently modified first), so that the query filters a million-row table as a user's would.
   Creation, not modification: other benches (bulk changes) touch modified_at of the same table;
2. as `bench-manager0` (own visibility), every client the manager may see (about 45,000 of the
   1,000,000: what one manager's export is at most).

Each export is a job row made here as the request makes it (crm.exports: the query string, the
language and time zone; the message to the broker left out), then run by `crm.jobs.run` — what the
Celery worker runs: claim, heartbeat, the handler in deals/jobs.py (count, rows through a
server-side cursor into openpyxl's write-only workbook, the file stored) — in a process of its own,
so that its peak resident memory (`ru_maxrss`, the whole process: Python, Django and the export)
is the export's. `export_<n>_s` is the job's run inside that process (what a running worker
spends); `_process_s` adds the process's start and Django's set-up. The file's rows are counted
back from the sheet's XML. The jobs and their files are deleted afterwards.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from common import emit, setup_django

HERE = Path(__file__).resolve().parent
BUDGET_S, BUDGET_MB = 20.0, 150  # DESIGN §12: export, 100,000 clients


def label(count: int) -> str:
    return {100_000: "100k", 1_000_000: "1m"}.get(count, str(count))


def worker(job_id: str) -> None:
    """The child: run one job as the worker does and say how it went (one JSON line)."""
    import resource

    setup_django()
    from crm import jobs

    ready_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    job = jobs.run(job_id)
    run_s = time.perf_counter() - started
    print(json.dumps({"state": job.state if job else None, "error": job.error if job else "", "total": job.total if job else 0,
                      "run_s": run_s, "ready_mb": ready_mb}), flush=True)


def created_from_for(rows: int, zone: str):
    """The first day (in the user's time zone, as the filter reads it) from which, going back from
    the newest, at least `rows` clients were created."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT day, SUM(n) OVER (ORDER BY day DESC) FROM (SELECT (created_at AT TIME ZONE %s)::date AS day,"
            " COUNT(*) AS n FROM clients_client WHERE deleted_at IS NULL GROUP BY 1) days ORDER BY day DESC",
            [zone],
        )
        days = cursor.fetchall()
    for day, total in days:
        if total >= rows:
            return day
    return days[-1][0] if days else None


def sheet_rows(path: str) -> int:
    """Rows in the workbook's sheet (header included), counted in its XML without loading it."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.startswith("xl/worksheets/sheet"))
        count, tail = 0, b""
        with archive.open(name) as sheet:
            while chunk := sheet.read(1 << 20):
                count += len(re.findall(rb"<row[ >]", tail + chunk)) - len(re.findall(rb"<row[ >]", tail))
                tail = chunk[-8:]
    return count


def run_export(owner, query: str) -> dict:
    from django.utils import timezone

    from crm.models import Job

    params = {"what": "clients", "query": query, "format": "xlsx", "language": owner.language,
              "time_zone": owner.time_zone, "filename": f"bench_export_{owner.username}.xlsx", "notify": False}
    job = Job.objects.create(kind=Job.Kind.EXPORT, owner=owner, params=params, heartbeat_at=timezone.now())
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", str(job.pk)],
                                   stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(process.pid, 0)
        process_s = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    child = json.loads(lines[-1]) if lines else {}
    job.refresh_from_db()
    try:
        if os.waitstatus_to_exitcode(status) != 0 or job.state != Job.State.DONE:
            print(stdout[-3000:], stderr[-6000:], file=sys.stderr)
            raise SystemExit(f"export.py: the export as {owner.username} did not finish: {job.state} {job.error!r}")
        written = sheet_rows(job.result.path) - 1
        if written != job.total:
            raise SystemExit(f"export.py: {written} rows in the file for {job.total} counted")
    finally:
        if job.result:
            job.result.delete(save=False)
        job.delete()
    peak_mb = usage.ru_maxrss / 1024
    return {"rows": written, "s": round(child["run_s"], 2), "process_s": round(process_s, 2),
            "peak_mb": round(peak_mb), "growth_mb": round(peak_mb - child["ready_mb"]),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="clients the admin's export reaches (default 100,000)")
    parser.add_argument("--worker", metavar="JOB_ID", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)

    setup_django()
    from django.http import QueryDict

    from clients.models import Client
    from crm.models import User

    admin = User.objects.get(username="bench-admin")
    manager = User.objects.get(username="bench-manager0")
    day = created_from_for(args.rows, admin.time_zone)
    query = QueryDict(mutable=True)
    if day is not None:
        query["created_from"] = day.isoformat()
    name = label(args.rows)
    result: dict = {"clients": Client.objects.count(), "export_rows_wanted": args.rows,
                    "export_filter": query.urlencode()}
    admin_run = run_export(admin, query.urlencode())
    result.update({f"export_{name}_{key}" if key != "s" else f"export_{name}_s": value for key, value in admin_run.items()})
    manager_run = run_export(manager, "")
    result.update({f"export_manager_{key}": value for key, value in manager_run.items()})
    if args.rows == 100_000 and admin_run["rows"] >= args.rows:
        result["export_100k_budget_met"] = admin_run["s"] <= BUDGET_S and admin_run["peak_mb"] <= BUDGET_MB
    emit(result)


if __name__ == "__main__":
    main()
