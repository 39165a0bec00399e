"""Every page and partial not counted elsewhere: its query count, the same at two data sizes."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Notification
from deals.models import Sale, Stage
from tests.conftest import HX
from tests.factories import ClientFactory, DealFactory, UserFactory, role

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(admin):
    client = ClientFactory(responsible=admin)
    deal = DealFactory(client=client, responsible=admin)
    return {"client": client, "deal": deal, "stage": deal.stage, "funnel": deal.stage.line.funnel}


def grow(size, admin, world):
    """More of everything the pages list: users, deals, sales, notifications, stages."""
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.get_for_model(world["funnel"])  # a per-process cache: warm it, or counts vary by test order
    for i in range(size):
        UserFactory(role=role("Manager"))
        other = DealFactory(client=world["client"], responsible=admin)
        Sale.objects.create(deal=world["deal"], client=world["client"], player_id="p", amount=10)
        Notification.objects.create(user=admin, kind="mention", text=f"n{i}")
        Stage.objects.create(line=world["stage"].line, name=f"extra {i}", position=100 + i)
        del other


PAGES = [
    # (name, url kwargs from world, headers, expected queries)
    ("deals:detail", lambda w: [w["deal"].pk], HX, 5),  # user with perms, deal, sales, tags, custom fields
    ("deals:edit", lambda w: [w["deal"].pk], HX, 6),
    ("deals:sale", lambda w: [w["deal"].pk], HX, 2),
    ("deals:quick", lambda w: [w["client"].pk], HX, 4),  # … and whether a line distributes
    ("deals:funnels", lambda w: [], {}, 2),
    ("deals:funnel-access", lambda w: [w["funnel"].pk], HX, 6),
    ("deals:stage-delete", lambda w: [w["funnel"].pk, w["stage"].pk], HX, 5),
    ("crm:notifications", lambda w: [], {}, 3),
    ("tasks:types", lambda w: [], {}, 2),
    ("imports:upload", lambda w: [], {}, 2),
    ("clients:templates", lambda w: [], {}, 3),
]


@pytest.mark.parametrize("size", [1, 12])
@pytest.mark.parametrize("name,args,headers,queries", PAGES, ids=[p[0] for p in PAGES])
def test_page_query_count_is_flat(size, name, args, headers, queries, admin_client, admin, world,
                                  django_assert_num_queries):
    grow(size, admin, world)
    with django_assert_num_queries(queries):
        response = admin_client.get(reverse(name, args=args(world)), headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize("size", [1, 12])
def test_import_steps_and_send_form_query_counts(size, admin_client, admin, world, django_assert_num_queries):
    import io

    from openpyxl import Workbook

    from imports.models import ImportJob

    grow(size, admin, world)
    book = Workbook()
    book.active.append(["ФИО", "Телефон"])
    for i in range(size):
        book.active.append([f"c{i}", f"+7 916 000 {i:04d}"])
    data = io.BytesIO()
    book.save(data)
    admin_client.post(reverse("imports:upload"), {"file": SimpleUploadedFile("q.xlsx", data.getvalue())})
    job = ImportJob.objects.get()
    with django_assert_num_queries(5):  # user with perms, job, custom fields, remembered mapping, stages
        admin_client.get(reverse("imports:map", args=[job.pk]))
    admin_client.post(reverse("imports:map", args=[job.pk]), {"col_0": "name", "col_1": "phone", "duplicates": "skip"})
    ClientFactory(phone="+79160000000")  # the first row's phone: the preview finds its duplicate
    # user with perms, job, custom fields; the rows' duplicates: the phones among clients' phones and
    # among their other phones, the clients found, this job's records of them
    with django_assert_num_queries(7):
        admin_client.get(reverse("imports:preview", args=[job.pk]))
    with django_assert_num_queries(2):  # user with perms, job
        admin_client.get(reverse("imports:job", args=[job.pk]), headers=HX)
    clients = ClientFactory.create_batch(size)
    with django_assert_num_queries(2):  # user with perms, matching ids
        admin_client.post(reverse("messenger:send"), {"channel": "email", "scope": "ids", "ids": [c.pk for c in clients]}, headers=HX)


@pytest.mark.parametrize("size", [1, 40])
def test_import_sheet_step_finished_job_and_report_query_counts(size, admin_client, admin, django_assert_num_queries):
    import io

    from openpyxl import Workbook

    from imports import services
    from imports.models import ImportJob

    book = Workbook()
    book.active.append(["ФИО", "Телефон"])
    for i in range(size):
        book.active.append([f"c{i}", f"+7 916 000 {i:04d}", "x" * 40])  # a third cell: no column for it, still read
        book.active.append([None, f"+7 916 111 {i:04d}"])  # no name: a failed row, listed on the finished page
    book.create_sheet("Второй").append(["ФИО"])
    data = io.BytesIO()
    book.save(data)
    admin_client.post(reverse("imports:upload"), {"file": SimpleUploadedFile("q.xlsx", data.getvalue())})
    job = ImportJob.objects.get()
    with django_assert_num_queries(2):  # user with perms, job
        admin_client.get(reverse("imports:sheet", args=[job.pk]))
    admin_client.post(reverse("imports:sheet", args=[job.pk]), {"sheet": job.sheet or "Sheet"})
    admin_client.post(reverse("imports:map", args=[job.pk]), {"col_0": "name", "col_1": "phone", "duplicates": "skip"})
    admin_client.post(reverse("imports:preview", args=[job.pk]))
    services.import_run(job_id=job.pk)
    with django_assert_num_queries(3):  # user with perms, job, the first rows not imported
        page = admin_client.get(reverse("imports:job", args=[job.pk])).content.decode()
    assert page.count("the full name is required") == min(size, 50)
    with django_assert_num_queries(3):  # user with perms, job, the records (one cursor)
        response = admin_client.get(reverse("imports:report", args=[job.pk]))
        b"".join(response.streaming_content)
    assert ImportJob.objects.get().created == size
