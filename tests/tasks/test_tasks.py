import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from crm import jobs
from crm.models import Activity, Job, Notification
from tasks import services
from tasks.models import Task, TaskType
from tests.conftest import HX, wait_for
from tests.factories import ClientFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def make_task(**fields):
    defaults = {"type": TaskType.objects.first(), "description": "Позвонить", "deadline": timezone.now() + timedelta(days=1)}
    defaults.update(fields)
    if "client" not in defaults:
        defaults["client"] = ClientFactory(responsible=defaults.get("responsible"))
    return Task.objects.create(**defaults)


def test_default_types_and_admins_add_and_rename(admin_client):
    from django.utils.translation import override

    with override("en"):
        assert [str(t) for t in TaskType.objects.all()] == ["Contact the client", "Birthday greeting", "Meeting"]
    with override("ru"):
        assert str(TaskType.objects.first()) == "Связаться с клиентом"
    admin_client.post(reverse("tasks:types"), {"name": "Звонок"})
    first = TaskType.objects.first()
    admin_client.post(reverse("tasks:types"), {"pk": first.pk, "name": "Связаться"})
    assert sorted(TaskType.objects.values_list("name", flat=True)) == ["Birthday greeting", "Meeting", "Звонок", "Связаться"]


def test_create_from_the_card_limits_and_feed(manager_client, manager):
    client = ClientFactory(responsible=manager)
    url = reverse("tasks:create", args=[client.pk])
    form = manager_client.get(url, headers=HX).content.decode()
    assert "Task description" in form and "Contact the client" in form
    base = {"type": TaskType.objects.first().pk, "responsible": manager.pk, "deadline": "2030-05-01T10:30"}
    too_long = manager_client.post(url, {**base, "description": "я" * 201}, headers=HX)
    assert "at most 200 characters" in too_long.content.decode() and not Task.objects.exists()
    assert "HX-Redirect" in manager_client.post(url, {**base, "description": "я" * 200}, headers=HX).headers
    task = Task.objects.get()
    assert timezone.localtime(task.deadline).strftime("%H:%M") == "10:30"  # the user's zone (Moscow)
    assert Activity.objects.get(kind="task").field == "created"
    card = manager_client.get(client.get_absolute_url()).content.decode()
    assert "я" * 200 in card and "+ New task" in card


def test_deadline_is_read_in_the_users_time_zone(client, db):
    user = UserFactory(role=role("Manager"), time_zone="Asia/Yekaterinburg")  # UTC+5
    buyer = ClientFactory(responsible=user)
    client.force_login(user)
    client.post(reverse("tasks:create", args=[buyer.pk]), {"type": TaskType.objects.first().pk, "responsible": user.pk,
                                                           "deadline": "2030-05-01T10:00", "description": "x"}, headers=HX)
    assert Task.objects.get().deadline.astimezone(timezone.UTC).strftime("%H:%M") == "05:00"


def test_complete_with_a_result_goes_to_the_feed(manager_client, manager):
    task = make_task(responsible=manager)
    response = manager_client.post(reverse("tasks:complete", args=[task.pk]), {"result": "Договорились на вторник"}, headers=HX)
    assert "HX-Redirect" in response.headers
    task.refresh_from_db()
    assert task.status == "done" and task.result == "Договорились на вторник" and task.completed_by == manager
    entry = Activity.objects.get(kind="task", field="done")
    assert entry.text == "Договорились на вторник"
    again = manager_client.post(reverse("tasks:complete", args=[task.pk]), {"result": "x"}, headers=HX)
    assert "already done" in again.content.decode()


def test_others_tasks_are_404(manager_client, admin):
    task = make_task(responsible=admin)
    assert manager_client.post(reverse("tasks:complete", args=[task.pk]), {"result": "x"}, headers=HX).status_code == 404
    task.refresh_from_db()
    assert task.status == "open"


def test_section_views_and_filters(admin_client, admin, manager):
    now = timezone.now()
    meeting = TaskType.objects.get(name="Meeting")
    make_task(responsible=admin, description="mine later", deadline=now + timedelta(days=3))
    make_task(responsible=admin, description="mine overdue", deadline=now - timedelta(hours=2))
    make_task(responsible=manager, description="theirs today", deadline=timezone.localtime().replace(hour=23, minute=59),
              type=meeting)
    make_task(responsible=manager, description="done", status="done", deadline=now - timedelta(days=1))
    names = lambda **p: [t.description for t in admin_client.get(reverse("tasks:list"), p).context["tasks"]]  # noqa: E731
    assert names(view="mine") == ["mine overdue", "mine later"]
    assert "theirs today" in names(view="today")
    assert names(view="overdue") == ["mine overdue"]
    assert set(names(view="all")) == {"mine later", "mine overdue", "theirs today", "done"}
    assert names(view="all", type=meeting.pk) == ["theirs today"]
    assert names(view="all", responsible=manager.pk) == ["theirs today", "done"]
    page = admin_client.get(reverse("tasks:list"), {"view": "overdue"}).content.decode()
    assert 'class="overdue' in page


@pytest.mark.parametrize("count", [10, 1000])
def test_section_query_count_is_flat(count, admin_client, admin, django_assert_num_queries):
    clients = Client.objects.bulk_create(Client(name=f"c{i}") for i in range(20))
    kind = TaskType.objects.first()
    Task.objects.bulk_create(Task(client=clients[i % 20], type=kind, description=f"t{i}", responsible=admin,
                                  deadline=timezone.now() + timedelta(hours=i)) for i in range(count))
    # user with perms, types, users, tasks (+client, type, responsible)
    with django_assert_num_queries(4):
        response = admin_client.get(reverse("tasks:list"), {"view": "all"})
    assert len(response.context["tasks"]) == min(count, 50)


@pytest.mark.parametrize("count", [1, 40])
def test_nav_counts(count, client, manager, django_assert_num_queries):
    for i in range(count):
        make_task(responsible=manager, deadline=timezone.now() + timedelta(hours=-1 if i % 2 else 5))
    client.force_login(manager)
    with django_assert_num_queries(2):  # user with perms, one aggregate
        page = client.get(reverse("tasks:counts"), headers=HX).content.decode()
    assert f">{count}<" in page and (f">{count // 2}<" in page if count > 1 else True)


def test_client_filters_without_tasks_and_overdue_combine(admin_client, admin):
    late = ClientFactory(name="Late", country="KZ")
    make_task(client=late, responsible=admin, deadline=timezone.now() - timedelta(hours=1))
    done_late = ClientFactory(name="Done late", country="KZ")
    make_task(client=done_late, responsible=admin, deadline=timezone.now() - timedelta(hours=1), status="done")
    ClientFactory(name="Never", country="KZ")
    ClientFactory(name="Never elsewhere", country="RU")
    names = lambda **p: sorted(row["name"] for row in admin_client.get(reverse("clients:list"), p).context["page"].rows)  # noqa: E731
    assert names(view="overdue") == ["Late"]
    assert names(view="no_tasks", country=["KZ"]) == ["Never"]


def test_bulk_add_task_one_per_client_inline(admin_client, admin, manager):
    clients = ClientFactory.create_batch(3)
    ids = [c.pk for c in clients]
    confirm = admin_client.post(reverse("tasks:bulk"), {"scope": "ids", "ids": ids}, headers=HX).content.decode()
    assert "One task for each of 3 clients." in confirm
    import re

    digest = re.search(r'name="digest" value="([0-9a-f]+)"', confirm).group(1)
    response = admin_client.post(reverse("tasks:bulk"), {
        "scope": "ids", "ids": ids, "digest": digest, "confirm": "1", "description": "Поздравить",
        "type": TaskType.objects.get(name="Birthday greeting").pk, "responsible": manager.pk, "deadline": "2030-01-01T12:00",
    }, headers=HX)
    page = response.content.decode()
    assert "3 of 3" in page and 'id="job-' in page  # the jobs' progress partial, finished
    assert sorted(Task.objects.values_list("client_id", flat=True)) == sorted(ids)
    assert Activity.objects.filter(kind="task").count() == 3
    job = Job.objects.get(kind=Job.Kind.BULK_TASK)
    assert (job.state, job.done, job.owner) == ("done", 3, admin)
    assert set(Task.objects.values_list("batch", flat=True)) == {job.pk}
    assert Notification.objects.filter(user=manager, kind="assigned").count() == 1
    services.tasks_bulk_run(job=job, progress=jobs.Progress(job))  # a retry creates nothing new
    assert Task.objects.count() == 3
    assert Activity.objects.filter(kind="task").count() == 3
    assert Notification.objects.filter(user=manager, kind="assigned").count() == 1


def test_bulk_add_is_admin_only_by_default(manager_client, manager):
    client = ClientFactory(responsible=manager)
    response = manager_client.post(reverse("tasks:bulk"), {"scope": "ids", "ids": [client.pk]}, headers=HX)
    assert response.status_code == 403 and not Task.objects.exists()
    assert "Add task" not in manager_client.get(reverse("clients:list")).content.decode()


# Reminders ------------------------------------------------------------------------------------


def test_reminder_before_the_deadline_and_when_overdue(manager, settings):
    settings.TASK_REMINDER_BEFORE_MINUTES = 30
    now = timezone.now()
    soon = make_task(responsible=manager, description="soon", deadline=now + timedelta(minutes=20))
    later = make_task(responsible=manager, description="later", deadline=now + timedelta(hours=5))
    assert services.reminders_send(now=now) == 1
    assert [n.text for n in Notification.objects.filter(user=manager)] == [Notification.objects.get().text]
    assert "soon" in Notification.objects.get().text
    assert services.reminders_send(now=now + timedelta(minutes=25)) == 1  # now overdue
    assert Notification.objects.filter(user=manager, kind="reminder").count() == 2
    soon.refresh_from_db()
    later.refresh_from_db()
    assert soon.reminded_before_at and soon.reminded_overdue_at and not later.reminded_before_at
    assert services.reminders_send(now=now + timedelta(minutes=26)) == 0


def test_the_job_running_twice_sends_each_reminder_once(manager):
    now = timezone.now()
    for i in range(20):
        make_task(responsible=manager, description=f"t{i}", deadline=now - timedelta(minutes=i + 1))
    assert services.reminders_send(now=now) == 20
    assert services.reminders_send(now=now) == 0
    assert Notification.objects.filter(kind="reminder").count() == 20


def test_a_run_that_dies_half_way_is_completed_by_the_next_without_doubles(manager):
    now = timezone.now()
    for i in range(10):
        make_task(responsible=manager, description=f"t{i}", deadline=now - timedelta(minutes=i + 1))
    with pytest.raises(RuntimeError):
        services.reminders_send(now=now, crash_after=4)  # the worker dies after four
    assert Notification.objects.filter(kind="reminder").count() == 4
    assert services.reminders_send(now=now) == 6
    assert Notification.objects.filter(kind="reminder").count() == 10
    assert Task.objects.filter(reminded_overdue_at__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_send_each_reminder_once():
    manager = UserFactory(role=role("Manager"))
    now = timezone.now()
    for i in range(30):
        make_task(responsible=manager, description=f"t{i}", deadline=now - timedelta(minutes=i + 1))
    barrier = threading.Barrier(2)
    counts = []

    def run():
        barrier.wait()
        try:
            counts.append(services.reminders_send(now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 30
    assert Notification.objects.filter(kind="reminder").count() == 30


def test_reminder_by_email_when_the_user_opts_in(smtp_mailer, db, django_capture_on_commit_callbacks):
    wants = UserFactory(role=role("Manager"), email="wants@example.com", email_reminders=True)
    skips = UserFactory(role=role("Manager"), email="skips@example.com", email_reminders=False)
    now = timezone.now()
    make_task(responsible=wants, deadline=now - timedelta(minutes=5))
    make_task(responsible=skips, deadline=now - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):  # mail goes after the commit
        services.reminders_send(now=now)
    assert [m.rcpt_tos for m in smtp_mailer.messages] == [["wants@example.com"]]
    assert Notification.objects.filter(kind="reminder").count() == 2


# A real worker on Redis ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_large_bulk_add_runs_in_a_real_worker_on_redis(celery_worker, client):
    admin = UserFactory(role=role("Admin"))
    clients = Client.objects.bulk_create(Client(name=f"c{i}") for i in range(services.BULK_INLINE_LIMIT + 50))
    job = services.tasks_bulk_start(actor=admin, client_ids=[c.pk for c in clients], type=TaskType.objects.first(),
                                    description="В воркере", responsible=admin,
                                    deadline=timezone.now() + timedelta(days=1))
    assert job.state == "queued"  # handed to the worker, not run in the request
    assert wait_for(lambda: Job.objects.get(pk=job.pk).state == "done"), open(celery_worker["process"].log_path).read()
    assert Task.objects.filter(batch=job.pk).count() == len(clients)
    client.force_login(admin)
    progress = client.get(reverse("crm:job", args=[job.pk]), headers=HX).content.decode()
    assert f"{len(clients)} of {len(clients)}" in progress


@pytest.mark.django_db(transaction=True)
def test_the_periodic_reminder_job_runs_in_a_real_worker(celery_worker):
    from tasks.tasks import reminders_send

    manager = UserFactory(role=role("Manager"))
    make_task(responsible=manager, deadline=timezone.now() - timedelta(minutes=3))
    reminders_send.apply_async(queue=celery_worker["queue"])
    assert wait_for(lambda: Notification.objects.filter(user=manager, kind="reminder").exists())
    reminders_send.apply_async(queue=celery_worker["queue"])
    # Nothing new is expected, so first wait for the worker to say the second run is over: it has
    # taken two reminder runs and is running nothing (a solo worker answers only between tasks).
    from crm.celery import app

    node = celery_worker["process"].node

    def second_run_over() -> bool:
        inspect = app.control.inspect(destination=[node], timeout=1)
        runs = ((inspect.stats() or {}).get(node) or {}).get("total", {}).get(reminders_send.name, 0)
        return runs >= 2 and (inspect.active() or {}).get(node) == []

    assert wait_for(second_run_over, timeout=30), open(celery_worker["process"].log_path).read()
    assert Notification.objects.filter(user=manager, kind="reminder").count() == 1


@pytest.mark.parametrize("extra", [1, 20])
def test_task_partials_query_counts(extra, admin_client, admin, django_assert_num_queries):
    from tests.factories import DealFactory

    client = ClientFactory(responsible=admin)
    for _ in range(extra):
        DealFactory(client=client)
        UserFactory()
    with django_assert_num_queries(8):  # user with perms, client, types (x2), users, deals, funnels (x2)
        admin_client.get(reverse("tasks:create", args=[client.pk]), headers=HX)
    clients = ClientFactory.create_batch(extra)
    with django_assert_num_queries(6):  # user with perms, matching ids, types (x2), users (x2: initial, choices)
        admin_client.post(reverse("tasks:bulk"), {"scope": "ids", "ids": [c.pk for c in clients]}, headers=HX)
    task = make_task(responsible=admin)
    with django_assert_num_queries(2):  # user with perms, task
        admin_client.get(reverse("tasks:complete", args=[task.pk]), headers=HX)


def test_a_task_done_meanwhile_gets_no_reminder(manager):
    now = timezone.now()
    task = make_task(responsible=manager, deadline=now - timedelta(minutes=5))
    Task.objects.filter(pk=task.pk).update(status="done")
    assert services._remind(task, "overdue", "reminded_overdue_at", now) is False
    assert not Notification.objects.filter(kind="reminder").exists()
