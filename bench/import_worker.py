"""Run one import job as the Celery worker does (imports.services.import_run), in a process of
its own so that /usr/bin/time can report its peak memory.

    .venv/bin/python bench/import_worker.py JOB_ID [--profile bench/out/import.prof]

Prints one JSON object: the job's state and counters, the seconds import_run took (the process's
start and Django's set-up are outside that figure, inside the caller's), and the CPU seconds the
PostgreSQL server spent meanwhile (`db_cpu_s`: every process of the local server, from /proc, when
it runs on this machine). Exits 1 unless the job is done.

`db_cpu_s` counts all of the server's processes, not the backend of this process's connection:
the import writes through connections of its own (two writer threads do the COPY and the
commits, imports.writer.WRITERS), whose backends exit with them. A backend that exits hands its CPU time to the
postmaster's counters of reaped children, which are counted too. The server's background processes
(WAL writer, checkpointer, autovacuum) are in the figure: they work for the import's writes.

With --profile, import_run runs under cProfile (stats to that file) and every statement Django
sends is timed from the client side and summed by kind (JSON next to the stats file); COPY goes
past Django's cursor and shows in the profile as psycopg's Copy.
"""

import argparse
import json
import os
import re
import sys
import time
from collections import defaultdict

from common import setup_django


def _stat(pid: str) -> tuple[str, list[str]] | None:
    """A process's name and the fields of /proc/PID/stat after it (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1].split()


def server_cpu() -> float | None:
    """User + system CPU seconds of the local PostgreSQL server so far: the postmaster's own, its
    reaped children's (backends that exited) and its live children's. None when no server runs here."""
    stats = {pid: stat for pid in os.listdir("/proc") if pid.isdigit() and (stat := _stat(pid)) and stat[0] == "postgres"}
    postmasters = [pid for pid, (_name, fields) in stats.items() if fields[1] not in stats]
    if len(postmasters) != 1:
        return None
    postmaster = postmasters[0]
    ticks = 0
    for pid, (_name, fields) in stats.items():
        if pid == postmaster:
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif fields[1] == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def statement_kind(sql: str) -> str:
    """A statement reduced to its verb and main table ("INSERT clients_client_tags")."""
    sql = sql.lstrip()
    verb = sql.split(None, 1)[0].upper() if sql else "?"
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql, re.I)
    return f"{verb} {table.group(1) if table else ''}".strip()


class SqlTimer:
    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = statement_kind(sql)
            self.seconds[kind] += time.perf_counter() - started
            self.calls[kind] += 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("job_id")
    parser.add_argument("--profile", help="write cProfile stats of import_run to this file")
    args = parser.parse_args()
    setup_django()
    from django.db import connection

    from imports import services

    connection.ensure_connection()
    db_cpu_before = server_cpu()
    started = time.perf_counter()
    if args.profile:
        import cProfile

        timer = SqlTimer()
        profiler = cProfile.Profile()
        with connection.execute_wrapper(timer):
            job = profiler.runcall(services.import_run, job_id=args.job_id)
        profiler.dump_stats(args.profile)
        with open(f"{args.profile}.sql.json", "w") as handle:
            json.dump({kind: {"s": round(s, 3), "calls": timer.calls[kind]} for kind, s in
                       sorted(timer.seconds.items(), key=lambda item: -item[1])}, handle, indent=1)
    else:
        job = services.import_run(job_id=args.job_id)
    run_s = time.perf_counter() - started
    db_cpu_after = server_cpu()
    db_cpu_s = round(db_cpu_after - db_cpu_before, 2) if db_cpu_before is not None and db_cpu_after is not None else None
    print(json.dumps({"status": job.status, "processed": job.processed, "created": job.created, "updated": job.updated,
                      "skipped": job.skipped, "failed": job.failed, "error": job.error, "run_s": round(run_s, 2),
                      "db_cpu_s": db_cpu_s}, ensure_ascii=False), flush=True)
    sys.exit(0 if job.status == "done" else 1)
