"""Time the clients table against the bench database (run generate_clients.py first).

    .venv/bin/python bench/clients_table.py [--runs 40]

Prints p50/p95 (ms, server side through Django's full request cycle) and query counts;
the last line is one JSON object.
"""

import argparse
import time

from common import emit, setup_django, summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from django.test import Client as HttpClient
    from django.test.utils import CaptureQueriesContext

    from clients.models import Client, Tag
    from crm.models import User

    admin = User.objects.get(username="bench-admin")
    manager = User.objects.get(username="bench-manager0")
    tag = Tag.objects.get(name="bench-tag0")
    total = Client.objects.count()
    http = HttpClient()
    http.force_login(admin)
    hx = {"HX-Request": "true"}
    # common fragments (a fourteenth of all rows each) and rare ones (a single client)
    name_fragments = ["Смирн", "Кузне", "Taylo", "Волко", "Evans", "Петро", "Brow", "Новик"]
    rare_fragments = ["Анна 4242", "Smith John 77", "Мария 99999", "Laura 123456", "Иван 31337", "Sarah 8080"]
    phone_fragments = ["9161", "903555", "12345", "7777", "98765", "4321", "55512", "9990"]
    scenarios = {
        "clients_table": lambda i: ("/clients/", {}),
        "clients_filtered": lambda i: ("/clients/", {"responsible": manager.pk, "tags": tag.pk}),
        "clients_search_name": lambda i: ("/clients/", {"q": name_fragments[i % len(name_fragments)]}),
        "clients_search_name_rare": lambda i: ("/clients/", {"q": rare_fragments[i % len(rare_fragments)]}),
        "clients_search_phone": lambda i: ("/clients/", {"q": phone_fragments[i % len(phone_fragments)]}),
        # the deferred total, fetched by the page after it renders (capped at CLIENTS_COUNT_CAP)
        "clients_count_filtered": lambda i: ("/clients/count/", {"responsible": manager.pk, "tags": tag.pk}),
        "clients_count_all": lambda i: ("/clients/count/", {}),
    }
    result = {"clients": total}
    for key, make in scenarios.items():
        url, params = make(0)
        http.get(url, params, headers=hx)  # warm up
        samples = []
        for i in range(args.runs):
            url, params = make(i)
            started = time.perf_counter()
            response = http.get(url, params, headers=hx)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        with CaptureQueriesContext(connection) as queries:
            http.get(url, params)  # the full page, as a person first opens it
        p50, p95 = summary(samples)
        result[f"{key}_p50_ms"] = p50
        result[f"{key}_p95_ms"] = p95
        result[f"{key}_queries"] = len(queries)
        print(f"{key:24} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   {len(queries)} queries", flush=True)
    emit(result)


if __name__ == "__main__":
    main()
