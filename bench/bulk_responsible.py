"""Time a change of responsible for 100,000 clients, as the clients table's mass action does it.

    .venv/bin/python bench/bulk_responsible.py [--clients 100000]

Needs generate_clients.py first (1,000,000 clients for the DESIGN §12 figure). As `bench-admin`
(visibility all), the clients are ticked (every k-th live client by id, none of them already
`bench-manager0`'s, so each one changes) and given to `bench-manager0` through the code the two
requests and the worker run:

1. confirm: `bulk_selection` counts the selection and makes its digest (the confirmation dialog);
2. run: `bulk_selection` again and `clients_change_responsible` with that digest — over 1,000
   clients it checks the digest and starts a BULK_RESPONSIBLE job with the ids (the job's message
   goes to the bench's on-disk broker under bench/out/, where no worker reads it);
3. job: `crm.jobs.run` in this process, as the worker would: claim, heartbeat thread, chunks of
   500 clients each in its own transaction (lock, update, feed entries), the notification.

`bulk_responsible_100k_s` is the sum of the three (DESIGN §12: ≤ 30 s). Afterwards the clients get
back their responsible, `modified_at` and `modified_by`, the run's feed entries, notifications and
job are deleted and the tables vacuumed, so the database is left as the generator made it (also
when the run fails half way). Figures in seconds; the last line is one JSON object.
"""

import argparse
import time

from common import emit, setup_django

BUDGET_S = 30.0  # DESIGN §12: bulk responsible change of 100,000 clients


def label(count: int) -> str:
    return {100_000: "100k", 10_000: "10k"}.get(count, str(count))


def pick(new, count: int) -> list[int]:
    """Every k-th live client by id that `new` is not yet responsible for: spread over the table,
    as a filter's matches would be."""
    from clients.models import Client

    candidates = list(Client.objects.alive().exclude(responsible=new).order_by("pk").values_list("pk", flat=True))
    if len(candidates) < count:
        raise SystemExit(f"only {len(candidates)} clients to choose from, {count} wanted: run generate_clients.py")
    step = len(candidates) // count
    return candidates[::step][:count]


def restore(before: list[tuple], marks: dict) -> None:
    """Give the clients back what they had and remove what the run added (only that: other bench
    scripts may be writing feed entries and notifications meanwhile)."""
    from django.db import connection

    pks, responsibles, modified, modified_by = (list(column) for column in zip(*before, strict=True)) if before else ([], [], [], [])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE clients_client AS c SET responsible_id = t.r, modified_at = t.m, modified_by_id = t.mb "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::bigint[]) AS t(id, r, m, mb) WHERE c.id = t.id",
            [pks, responsibles, modified, modified_by],
        )
        cursor.execute("DELETE FROM crm_activity WHERE id > %s AND actor_id = %s AND field = 'responsible' AND client_id = ANY(%s::bigint[])",
                       [marks["activity"], marks["admin"], pks])
        cursor.execute("SELECT id FROM crm_job WHERE kind = 'bulk_responsible' AND owner_id = %s AND NOT (id = ANY(%s::uuid[]))",
                       [marks["admin"], marks["jobs"]])
        ours = [row[0] for row in cursor.fetchall()]
        for job_id in ours:  # the owner's "ready" notification links to the job
            cursor.execute("DELETE FROM crm_notification WHERE id > %s AND url LIKE %s", [marks["notification"], f"%{job_id}%"])
        cursor.execute("DELETE FROM crm_notification WHERE id > %s AND user_id = %s AND kind = 'assigned' AND params->>'about' = 'clients'",
                       [marks["notification"], marks["new"]])
        cursor.execute("DELETE FROM crm_job WHERE id = ANY(%s::uuid[])", [ours])
        for table in ("clients_client", "crm_activity"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100_000, help="clients whose responsible changes (default 100,000)")
    args = parser.parse_args()
    setup_django()
    import logging

    from django.db.models import Max
    from django.http import QueryDict

    from clients import services
    from clients.models import Client
    from clients.selectors import bulk_selection
    from crm import jobs
    from crm.models import Activity, Job, Notification, User

    logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # "No hostname was supplied" (on-disk broker)
    # The CI's tiny run (--clients 500) takes the job path too, as the 100,000 do.
    services.BULK_INLINE_MAX = min(services.BULK_INLINE_MAX, args.clients - 1)
    admin = User.objects.get(username="bench-admin")
    new = User.objects.get(username="bench-manager0")
    ids = pick(new, args.clients)
    before = list(Client.objects.filter(pk__in=ids).values_list("pk", "responsible_id", "modified_at", "modified_by_id"))
    marks = {"admin": admin.pk, "new": new.pk, "activity": Activity.objects.aggregate(m=Max("pk"))["m"] or 0,
             "notification": Notification.objects.aggregate(m=Max("pk"))["m"] or 0,
             "jobs": [str(pk) for pk in Job.objects.filter(kind=Job.Kind.BULK_RESPONSIBLE).values_list("pk", flat=True)]}
    posted = QueryDict(mutable=True)
    posted.setlist("ids", [str(pk) for pk in ids])
    posted["scope"] = "ids"
    result: dict = {"clients": Client.objects.count(), "bulk_responsible_clients": len(ids)}
    key = f"bulk_responsible_{label(len(ids))}"
    try:
        started = time.perf_counter()
        digest = bulk_selection(admin, posted).digest  # the confirmation
        confirm_s = time.perf_counter() - started

        started = time.perf_counter()
        selection = bulk_selection(admin, posted)  # the run request
        job = services.clients_change_responsible(actor=admin, clients=selection.queryset, responsible=new, digest=digest)
        request_s = time.perf_counter() - started

        started = time.perf_counter()
        assert isinstance(job, Job), job
        job = jobs.run(job.pk)
        assert job is not None and job.state == Job.State.DONE, job and job.error
        job_s = time.perf_counter() - started

        changed = Client.objects.filter(pk__in=ids, responsible=new).count()
        entries = Activity.objects.filter(pk__gt=marks["activity"], field="responsible").count()
        assert changed == entries == len(ids), (changed, entries, len(ids))
        total = confirm_s + request_s + job_s
        result.update({
            f"{key}_s": round(total, 2), f"{key}_confirm_s": round(confirm_s, 2), f"{key}_request_s": round(request_s, 2),
            f"{key}_job_s": round(job_s, 2),
            "bulk_responsible_budget_met": total <= BUDGET_S if len(ids) == 100_000 else None,
        })
        print(f"{len(ids)} clients: confirm {confirm_s:.2f} s, request {request_s:.2f} s, job {job_s:.2f} s, "
              f"total {total:.2f} s", flush=True)
    finally:
        restore(before, marks)
    emit(result)


if __name__ == "__main__":
    main()
