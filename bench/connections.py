"""What a new database connection per request costs (issue 13, point 3).

    .venv/bin/python bench/connections.py [--runs 200]

The framework floor's view (bench_urls.py: signed in, the whole middleware stack, the session and
the user read from PostgreSQL) served by Django's WSGI handler as a WSGI server calls it, so
that Django's request signals close the connection as they do in production (the test client
keeps it open, whatever the settings say): first with a new connection per request
(`CONN_MAX_AGE` 0, the base settings), then with the production settings' persistent connection
checked before each request's first query (`CONN_MAX_AGE` 600, `CONN_HEALTH_CHECKS`); the two
alternate in blocks, so both meet the same machine. Also the bare connect (psycopg's connect and
Django's set-up of the connection) timed alone. Needs generate_clients.py first (its users).
The last line is one JSON object.
"""

import argparse
import time

from common import FLOOR_URL, emit, setup_django, summary

MODES = {"per_request": {"CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False},
         "persistent": {"CONN_MAX_AGE": 600, "CONN_HEALTH_CHECKS": True}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=4, help="blocks of runs / blocks requests, alternating the modes")
    args = parser.parse_args()
    setup_django()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.db.backends.signals import connection_created
    from django.test import Client as HttpClient

    from crm.models import User

    http = HttpClient()
    http.force_login(User.objects.get(username="bench-manager0"))
    handler = WSGIHandler()

    def request() -> float:
        statuses = []
        started = time.perf_counter()
        response = handler(http._base_environ(PATH_INFO=FLOOR_URL), lambda status, headers: statuses.append(status))
        b"".join(response)
        response.close()  # request_finished: Django closes the connection here unless it is kept
        elapsed = (time.perf_counter() - started) * 1000
        assert statuses == ["200 OK"], statuses
        return elapsed

    opened = []
    connection_created.connect(lambda sender, connection, **kwargs: opened.append(1), weak=False)
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    connects_made = dict.fromkeys(MODES, 0)
    per_block = max(1, args.runs // args.blocks)
    for _block in range(args.blocks):
        for mode, options in MODES.items():
            connection.close()
            connection.settings_dict.update(options)
            request()  # warm-up (and, kept, the connection's first opening)
            opened.clear()
            samples[mode] += [request() for _ in range(per_block)]
            connects_made[mode] += len(opened)
    connection.close()
    # what is compared is what is meant: a connection per request, and none once kept
    assert connects_made == {"per_request": per_block * args.blocks, "persistent": 0}, connects_made
    connects = []
    for _ in range(per_block):
        started = time.perf_counter()
        connection.ensure_connection()
        connects.append((time.perf_counter() - started) * 1000)
        connection.close()

    result = {}
    for mode, values in samples.items():
        result[f"floor_wsgi_{mode}_p50_ms"], result[f"floor_wsgi_{mode}_p95_ms"] = summary(values)
    result["connect_p50_ms"], result["connect_p95_ms"] = summary(connects)
    result["connection_per_request_cost_ms"] = round(result["floor_wsgi_per_request_p50_ms"] - result["floor_wsgi_persistent_p50_ms"], 1)
    for key, value in result.items():
        print(f"{key:34} {value:7.1f}", flush=True)
    emit(result)


if __name__ == "__main__":
    main()
