"""Time the clients table against the bench database (run generate_clients.py first).

    .venv/bin/python bench/clients_table.py [--runs 40]

Every figure as the admin (visibility *all*: nothing narrows the scan) and as bench-manager0
(own visibility: keys with `_manager`). For each: p50/p95 (ms, server side through Django's full
request cycle), the query count, the SQL execution time of those queries (EXPLAIN ANALYZE) and
the floor ratio, p50 / (framework floor + SQL), the floor being a trivial authenticated view
timed in the same run (`framework_floor_ms`). The table page also as a first view draws it
(`_first_view_p50_ms`): the markup crm.drawn keeps forgotten before each request. The last line is one JSON object.

What is timed is what is counted, and as the browser asks for it: the page as a person opens it
(`clients_table`, the headline figure: the full page), the table partial the page fetches when
the search box or a filter changes (`clients_table_partial`, and filtered and search figures,
all with HX-Request), and the deferred count the page fetches after it renders.
"""

import argparse

from common import emit, first_view, framework_floor, measure_page, setup_django


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    setup_django()
    from django.test import Client as HttpClient

    from clients.models import Client, Tag
    from clients.selectors import DRAWN_ROWS
    from crm.models import User

    admin = User.objects.get(username="bench-admin")
    manager = User.objects.get(username="bench-manager0")
    tag = Tag.objects.get(name="bench-tag0")
    hx = {"HX-Request": "true"}
    # common fragments (a fourteenth of all rows each) and rare ones (a single client)
    name_fragments = ["Смирн", "Кузне", "Taylo", "Волко", "Evans", "Петро", "Brow", "Новик"]
    rare_fragments = ["Анна 4242", "Smith John 77", "Мария 99999", "Laura 123456", "Иван 31337", "Sarah 8080"]
    phone_fragments = ["9161", "903555", "12345", "7777", "98765", "4321", "55512", "9990"]
    filtered = {"responsible": manager.pk, "tags": tag.pk}  # the manager's own clients, for both users
    scenarios = {  # key: (url, params, headers)
        "clients_table": ("/clients/", None, None),
        "clients_table_partial": ("/clients/", None, hx),
        "clients_filtered": ("/clients/", filtered, hx),
        "clients_search_name": ("/clients/", lambda i: {"q": name_fragments[i % len(name_fragments)]}, hx),
        "clients_search_name_rare": ("/clients/", lambda i: {"q": rare_fragments[i % len(rare_fragments)]}, hx),
        "clients_search_phone": ("/clients/", lambda i: {"q": phone_fragments[i % len(phone_fragments)]}, hx),
        # the deferred total, fetched by the page after it renders (capped at CLIENTS_COUNT_CAP)
        "clients_count_filtered": ("/clients/count/", filtered, hx),
        "clients_count_all": ("/clients/count/", None, hx),
    }
    result = {"clients": Client.objects.count(), "clients_manager_sees": Client.objects.alive().filter(responsible=manager).count()}
    for user, suffix in ((admin, ""), (manager, "_manager")):
        http = HttpClient()
        http.force_login(user)
        floor_ms = framework_floor(http, args.runs)
        result[f"framework_floor{suffix}_ms"] = floor_ms
        print(f"framework floor{suffix:26} p50 {floor_ms:7.1f} ms", flush=True)
        for key, (url, params, headers) in scenarios.items():
            result.update(measure_page(http, f"{key}{suffix}", url, params, runs=args.runs, floor_ms=floor_ms, headers=headers))
            if key == "clients_table":
                result.update(first_view(http, f"{key}{suffix}", url, DRAWN_ROWS.clear, args.runs))
    emit(result)


if __name__ == "__main__":
    main()
