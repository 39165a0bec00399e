"""Shared set-up for the bench scripts: a separate PostgreSQL database, Django configured for it."""

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"  # gitignored: generated files, uploads, broker messages
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voronka_bench")
# The project importable and the bench's settings chosen as soon as a bench imports this module:
# importing the crm package (crm/celery.py) would otherwise default them to production.
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")


def setup_django():
    """Django on the bench database, with bench_settings (the test settings, with uploads and the
    on-disk broker under bench/out, so a fresh clone needs no var/ and no bench message ever
    reaches a development worker)."""
    for folder in ("media", "broker", "broker-processed", "broker-control"):
        (OUT / folder).mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = BENCH_DB
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    import django

    django.setup()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def summary(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 0.50), percentile(samples, 0.95)


Params = dict | Callable[[int], dict] | None
FLOOR_URL = "/_bench/floor/"  # bench/bench_urls.py
EXPLAIN = "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) "
READ_ONLY = {"SELECT", "VALUES", "TABLE"}
WRITES = {"INSERT", "UPDATE", "DELETE", "WITH"}  # WITH: may hold a data-modifying part


def timed(http, url: str, params: Params = None, runs: int = 40, *, headers: dict | None = None,
          status: int = 200, before_each: Callable[[], None] | None = None) -> list[float]:
    """Milliseconds of `runs` GETs through Django's whole request cycle (the test client: middleware,
    session, the view, rendering; no HTTP server), after one warm-up. `params` may be a function of
    the run's index (a search rotating over fragments). Every answer must have `status`.
    `before_each` runs before each request, untimed."""
    def params_at(i: int) -> dict | None:
        return params(i) if callable(params) else params

    http.get(url, params_at(0), headers=headers)
    samples = []
    for i in range(runs):
        if before_each is not None:
            before_each()
        started = time.perf_counter()
        response = http.get(url, params_at(i), headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == status, (url, params_at(i), response.status_code)
    return samples


def captured(http, url: str, params: dict | None = None, *, headers: dict | None = None):
    """The response and the statements (CaptureQueriesContext's entries) of one GET."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = http.get(url, params, headers=headers)
    return response, queries.captured_queries


def _statement_kind(sql: str) -> str:
    words = sql.lstrip(" \t\n(").split(None, 1)
    return words[0].upper() if words else ""


def _statements(sql: str) -> list[str]:
    """The statements of one logged query: a page may send several in one round trip (the board's
    and the clients table's frames), and EXPLAIN takes one statement (given several, psycopg runs
    them all and answers the first one's plan). Split by sqlparse (Django's own dependency), which
    reads quoted literals, so a ';' in a value merged into the text does not split it."""
    import sqlparse

    return [part.strip().rstrip(";").strip() for part in sqlparse.split(sql) if part.strip().rstrip(";").strip()]


def sql_times(queries: Iterable[dict], repeat: int = 3) -> tuple[float, float]:
    """(execution, planning) milliseconds of the statements a page issued, from PostgreSQL's own
    clock: each is run again under EXPLAIN (ANALYZE, TIMING OFF) - TIMING OFF because per-node
    timing inflates the total it is not needed for - and "Execution Time" / "Planning Time" summed;
    the median of `repeat` passes, all in one transaction rolled back at the end. The statements
    are replayed as logged: with psycopg's client-side binding (Django's default) the logged text,
    parameters merged, is exactly what the server received. Reads are explained as they are;
    writes (a session save, a data-modifying WITH) too, everything in a savepoint of its own (a
    second insert of the same key fails, and then counts as nothing); SET is run so that what follows is planned as
    the page planned it; transaction control (SAVEPOINT, RELEASE) costs nothing to speak of and is
    skipped. A query of several statements is explained statement by statement (_statements)."""
    from django.db import DatabaseError, connection, transaction

    statements = [part for q in queries if q.get("sql") for part in _statements(q["sql"])]
    passes = []
    with transaction.atomic(), connection.cursor() as cursor:
        for _ in range(repeat):
            execution = planning = 0.0
            for sql in statements:
                kind = _statement_kind(sql)
                if kind == "SET":
                    cursor.execute(sql)
                    continue
                if kind not in READ_ONLY | WRITES:
                    continue
                try:
                    with transaction.atomic():  # a savepoint: a failed statement costs nothing after it
                        cursor.execute(EXPLAIN + sql)
                        plan = cursor.fetchone()[0]
                except DatabaseError:
                    continue
                plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]
                execution += plan.get("Execution Time", 0.0)
                planning += plan.get("Planning Time", 0.0)
            passes.append((execution, planning))
        transaction.set_rollback(True)
    return (round(statistics.median(p[0] for p in passes), 2), round(statistics.median(p[1] for p in passes), 2))


def sql_execution_ms(queries: Iterable[dict], repeat: int = 3) -> float:
    """The SQL execution time of a page's statements (see sql_times)."""
    return sql_times(queries, repeat)[0]


def first_view(http, key: str, url: str, forget: Callable[[], None], runs: int) -> dict:
    """`{key}_first_view_p50_ms`: the page as its first view in a process draws it, with the markup
    kept by crm.drawn forgotten (`forget`) before each request: what a reader sees after a deploy or
    a worker's restart, or when everything the page shows changed. The page's p50 (measure_page) is
    the one users get by default, its markup kept after the first view."""
    p50 = summary(timed(http, url, runs=runs, before_each=forget))[0]
    print(f"{key + ' (first view)':34} p50 {p50:7.1f} ms", flush=True)
    return {f"{key}_first_view_p50_ms": p50}


def framework_floor(http, runs: int = 40) -> float:
    """p50 ms of a trivial authenticated view (bench/bench_urls.py) through the same middleware, for
    the user `http` is logged in as: what any page costs before its own work."""
    return summary(timed(http, FLOOR_URL, runs=max(runs, 20)))[0]


def floor_ratio(p50: float, floor_ms: float, sql_ms: float) -> float:
    """DESIGN §12: a page's p50 over (framework floor + its own SQL execution)."""
    return round(p50 / (floor_ms + sql_ms), 2)


def measure_page(http, key: str, url: str, params: Params = None, *, runs: int, floor_ms: float,
                 headers: dict | None = None, status: int = 200) -> dict:
    """One page's figures under `key`: p50 / p95 of `runs` requests, and of the same request(s):
    the query count (the largest over the distinct parameters a rotating `params` takes), the SQL
    execution and planning time (the median over them) and the floor ratio."""
    samples = timed(http, url, params, runs, headers=headers, status=status)
    p50, p95 = summary(samples)
    variants = [params(i) for i in range(runs)] if callable(params) else [params]
    variants = [v for i, v in enumerate(variants) if v not in variants[:i]]
    counts, executions, plannings = [], [], []
    for variant in variants:
        _response, queries = captured(http, url, variant, headers=headers)
        execution, planning = sql_times(queries)
        counts.append(len(queries))
        executions.append(execution)
        plannings.append(planning)
    sql_ms = round(statistics.median(executions), 2)
    figures = {f"{key}_p50_ms": p50, f"{key}_p95_ms": p95, f"{key}_queries": max(counts), f"{key}_sql_ms": sql_ms,
               f"{key}_sql_planning_ms": round(statistics.median(plannings), 2),
               f"{key}_floor_ratio": floor_ratio(p50, floor_ms, sql_ms)}
    print(f"{key:34} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  {max(counts):2} queries  SQL {sql_ms:6.2f} ms  "
          f"floor ratio {figures[f'{key}_floor_ratio']:5.2f}", flush=True)
    return figures


class _Attributes(HTMLParser):
    def __init__(self, wanted: Callable[[dict], bool]):
        super().__init__()
        self.wanted, self.found = wanted, []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if self.wanted(attributes):
            self.found.append(attributes)


def find_elements(page: str, **attributes: str) -> list[dict]:
    """The attributes (entities decoded) of the elements of an HTML page having all the given
    ones (underscores in names are hyphens: hx_trigger="every 4s")."""
    wanted = {name.replace("_", "-"): value for name, value in attributes.items()}
    parser = _Attributes(lambda attrs: all(attrs.get(name) == value for name, value in wanted.items()))
    parser.feed(page)
    return parser.found


def git_state() -> dict:
    """The commit measured, whether the work tree differed from it, and whether it did outside the
    bench scripts and CI (then the figures are not the commit's). Read-only git calls: no index
    refresh, no lock."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, env=env, capture_output=True,
                                text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain"], cwd=ROOT, env=env,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None, "dirty_outside_bench": None}
    paths = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit, "dirty": bool(paths),
            "dirty_outside_bench": any(not path.startswith(("bench/", ".ci/")) for path in paths)}


def emit(result: dict) -> None:
    """Bench scripts end with one JSON object on the last line, with the commit it measured."""
    print(json.dumps({**result, **git_state()}, ensure_ascii=False), flush=True)


__all__ = ["setup_django", "summary", "emit", "statistics", "git_state", "timed", "captured", "sql_times",
           "sql_execution_ms", "framework_floor", "floor_ratio", "measure_page", "find_elements", "ROOT", "OUT",
           "BENCH_DB", "stop", "wait_answering"]


def fail(message: str) -> None:
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def ensure_database() -> None:
    """Create the bench database when it does not exist (the script then migrates it)."""
    import psycopg

    base, _slash, name = BENCH_DB.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def broker():
    from crm.celery import app

    return app.connection_for_write()


def purge_queue(queue: str) -> None:
    """Empty a bench's own queue (declared first, so a fresh broker has it)."""
    with broker() as conn:
        conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
        conn.default_channel.queue_purge(queue)


def stop(process: subprocess.Popen, seconds: float = 30) -> None:
    """Stop a server or worker the bench started: SIGTERM, then SIGKILL after `seconds`."""
    import signal

    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_answering(process: subprocess.Popen, log: Path, ask: Callable[[], int], expected: int, what: str,
                   seconds: float = 60) -> None:
    """Until the server the bench started answers `ask()` (an HTTP status) with `expected`; a server
    that exits, answers otherwise or stays silent for `seconds` fails the bench with its log."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            fail(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            status = ask()
        except OSError:
            if time.monotonic() > deadline:
                fail(f"the server did not answer within {seconds:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
            continue
        if status != expected:
            fail(f"the server answered {status} to {what}, not {expected}")
        return
