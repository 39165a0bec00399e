"""Time the client import run by the worker's code, with its peak memory, and the enqueueing of a
mass send.

    .venv/bin/python bench/import_send.py [--rows 100000] [--recipients 10000] [--rows-1m] [--profile]

Needs generate_clients.py first (1,000,000 clients for the DESIGN §12 figures). The workbook
(bench/import_file.py: N rows × 10 columns, Russian headers, mixed phone formats, empty optional
cells, source, tags, date cells) is made once per size in bench/out/ and never timed.

Each import runs as the Celery worker runs it: the job is uploaded, mapped and marked queued
here (imports.services, as the wizard does), then `import_run` runs in a separate process
(bench/import_worker.py) under /usr/bin/time -v, which reports the peak resident memory.
`import_100k_s` is DESIGN §12's "end to end in the worker": the job's whole run inside a worker
that is already up (reading the file, every chunk, the job marked done, its file deleted), timed
by the worker around `import_run`, as a Celery worker runs it once it has the message.
`import_100k_process_s` is the bench's worker process's whole life (the interpreter's start,
Django's set-up, the run, the exit): a Celery worker pays the start once, not per job (here
PYTHONDONTWRITEBYTECODE=1 makes each start compile every module, ~1 s). Up to c3476a7 the
README's `import_100k_s` was this whole-process figure. The skip-mode run as the admin
is made --runs times (default 3) on the same table (cleaned between), and the median reported,
with the fastest and the slowest: this machine's speed drifts by a third from one hour to the next.
In order:

1. python-calamine alone reading the same sheet (`iter_rows()` fully consumed; median of 3), for
   `import_read_ratio` = import time / read time;
2. the file in the default mode, skip, as `bench-admin` (visibility all), into the generated clients;
3. the same file again in update mode (every row is then a duplicate of a client run 2 created);
4. the file in skip mode as `bench-importer`, a user with own visibility whose role may import (the
   built-in Manager role may not: the bench checks that it is refused, `import_manager_role_may_import`);
5. with --rows-1m, a 1,000,000-row file in skip mode as the admin;
6. with --profile, run 2 again under cProfile (not timed): top functions, and the split between the
   worker's CPU and the time it waited (PostgreSQL);
7. a mass email to --recipients clients: the send, its deliveries and feed entries in one
   transaction, and queueing the worker job (the on-disk broker under bench/out/).

Before runs 2, 4 and 5 and at the end, what bench imports and sends added is deleted (the clients
they created, with their tags, feed entries and row records) and the tables vacuumed, so every
skip-mode run meets the same table, and the database is left as the generator made it.
Figures: times in seconds (`_s`), memory in MB; the last line is one JSON object.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH_DB, OUT, emit, setup_django
from import_file import FIELDS, HEADERS, SHEET, make_file

HERE = Path(__file__).resolve().parent
SEND_BODY = "Bench mass send"
# DESIGN §12: import 100k rows x 10 columns, skip mode, into 1,000,000 clients; import 1M rows.
BUDGETS = {"100k": (12.0, 300), "1m": (150.0, 600)}


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def label(count: int) -> str:
    return {10_000: "10k", 100_000: "100k", 1_000_000: "1m"}.get(count, str(count))


def calamine_seconds(path: Path) -> float:
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    for _row in CalamineWorkbook.from_path(str(path)).get_sheet_by_name(SHEET).iter_rows():
        pass
    return time.perf_counter() - started


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_measured(command: list[str]) -> tuple[int, str, str, dict]:
    """Run a command; return (exit status, stdout, stderr, {peak_kb, cpu_s}) from /usr/bin/time -v,
    or from the kernel's rusage of the child where /usr/bin/time is missing."""
    if Path("/usr/bin/time").exists():
        result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
        peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
        user = re.search(r"User time \(seconds\): ([\d.]+)", result.stderr)
        system = re.search(r"System time \(seconds\): ([\d.]+)", result.stderr)
        usage = {"peak_kb": int(peak.group(1)) if peak else 0,
                 "cpu_s": (float(user.group(1)) if user else 0) + (float(system.group(1)) if system else 0)}
        return result.returncode, result.stdout, result.stderr, usage
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        _pid, status, rusage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        usage = {"peak_kb": rusage.ru_maxrss, "cpu_s": rusage.ru_utime + rusage.ru_stime}
        return process.returncode, out.read(), err.read(), usage


def run_import(actor, path: Path, mode: str, *, profile: Path | None = None) -> dict:
    """Upload, map and queue a job as the wizard does, then run it in a worker process."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from imports import services
    from imports.models import ImportJob

    data = path.read_bytes()
    started = time.perf_counter()
    job = services.import_upload(actor=actor, uploaded=SimpleUploadedFile(path.name, data))
    headers, _sample = services.sample(job, 3)
    upload_s = time.perf_counter() - started
    if headers != HEADERS:
        raise SystemExit(f"import_send.py: the header read back is {headers}, not {HEADERS}")
    mapping = {str(i): key for i, key in enumerate(FIELDS)}
    services.import_set_mapping(actor=actor, job=job, mapping=mapping, headers=headers, duplicates=mode)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)  # import_start, minus the message
    busy_before = machine_busy_s()
    command = [sys.executable, str(HERE / "import_worker.py"), str(job.pk)]
    if profile:
        command += ["--profile", str(profile)]
    started = time.perf_counter()
    code, stdout, stderr, usage = run_measured(command)
    wall_s = time.perf_counter() - started
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    worker = json.loads(lines[-1]) if lines else {}
    if code != 0 or worker.get("status") != "done":
        print(stdout[-3000:], file=sys.stderr)
        print(stderr[-6000:], file=sys.stderr)
        raise SystemExit(f"import_send.py: the {mode}-mode import of {path.name} by {actor.username} did not finish: "
                         f"exit status {code}, job {worker or 'unknown'}")
    # CPU the rest of the machine used meanwhile (neither the worker nor any PostgreSQL process):
    # on two cores, much of it means the figure was taken on a busy machine and is pessimistic.
    others = None
    if busy_before is not None and worker.get("db_cpu_s") is not None:
        others = max(0.0, machine_busy_s() - busy_before - usage["cpu_s"] - worker["db_cpu_s"])
    result = {**worker, "wall_s": wall_s, "upload_s": upload_s, "peak_mb": usage["peak_kb"] / 1024, "cpu_s": usage["cpu_s"],
              "others_cpu_s": others}
    db_cpu = f", PostgreSQL server CPU {worker['db_cpu_s']:.1f} s" if worker.get("db_cpu_s") is not None else ""
    print(f"import {path.name}, {mode} mode, as {actor.username}: {worker['run_s']:.1f} s in the worker (its process {wall_s:.1f} s, "
          f"worker CPU {usage['cpu_s']:.1f} s{db_cpu}), peak {result['peak_mb']:.0f} MB; upload step {upload_s:.1f} s; "
          f"{worker['processed']} rows: {worker['created']} created, {worker['updated']} updated, "
          f"{worker['skipped']} skipped, {worker['failed']} failed"
          + (f"; other processes' CPU meanwhile {others:.1f} s" if others is not None else ""), flush=True)
    return result


def cleanup() -> None:
    """Delete what bench imports and mass sends added (clients created by an import, with their rows
    in every table that points at them; the jobs and row records; the sends), then vacuum."""
    from django.db import connection

    from crm.models import User

    users = list(User.objects.filter(username__startswith="bench-").values_list("pk", flat=True))
    jobs = "SELECT id FROM imports_importjob WHERE created_by_id = ANY(%s)"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_gone")
        cursor.execute(
            "CREATE TEMP TABLE bench_gone AS SELECT DISTINCT client_id AS id FROM imports_importrecord "
            f"WHERE job_id IN ({jobs}) AND outcome = 'created' AND client_id IS NOT NULL", [users])
        cursor.execute("SELECT count(*) FROM bench_gone")
        gone = cursor.fetchone()[0]
        cursor.execute(f"DELETE FROM imports_importrecord WHERE job_id IN ({jobs})", [users])
        cursor.execute(
            "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] WHERE c.contype = 'f' AND c.confrelid = 'clients_client'::regclass"
        )
        for table, column in cursor.fetchall():
            cursor.execute(f'DELETE FROM {table} WHERE "{column}" IN (SELECT id FROM bench_gone)')
        cursor.execute("DELETE FROM clients_client WHERE id IN (SELECT id FROM bench_gone)")
        cursor.execute(f"DELETE FROM imports_importjob WHERE id IN ({jobs})", [users])
        cursor.execute("DELETE FROM crm_activity WHERE kind = 'message' AND text = %s", [SEND_BODY])
        cursor.execute("DELETE FROM messenger_delivery WHERE mass_send_id IN (SELECT id FROM messenger_masssend WHERE body = %s)", [SEND_BODY])
        cursor.execute("DELETE FROM messenger_masssend WHERE body = %s", [SEND_BODY])
        cursor.execute("DROP TABLE bench_gone")
        for table in ("clients_client", "clients_client_tags", "crm_activity", "imports_importrecord", "messenger_delivery"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    for folder in (OUT / "media" / "imports", OUT / "broker"):
        if folder.is_dir():
            shutil.rmtree(folder)
    (OUT / "broker").mkdir(parents=True, exist_ok=True)
    if gone:
        print(f"cleanup: {gone} clients created by earlier bench imports deleted", flush=True)


def manager_may_import(path: Path) -> bool:
    """Whether a user with the built-in Manager role may start an import (by default: no)."""
    from django.core.exceptions import PermissionDenied
    from django.core.files.uploadedfile import SimpleUploadedFile

    from crm.models import User
    from imports import services

    manager = User.objects.filter(username__startswith="bench-manager", role__group__name="Manager").first()
    if manager is None:
        return False
    try:
        services.import_upload(actor=manager, uploaded=SimpleUploadedFile(path.name, path.read_bytes()))
    except PermissionDenied:
        return False
    return True


def profile_report(path: Path, run: dict) -> None:
    """The profiled run: top functions, Django's statements by kind, and where the time went."""
    import pstats

    stats = pstats.Stats(str(path))
    print(f"\nprofile of one skip-mode run ({path}, {stats.total_tt:.1f} s under cProfile)", flush=True)
    for key in ("cumulative", "tottime"):
        print(f"--- top 15 by {key}", flush=True)
        stats.sort_stats(key).print_stats(15)
    sql = json.loads(Path(f"{path}.sql.json").read_text())
    print("--- statements through Django, client-side time (COPY is not among them: see psycopg's Copy above)")
    for kind, figures in list(sql.items())[:15]:
        print(f"{figures['s']:9.2f} s {figures['calls']:7d}  {kind}")
    print(f"--- wall {run['wall_s']:.1f} s: worker CPU {run['cpu_s']:.1f} s (Python, with the profiler's overhead), "
          f"PostgreSQL server CPU (all its processes) {run.get('db_cpu_s')} s, on two cores", flush=True)


def mass_send(admin, recipients: int) -> tuple[int, float]:
    from django.db import transaction

    from clients.models import Client
    from clients.selectors import ids_digest
    from messenger import services as send_services

    ids = list(Client.objects.alive().exclude(email="").order_by("pk").values_list("pk", flat=True)[:recipients])
    started = time.perf_counter()
    with transaction.atomic():
        send = send_services.mass_send_start(actor=admin, channel="email", clients=Client.objects.filter(pk__in=ids),
                                             digest=ids_digest(ids), subject="Bench", body=SEND_BODY)
    enqueue_s = time.perf_counter() - started  # the commit and the queued message included
    print(f"mass send to {send.total} recipients enqueued in {enqueue_s:.2f} s", flush=True)
    return send.total, enqueue_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the import file (default 100,000)")
    parser.add_argument("--recipients", type=int, default=10_000, help="clients the mass send goes to")
    parser.add_argument("--runs", type=int, default=3, help="skip-mode runs as the admin, the median reported (default 3)")
    parser.add_argument("--rows-1m", action="store_true", help="also import a 1,000,000-row file (minutes)")
    parser.add_argument("--profile", action="store_true", help="one more skip-mode run under cProfile (not a figure)")
    args = parser.parse_args()
    path = make_file(args.rows)  # made once, never timed
    path_1m = make_file(1_000_000) if args.rows_1m else None
    setup_django()
    import logging

    logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # "No hostname was supplied" (on-disk broker)
    from clients.models import Client
    from crm.models import User

    cleanup()  # what an interrupted run left behind: the table holds what the generator made
    clients = Client.objects.count()
    if clients < args.recipients:
        raise SystemExit("import_send.py: run bench/generate_clients.py first")
    admin = User.objects.get(username="bench-admin")
    importer = User.objects.filter(username="bench-importer").first()
    size = label(args.rows)
    result = {"clients": clients, "import_rows": args.rows}

    read = [calamine_seconds(path) for _ in range(3)]
    result[f"calamine_{size}_s"] = round(statistics.median(read), 3)

    skips = []
    for _run in range(args.runs):
        cleanup()
        skips.append(run_import(admin, path, "skip"))
    skip = sorted(skips, key=lambda run: run["run_s"])[len(skips) // 2]  # the median run
    result.update({
        f"import_{size}_s": round(skip["run_s"], 1), f"import_{size}_peak_mb": round(max(r["peak_mb"] for r in skips)),
        f"import_{size}_runs_s": [round(r["run_s"], 1) for r in skips],
        f"import_{size}_process_s": round(skip["wall_s"], 1), f"import_{size}_cpu_s": round(skip["cpu_s"], 1),
        f"import_{size}_db_cpu_s": skip["db_cpu_s"], f"import_{size}_others_cpu_s": rounded(skip["others_cpu_s"]),
        f"import_{size}_upload_s": round(skip["upload_s"], 1), f"import_{size}_created": skip["created"],
        f"import_{size}_skipped": skip["skipped"], f"import_{size}_failed": skip["failed"],
    })
    result["import_read_ratio"] = round(skip["run_s"] / statistics.median(read), 1)
    update = run_import(admin, path, "update")
    result.update({
        f"import_{size}_update_s": round(update["run_s"], 1), f"import_{size}_update_peak_mb": round(update["peak_mb"]),
        f"import_{size}_update_others_cpu_s": rounded(update["others_cpu_s"]),
        f"import_{size}_updated": update["updated"],
    })

    result["import_manager_role_may_import"] = manager_may_import(path)
    if importer is not None:
        cleanup()
        own = run_import(importer, path, "skip")
        result.update({f"import_{size}_manager_s": round(own["run_s"], 1),
                       f"import_{size}_manager_others_cpu_s": rounded(own["others_cpu_s"]),
                       f"import_{size}_manager_peak_mb": round(own["peak_mb"])})

    if path_1m is not None:
        cleanup()
        big = run_import(admin, path_1m, "skip")
        result.update({"import_1m_s": round(big["run_s"], 1), "import_1m_peak_mb": round(big["peak_mb"]),
                       "import_1m_process_s": round(big["wall_s"], 1), "import_1m_cpu_s": round(big["cpu_s"], 1),
                       "import_1m_db_cpu_s": big["db_cpu_s"], "import_1m_others_cpu_s": rounded(big["others_cpu_s"]),
                       "import_1m_upload_s": round(big["upload_s"], 1),
                       "import_1m_created": big["created"], "import_1m_failed": big["failed"]})

    if args.profile:
        cleanup()
        stats_path = OUT / f"import_{size}.prof"
        profiled = run_import(admin, path, "skip", profile=stats_path)
        profile_report(stats_path, profiled)

    cleanup()
    sent, enqueue_s = mass_send(admin, args.recipients)
    result.update({"mass_send_recipients": sent, f"mass_send_{label(args.recipients)}_enqueue_s": round(enqueue_s, 2)})
    cleanup()

    for key, (seconds, megabytes) in BUDGETS.items():
        if f"import_{key}_s" in result:
            within = result[f"import_{key}_s"] <= seconds and result[f"import_{key}_peak_mb"] <= megabytes
            print(f"budget, import {key}: {result[f'import_{key}_s']} s (≤ {seconds:g} s), "
                  f"peak {result[f'import_{key}_peak_mb']} MB (≤ {megabytes} MB): {'met' if within else 'MISSED'}", flush=True)
    result["db"] = BENCH_DB.rsplit("/", 1)[-1]
    emit(result)


if __name__ == "__main__":
    main()
