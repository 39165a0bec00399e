"""Possible duplicates (issue 18 point 5): found incrementally on create, edit, import and the
messenger, by the same E.164 phone, the same e-mail, or a similar name in the same city or company;
listed on a page and on the card; "Not a duplicate" for good; never merged."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clients import duplicates, services
from clients.models import Client, DuplicateSuggestion
from clients.phones import normalize_phone
from crm.models import Activity
from tests.conftest import HX
from tests.factories import ClientFactory, UserFactory, role
from tests.imports.conftest import service_import
from tests.imports.files import plain_xlsx

pytestmark = pytest.mark.django_db


def make(actor, **data) -> Client:
    """A client created as a user creates one (the form's service, phones normalised as the form does)."""
    if "phone" in data:
        data["phone"] = normalize_phone(data["phone"])
    data.setdefault("responsible", actor)
    return services.client_create(actor=actor, data=data)


def pairs() -> set[tuple[str, str, str]]:
    """Open pairs as (newer name, older name, kind)."""
    return {(s.client.name, s.other.name, s.kind)
            for s in DuplicateSuggestion.objects.filter(dismissed_at__isnull=True).select_related("client", "other")}


def test_mixed_phone_formats_are_one_phone(admin):
    first = make(admin, name="Анна Смирнова", phone="+7 909 123-45-67")
    for i, typed in enumerate(["8 909 123 45 67", "79091234567", "(909) 123-45-67"]):
        make(admin, name=f"Другой человек {i}", phone=typed)
    assert {("Другой человек 0", "Анна Смирнова", "phone"), ("Другой человек 1", "Анна Смирнова", "phone"),
            ("Другой человек 2", "Анна Смирнова", "phone")} <= pairs()
    assert DuplicateSuggestion.objects.filter(other=first).count() == 3


def test_an_extra_phone_matches_a_main_phone(admin):
    make(admin, name="Борис", phone="+79091110000", extra_phones=["+79092220000"])
    make(admin, name="Виктор", phone="8 909 222-00-00")
    assert pairs() == {("Виктор", "Борис", "phone")}


def test_upper_case_email_with_spaces_is_the_same_email(admin):
    make(admin, name="Ольга", email="olga@example.com")
    make(admin, name="Ольга Т.", email="OLGA@Example.COM")  # as the form leaves it: the case as typed
    stored = ClientFactory(name="Не Ольга", email="  Olga@example.com ")  # as an old import or the API left it
    duplicates.suggest_for([stored.pk])
    assert pairs() == {("Ольга Т.", "Ольга", "email"), ("Не Ольга", "Ольга", "email"), ("Не Ольга", "Ольга Т.", "email")}


def test_names_in_another_word_order_in_the_same_city(admin):
    make(admin, name="Иванов Иван", city="Тула")
    make(admin, name="иван  ИВАНОВ", city=" тула")
    assert pairs() == {("иван  ИВАНОВ", "Иванов Иван", "name")}


def test_a_similar_name_at_the_same_company(admin):
    make(admin, name="Кузнецов Иван Петрович", company="ООО Ромашка")
    make(admin, name="Кузнецоф Иван Петрович", company="ооо ромашка")
    assert pairs() == {("Кузнецоф Иван Петрович", "Кузнецов Иван Петрович", "name")}


def test_a_name_is_alike_when_every_word_of_the_shorter_one_is_in_the_other(admin):
    make(admin, name="Пономарёва Маргарита", city="Казань")
    make(admin, name="Пономарева Маргарита Олеговна", city="Казань")  # the patronymic added, ё written е
    make(admin, name="Котов Константин Иванович", city="Омск")
    make(admin, name="Новиков Константин Иванович", city="Омск")  # trigram similarity 0.72, but another surname
    make(admin, name="Кузнецова Ирина", city="Тула")
    make(admin, name="Кузнецова Алина", city="Тула")  # another first name
    assert pairs() == {("Пономарева Маргарита Олеговна", "Пономарёва Маргарита", "name")}
    DuplicateSuggestion.objects.all().delete()
    duplicates.rebuild()
    assert pairs() == {("Пономарева Маргарита Олеговна", "Пономарёва Маргарита", "name")}


def test_the_same_name_in_another_city_or_without_a_city_is_not_a_suggestion(admin):
    make(admin, name="Иванов Иван", city="Тула")
    make(admin, name="Иванов Иван", city="Омск")
    make(admin, name="Иванов Иван")
    make(admin, name="Петров Пётр", city="Тула")  # same city, another name
    assert pairs() == set()


def test_a_pair_is_stored_once_with_the_strongest_kind(admin):
    make(admin, name="Иванов Иван", city="Тула", phone="+79095550000", email="i@example.com")
    make(admin, name="Иван Иванов", city="Тула", phone="89095550000", email="I@example.com")
    assert pairs() == {("Иван Иванов", "Иванов Иван", "phone")}


def test_an_edit_finds_a_new_duplicate_and_drops_one_that_no_longer_holds(admin):
    a = make(admin, name="Алексей", phone="+79090000001")
    b = make(admin, name="Борис", phone="+79090000002")
    c = make(admin, name="Вера", phone="+79090000001")
    assert pairs() == {("Вера", "Алексей", "phone")}
    services.client_update(actor=admin, client=c, data={"phone": "+79090000002"})
    assert pairs() == {("Вера", "Борис", "phone")}  # the pair with Алексей no longer holds
    assert a.pk and b.pk


def test_a_dismissed_pair_is_never_suggested_again_in_either_order(admin):
    old = make(admin, name="Алексей", phone="+79090000001")
    new = make(admin, name="Вера", phone="+79090000001")
    suggestion = DuplicateSuggestion.objects.get()
    services.duplicate_dismiss(actor=admin, suggestion=suggestion)
    services.client_update(actor=admin, client=new, data={"name": "Вера Н.", "email": "v@example.com"})
    services.client_update(actor=admin, client=old, data={"email": "v@example.com"})
    duplicates.suggest_for([old.pk, new.pk])
    duplicates.rebuild()
    assert pairs() == set()
    assert DuplicateSuggestion.objects.get().dismissed_by == admin
    # both cards' feeds say so
    assert Activity.objects.filter(field="duplicate", client__in=[old, new]).count() == 2


def test_a_deleted_client_is_not_suggested(admin):
    gone = make(admin, name="Удалённый", phone="+79090000009")
    services.clients_soft_delete(actor=admin, clients=Client.objects.filter(pk=gone.pk))
    make(admin, name="Новый", phone="+79090000009")
    assert pairs() == set()
    duplicates.rebuild()
    assert pairs() == set()


def test_deleting_a_client_hides_its_pairs(admin_client, admin):
    make(admin, name="Старый", phone="+79090000009")
    newer = make(admin, name="Новый", phone="+79090000009")
    services.clients_soft_delete(actor=admin, clients=Client.objects.filter(pk=newer.pk))
    page = admin_client.get(reverse("clients:duplicates")).content.decode()
    assert "Старый" not in page and "No possible duplicates." in page


def test_rebuild_finds_what_the_incremental_lookup_finds(admin):
    make(admin, name="Анна Смирнова", phone="+79091234567", city="Тула")
    make(admin, name="Другая", phone="89091234567")
    make(admin, name="Смирнова Анна", city="тула")
    make(admin, name="Ольга", email="OLGA@example.com")
    make(admin, name="Ольга Т.", email="olga@example.com")
    found = pairs()
    assert len(found) == 3
    DuplicateSuggestion.objects.all().delete()
    assert duplicates.rebuild() == 3
    assert pairs() == found


def test_find_duplicates_command(admin):
    from io import StringIO

    from django.core.management import call_command

    make(admin, name="Ольга", email="olga@example.com")
    make(admin, name="Ольга Т.", email="olga@example.com")
    DuplicateSuggestion.objects.all().delete()
    out = StringIO()
    call_command("find_duplicates", stdout=out)
    assert pairs() == {("Ольга Т.", "Ольга", "email")} and "1 new pairs, 1 open" in out.getvalue()


# The import --------------------------------------------------------------------------------------


def test_an_import_chunk_suggests_duplicates_against_the_table_and_within_the_file(admin, settings):
    settings.IMPORT_CHUNK_ROWS = 2
    ClientFactory(name="Петров Пётр", city="Тула", phone="+79260000001")
    ClientFactory(name="Есть Почта", email="mail@example.com")
    rows = [
        ["ФИО", "Телефон", "Email", "Город"],
        ["Пётр Петров", "+7 926 000-00-02", None, "тула"],  # similar name, same city as a client in the table
        ["Новая", None, "MAIL@example.com ", None],  # an e-mail of the table: skip mode skips it
        ["Сидорова Анна", "8 926 000-00-03", None, "Омск"],
        ["Другая", None, None, None],
        ["Анна Сидорова", "+7 926 000-00-04", None, "Омск"],  # a row of an earlier chunk, in another word order
    ]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone", 2: "email", 3: "city"}, duplicates="skip")
    assert (job.created, job.skipped) == (4, 1), list(job.records.values_list("row", "outcome", "reason"))
    assert pairs() == set()  # not in the import's chunks: a worker looks once it is done (the test below)
    duplicates.suggest_for_import(job.pk)
    assert pairs() == {("Пётр Петров", "Петров Пётр", "name"), ("Анна Сидорова", "Сидорова Анна", "name")}


def test_an_import_that_updates_a_client_keeps_its_similar_name_pair(admin):
    make(admin, name="Кузнецов Иван Петрович", city="Тула")
    known = make(admin, name="Кузнецоф Иван Петрович", city="Тула", phone="+79265550001")
    assert pairs() == {("Кузнецоф Иван Петрович", "Кузнецов Иван Петрович", "name")}
    rows = [["ФИО", "Телефон", "Email"], ["Кузнецоф Иван Петрович", "8 926 555-00-01", "k@example.com"]]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone", 2: "email"}, duplicates="update")
    duplicates.suggest_for_import(job.pk)
    assert job.updated == 1 and Client.objects.get(pk=known.pk).email == "k@example.com"
    assert pairs() == {("Кузнецоф Иван Петрович", "Кузнецов Иван Петрович", "name")}


def test_the_stored_name_key_follows_every_way_a_name_changes(admin):
    """Client.name_key (the words sorted, lower case, ё as е) is what an import's namesake lookup
    compares: a save, a save of the name alone and an import's update all keep it in step."""
    client = ClientFactory(name="Пётр  Петров-Водкин", city="Тула", phone="+79265550002")
    assert Client.objects.get(pk=client.pk).name_key == "водкин петр петров"
    client.name = "ЁЛКИН_Иван"
    client.save(update_fields=["name"])
    assert Client.objects.get(pk=client.pk).name_key == "елкин иван"
    rows = [["ФИО", "Телефон"], ["Сидоров Семён", "8 926 555-00-02"]]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone"}, duplicates="update")
    assert job.updated == 1 and Client.objects.get(pk=client.pk).name_key == "семен сидоров"
    rows = [["ФИО", "Город"], ["семён СИДОРОВ", "Тула"]]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "city"}, duplicates="create")
    duplicates.suggest_for_import(job.pk)
    assert pairs() == {("семён СИДОРОВ", "Сидоров Семён", "name")}


def test_the_migration_fills_the_name_keys_of_existing_clients_in_batches(monkeypatch):
    """clients/0021: the keys of clients made before the column existed, a batch at a time, and
    only those still empty (run again after an interruption, it redoes nothing)."""
    import importlib

    from django.apps import apps
    from django.db import connection

    fill = importlib.import_module("clients.migrations.0021_fill_client_name_key")
    monkeypatch.setattr(fill, "BATCH", 2)
    made = [ClientFactory(name=name) for name in ("Иванов Иван", "Пётр  ПЕТРОВ", "—", "Anna-Maria O'Neil", "Семёнов")]
    Client.objects.filter(pk__in=[c.pk for c in made[:4]]).update(name_key="")
    Client.objects.filter(pk=made[4].pk).update(name_key="kept as it was")
    with connection.schema_editor() as editor:
        fill.fill(apps, editor)
    keys = dict(Client.objects.filter(pk__in=[c.pk for c in made]).values_list("name", "name_key"))
    assert keys == {"Иванов Иван": "иван иванов", "Пётр  ПЕТРОВ": "петр петров", "—": "",
                    "Anna-Maria O'Neil": "anna maria neil o", "Семёнов": "kept as it was"}


def test_an_import_in_create_mode_suggests_the_same_phone(admin):
    ClientFactory(name="Старый", phone="+79168880008")
    rows = [["ФИО", "Телефон"], ["Новый", "8 916 888-00-08"], ["Новый 2", "79168880008"]]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone"}, duplicates="create")
    duplicates.suggest_for_import(job.pk)
    duplicates.suggest_for_import(job.pk)  # a resumed job adds nothing twice
    assert pairs() == {("Новый", "Старый", "phone"), ("Новый 2", "Старый", "phone"), ("Новый 2", "Новый", "phone")}


@pytest.mark.django_db(transaction=True)
def test_a_worker_looks_for_the_imported_clients_duplicates_once_the_import_is_done(celery_worker):
    from crm.models import Job
    from tests.conftest import wait_for

    admin = UserFactory(role=role("Admin"))
    ClientFactory(name="Старый", phone="+79168880008", email="old@example.com")
    rows = [["ФИО", "Телефон", "Email"], ["Новый", "8 916 888-00-08", None], ["Другой", None, "OLD@example.com"]]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone", 2: "email"}, duplicates="create")
    assert job.status == "done"
    lookup = Job.objects.get(kind=Job.Kind.DUPLICATES)
    assert (lookup.owner, lookup.params) == (admin, {"import": str(job.pk)})
    assert wait_for(lambda: Job.objects.get(pk=lookup.pk).state == "done", timeout=30)
    assert pairs() == {("Новый", "Старый", "phone"), ("Другой", "Старый", "email")}
    assert Job.objects.get(pk=lookup.pk).done == 2


@pytest.mark.django_db(transaction=True)
def test_the_lookup_after_an_import_resumes_after_its_worker_is_killed(worker_queue):
    """The worker is killed while its insert of a pair waits on the same pair held, uncommitted, by
    another transaction; that one is rolled back; a new worker's sweep resumes the job, which
    stores the pair exactly once."""
    import threading

    from django.db import connection, transaction

    from crm.models import Job
    from tests.conftest import start_worker, stop_worker, wait_for
    from tests.tasks.crash import FAST_RESUME, kill, wait_until_stuck

    admin = UserFactory(role=role("Admin"))
    old = ClientFactory(name="Старый", phone="+79168880008")
    rows = [["ФИО", "Телефон"], ["Новый", "8 916 888-00-08"]]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone"}, duplicates="create")  # queued: no worker yet
    new = Client.objects.get(name="Новый")
    lookup = Job.objects.get(kind=Job.Kind.DUPLICATES)
    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                DuplicateSuggestion.objects.create(client=new, other=old, kind="phone")
                held.set()
                release.wait(120)
                transaction.set_rollback(True)
        finally:
            connection.close()

    # the job's message waits for a worker already up (a solo worker busy on it would not answer the
    # start's ping): taken off the queue, then sent again once the worker runs and the pair is held
    from crm import jobs
    from crm.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(worker_queue)
    # nor may the starting worker's sweep take the queued job before the pair is held: on a slow
    # machine the start outlives JOB_STALE_SECONDS (a heartbeat ahead keeps the sweep off it)
    Job.objects.filter(pk=lookup.pk).update(heartbeat_at=timezone.now() + timedelta(hours=1))
    first = start_worker(worker_queue, FAST_RESUME)
    holder = threading.Thread(target=hold, daemon=True)
    try:  # from here on the worker is stopped whatever fails, so no test leaves one running
        holder.start()
        assert held.wait(10)
        jobs.enqueue(lookup.pk)
        assert wait_until_stuck(lookup.pk, done=0), open(first.log_path).read()
        kill(first)
    finally:
        release.set()
        holder.join(30)
        stop_worker(first)
    assert not DuplicateSuggestion.objects.exists() and Job.objects.get(pk=lookup.pk).state == "running"
    second = start_worker(worker_queue, FAST_RESUME)
    try:
        assert wait_for(lambda: Job.objects.get(pk=lookup.pk).state == "done", 60), open(second.log_path).read()
    finally:
        stop_worker(second)
    assert Job.objects.get(pk=lookup.pk).attempts == 2
    assert pairs() == {("Новый", "Старый", "phone")}
    assert job.status == "done"


# The lookup's cost ---------------------------------------------------------------------------------


def _word(i: int) -> str:
    from hashlib import md5

    return "".join("абвгдежзиклмнопрстуфхцчшэюя"[int(c, 16)] for c in md5(str(i).encode()).hexdigest()[:7]).capitalize()


def _filler(n: int) -> None:
    """Other clients as a real table has them: names and cities of every kind."""
    Client.objects.bulk_create(
        Client(name=f"{_word(i)} {_word(i + 7919)}", city=f"Город {i % 40}", phone=f"+7916{i:07d}", email=f"f{i}@example.com")
        for i in range(n))


@pytest.mark.parametrize("table", [1, 2000])
def test_the_incremental_lookup_issues_the_same_statements_whatever_the_table_size(table, admin):
    _filler(table)
    batch = [make(admin, name=f"Петров Пётр {i}", city="Тула", phone=f"+7917{i:07d}", email=f"p{i}@example.com").pk
             for i in range(3)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE clients_client")  # the statistics a real table has
    with CaptureQueriesContext(connection) as queries:
        duplicates.suggest_for(batch)
    # a savepoint, the similarity threshold, the statement, the threshold back, the savepoint released
    assert len(queries) == 5
    statement = next(q["sql"] for q in queries if "INSERT INTO" in q["sql"])
    if table < 1000:
        return  # a tiny table is read whole, as it should be
    # each kind is an index probe per client, never a scan of the table
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN " + statement)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "client_phone_idx" in plan and "client_extra_phones_gin" in plan and "client_email_lower_idx" in plan
    # (the name probe's client_name_upper_trgm is chosen at a real size: bench/duplicates.py, a million clients)
    assert "Seq Scan on clients_client" not in plan


# The page ------------------------------------------------------------------------------------------


def test_the_page_lists_pairs_with_reason_names_phones_and_emails_in_russian(client, admin):
    make(admin, name="Анна Смирнова", phone="+79091234567", email="anna@example.com")
    make(admin, name="Другая Анна", phone="8 909 123-45-67")
    admin.language = "ru"
    admin.save()
    client.force_login(admin)
    page = client.get(reverse("clients:duplicates")).content.decode()
    assert "Возможные дубли" in page and "Тот же телефон" in page and "Не дубль" in page
    assert "Анна Смирнова" in page and "Другая Анна" in page and "+7 909 123-45-67" in page and "anna@example.com" in page


def test_the_clients_list_links_to_the_page(admin_client):
    assert reverse("clients:duplicates") in admin_client.get(reverse("clients:list")).content.decode()


def test_the_page_shows_only_pairs_whose_both_clients_the_reader_may_see(client, admin, manager, other_manager):
    mine = ClientFactory(name="Мой", phone="+79090000001", responsible=manager)
    ClientFactory(name="Мой тоже", phone="+79090000002", responsible=manager)
    ClientFactory(name="Чужой", phone="+79090000001", responsible=other_manager)
    ClientFactory(name="Мой второй", phone="+79090000002", responsible=manager)
    duplicates.suggest_for(Client.objects.values_list("pk", flat=True))
    assert len(pairs()) == 2
    client.force_login(manager)
    page = client.get(reverse("clients:duplicates")).content.decode()
    assert "Мой второй" in page and "Мой тоже" in page
    assert "Чужой" not in page and f'href="/clients/{mine.pk}/"' not in page


def test_the_page_needs_view_clients(client, nobody):
    client.force_login(nobody)
    assert client.get(reverse("clients:duplicates")).status_code == 403


def test_not_a_duplicate_dismisses_the_pair_with_htmx(admin_client, admin):
    make(admin, name="Алексей", phone="+79090000001")
    make(admin, name="Вера", phone="+79090000001")
    suggestion = DuplicateSuggestion.objects.get()
    response = admin_client.post(reverse("clients:duplicate-dismiss", args=[suggestion.pk]), headers=HX)
    assert response.status_code == 200 and response.content == b""
    suggestion.refresh_from_db()
    assert suggestion.dismissed_at is not None and suggestion.dismissed_by == admin
    assert "Алексей" not in admin_client.get(reverse("clients:duplicates")).content.decode()


def test_not_a_duplicate_is_post_only(admin_client, admin):
    make(admin, name="Алексей", phone="+79090000001")
    make(admin, name="Вера", phone="+79090000001")
    suggestion = DuplicateSuggestion.objects.get()
    assert admin_client.get(reverse("clients:duplicate-dismiss", args=[suggestion.pk])).status_code == 405
    assert DuplicateSuggestion.objects.get().dismissed_at is None


def test_not_a_duplicate_without_edit_permission_is_403_and_writes_nothing(client, admin):
    from django.contrib.auth.models import Permission

    reader_role = role("Manager")
    reader_role.group.permissions.remove(Permission.objects.get(codename="change_client"))
    reader = UserFactory(role=reader_role)
    ClientFactory(name="Алексей", phone="+79090000001", responsible=reader)
    ClientFactory(name="Вера", phone="+79090000001", responsible=reader)
    duplicates.suggest_for(Client.objects.values_list("pk", flat=True))
    suggestion = DuplicateSuggestion.objects.get()
    client.force_login(reader)
    page = client.get(reverse("clients:duplicates")).content.decode()
    assert "Вера" in page and "Not a duplicate" not in page
    assert client.post(reverse("clients:duplicate-dismiss", args=[suggestion.pk]), headers=HX).status_code == 403
    assert DuplicateSuggestion.objects.get().dismissed_at is None and not Activity.objects.filter(field="duplicate").exists()


def test_not_a_duplicate_of_a_pair_the_user_may_not_see_is_404(client, manager, other_manager):
    ClientFactory(name="Мой", phone="+79090000001", responsible=manager)
    ClientFactory(name="Чужой", phone="+79090000001", responsible=other_manager)
    duplicates.suggest_for(Client.objects.values_list("pk", flat=True))
    suggestion = DuplicateSuggestion.objects.get()
    client.force_login(manager)
    assert client.post(reverse("clients:duplicate-dismiss", args=[suggestion.pk]), headers=HX).status_code == 404
    assert DuplicateSuggestion.objects.get().dismissed_at is None


def test_the_merge_link_is_shown_only_to_who_may_merge(client, admin, manager):
    ClientFactory(name="Алексей", phone="+79090000001", responsible=manager)
    ClientFactory(name="Вера", phone="+79090000001", responsible=manager)
    duplicates.suggest_for(Client.objects.values_list("pk", flat=True))
    client.force_login(manager)
    assert "?other=" not in client.get(reverse("clients:duplicates")).content.decode()  # a Manager may not merge
    # an admin gets the link to the merge page, the pair side by side
    merge = reverse("clients:merge", args=[DuplicateSuggestion.objects.get().client_id])
    client.force_login(admin)
    suggestion = DuplicateSuggestion.objects.get()
    assert f'href="{merge}?other={suggestion.other_id}"' in client.get(reverse("clients:duplicates")).content.decode()


def test_the_page_is_paginated_newest_first(admin_client, admin, settings):
    from django.utils import timezone

    from clients import duplicate_views

    base = [ClientFactory(name=f"База {i}") for i in range(duplicate_views.PER_PAGE + 2)]
    newer = [ClientFactory(name=f"Копия {i}") for i in range(len(base))]
    now = timezone.now()
    DuplicateSuggestion.objects.bulk_create(
        DuplicateSuggestion(client=n, other=b, kind="name", created_at=now - timezone.timedelta(minutes=i))
        for i, (n, b) in enumerate(zip(newer, base, strict=True)))
    DuplicateSuggestion.objects.filter(client__in=newer).update(created_at=now)  # auto_now_add: set the times again
    for i, n in enumerate(newer):
        DuplicateSuggestion.objects.filter(client=n).update(created_at=now - timezone.timedelta(minutes=i))
    first = admin_client.get(reverse("clients:duplicates")).content.decode()
    second = admin_client.get(reverse("clients:duplicates") + "?page=2").content.decode()
    assert "Копия 0<" in first and f"Копия {duplicate_views.PER_PAGE - 1}<" in first and f"Копия {duplicate_views.PER_PAGE}<" not in first
    assert f"Копия {duplicate_views.PER_PAGE}<" in second and "Копия 0<" not in second
    assert first.index("Копия 0<") < first.index("Копия 1<")


@pytest.mark.parametrize("n", [1, 15])
def test_the_page_query_count(n, admin_client, admin, django_assert_num_queries):
    for i in range(n):
        ClientFactory(name=f"Копия {i}", phone=f"+7909{i:07d}", responsible=admin)
        ClientFactory(name=f"База {i}", phone=f"+7909{i:07d}", responsible=admin)
    duplicates.suggest_for(Client.objects.values_list("pk", flat=True))
    assert DuplicateSuggestion.objects.count() == n
    with django_assert_num_queries(3):  # user with perms, the count, the page
        response = admin_client.get(reverse("clients:duplicates"))
    assert response.content.decode().count("Not a duplicate") == n


@pytest.mark.parametrize("n", [1, 15])
def test_the_dismiss_query_count(n, admin_client, admin, django_assert_num_queries):
    for i in range(n):
        ClientFactory(name=f"Копия {i}", phone=f"+7909{i:07d}")
        ClientFactory(name=f"База {i}", phone=f"+7909{i:07d}")
    duplicates.suggest_for(Client.objects.values_list("pk", flat=True))
    suggestion = DuplicateSuggestion.objects.first()
    with django_assert_num_queries(7):  # user with perms, the pair, savepoint, lock, update, feed, release
        admin_client.post(reverse("clients:duplicate-dismiss", args=[suggestion.pk]), headers=HX)


# The card ------------------------------------------------------------------------------------------


def test_the_card_shows_possible_duplicate_of_on_both_clients_with_the_reason(admin_client, admin):
    old = make(admin, name="Анна Смирнова", phone="+79091234567")
    new = make(admin, name="Другая Анна", phone="8 909 123-45-67")
    on_new = admin_client.get(new.get_absolute_url()).content.decode()
    on_old = admin_client.get(old.get_absolute_url()).content.decode()
    assert "Possible duplicate of" in on_new and f'href="/clients/{old.pk}/">Анна Смирнова<' in on_new and "Same phone" in on_new
    assert f'href="/clients/{new.pk}/">Другая Анна<' in on_old
    # and from the card straight to the two side by side
    assert f'href="{reverse("clients:merge", args=[new.pk])}?other={old.pk}"' in on_new


def test_the_card_does_not_show_a_dismissed_pair(admin_client, admin):
    make(admin, name="Анна Смирнова", phone="+79091234567")
    new = make(admin, name="Другая Анна", phone="8 909 123-45-67")
    services.duplicate_dismiss(actor=admin, suggestion=DuplicateSuggestion.objects.get())
    assert "Possible duplicate of" not in admin_client.get(new.get_absolute_url()).content.decode()


def test_the_card_does_not_show_a_duplicate_the_reader_may_not_see(client, manager, other_manager):
    ClientFactory(name="Чужой", phone="+79090000001", responsible=other_manager)
    mine = ClientFactory(name="Мой", phone="+79090000001", responsible=manager)
    duplicates.suggest_for([mine.pk])
    client.force_login(manager)
    assert "Possible duplicate of" not in client.get(mine.get_absolute_url()).content.decode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="GIN pending lists are PostgreSQL's")
def test_once_an_import_is_done_its_search_entries_leave_the_pending_lists(admin):
    """A search reads a GIN index's pending list whole, each time: the worker that looks for an
    import's duplicates first merges the entries the import left there."""
    def listed(tag: str) -> list[list]:
        return [["ФИО", "Телефон"], *[[f"Клиентова {tag} {i}", f"+7 926 {tag}-00-{i:02}"] for i in range(30)]]

    duplicates.merge_pending_index_entries()
    first = service_import(admin, plain_xlsx(listed("100")), {0: "name", 1: "phone"}, duplicates="skip")
    duplicates.suggest_for_import(first.pk)  # what the worker does once the import is done
    assert first.created == 30 and duplicates.merge_pending_index_entries() == 0  # nothing was left to merge
    second = service_import(admin, plain_xlsx(listed("200")), {0: "name", 1: "phone"}, duplicates="skip")
    assert second.created == 30 and duplicates.merge_pending_index_entries() > 0  # an import does leave some


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner's statistics are PostgreSQL's")
def test_an_import_beyond_autovacuums_threshold_leaves_the_table_analyzed(admin):
    """Until the statistics are taken again the planner counts a freshly imported mass of clients
    as a handful: the worker analyzes the table once an import wrote more than autovacuum's default
    threshold (50 rows + 10 % of the table), and leaves it to autovacuum below that."""
    def estimated() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'clients_client'::regclass")
            return cursor.fetchone()[0]

    def listed(tag: str, rows: int) -> list[list]:
        return [["ФИО", "Телефон"], *[[f"Клиентова {tag} {i}", f"+7 926 {tag}-00-{i:02}"] for i in range(rows)]]

    ClientFactory.create_batch(5)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE clients_client")
    assert estimated() == 5
    big = service_import(admin, plain_xlsx(listed("300", 60)), {0: "name", 1: "phone"}, duplicates="skip")
    duplicates.suggest_for_import(big.pk)  # what the worker does once the import is done
    assert big.created == 60 and estimated() == 65
    small = service_import(admin, plain_xlsx(listed("400", 12)), {0: "name", 1: "phone"}, duplicates="skip")
    duplicates.suggest_for_import(small.pk)
    assert small.created == 12 and estimated() == 65  # 12 rows of 77: autovacuum's business
