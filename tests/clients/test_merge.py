"""Merging two clients side by side (issue 18, point 4 and 6): what moves, what is kept, the undo,
the gate, and a merge racing an edit and a deal move on real concurrent PostgreSQL connections."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone, translation

from clients import merge as merging
from clients import services as client_services
from clients.models import Client, ClientNote, LeadConversion, Merge
from crm.models import Activity, User
from deals import services as deal_services
from deals.models import Deal
from messenger.models import Attachment, Channel, Conversation, Delivery, MassSend, Message
from tasks.models import Task, TaskType
from tests.conftest import wait_for
from tests.factories import ClientFactory, CustomFieldFactory, DealFactory, TagFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def _pair(admin):
    """Two records of one person as they arrive: a lead typed by hand and one from a chat."""
    kept = ClientFactory(name="Иванов Иван", phone="+79091234567", email="ivan@example.com", city="", company="Ромашка",
                         tags=[TagFactory(name="VIP")], responsible=admin)
    other = ClientFactory(name="Иван Иванов", phone="+79097654321", extra_phones=["+79091234567"], email="IVAN.I@mail.ru",
                          city="Казань", company="", tags=[TagFactory(name="Авито"), TagFactory(name="VIP")],
                          external_id="P-1001", registration_date=date(2026, 11, 20))
    return kept, other


def _related(client, admin, n=1):
    """n of everything a client can have: deals with sales, tasks, comments, a note, a chat."""
    type_ = TaskType.objects.first()
    channel = Channel.objects.get_or_create(kind=Channel.Kind.CONSOLE, name="Site chat")[0]
    conversation = Conversation.objects.create(channel=channel, client=client, external_chat_id=f"chat-{client.pk}")
    for i in range(n):
        deal = DealFactory(client=client, responsible=admin)
        deal_services.sale_record(deal=deal, player_id="P-1001", amount=Decimal("100.50"))
        Task.objects.create(client=client, type=type_, description=f"Call back {i}", responsible=admin,
                            deadline=timezone.now() + timedelta(days=1), created_by=admin)
        client_services.comment_add(actor=admin, client=client, text=f"Comment {i}")
        said = Message.objects.create(conversation=conversation, channel=channel, direction="in", text=f"hi {i}",
                                      status="received")
    attached = Attachment(message=said, name="passport.pdf", content_type="application/pdf", size=3)
    attached.file.save("passport.pdf", ContentFile(b"pdf"), save=False)
    attached.save()
    ClientNote.objects.create(client=client, text=f"Note of {client.name}")


def _post(http, kept, other, **choices):
    data = {"other": other.pk, **{f"keep_{k}": v for k, v in choices.items()}}
    return http.post(reverse("clients:merge", args=[kept.pk]), data)


def test_side_by_side_page_shows_both_values_and_what_moves(admin_client, admin):
    kept, other = _pair(admin)
    _related(other, admin, n=2)
    page = admin_client.get(reverse("clients:merge", args=[kept.pk]) + f"?other={other.pk}").content.decode()
    for text in ("Иванов Иван", "Иван Иванов", "Казань", "IVAN.I@mail.ru", "P-1001", "Copy →", "Keep the other client instead"):
        assert text in page
    # the city is empty on the kept client: the other's value is chosen by default
    assert 'name="keep_city" value="other" checked' in page
    assert 'name="keep_name" value="kept" checked' in page
    with translation.override("en"):
        preview = dict(merging.preview(kept, other))
    assert (preview["Deals"], preview["Tasks"], preview["Comments"], preview["Notes"], preview["Messages"],
            preview["Sales"], preview["Conversations"], preview["Files"]) == (2, 2, 2, 1, 2, 2, 1, 1)
    # the phones and e-mails kept together, each once, as people read them
    assert "+7 909 123-45-67, +7 909 765-43-21" in page
    assert "ivan@example.com, IVAN.I@mail.ru" in page


def test_merge_copies_the_chosen_fields_unions_the_rest_and_moves_everything(admin_client, admin):
    kept, other = _pair(admin)
    _related(kept, admin, n=1)
    _related(other, admin, n=2)
    response = _post(admin_client, kept, other, city="other", external_id="other", email="kept", name="kept")
    assert response.status_code == 302 and response.url == kept.get_absolute_url()
    kept.refresh_from_db()
    other.refresh_from_db()
    assert (kept.name, kept.city, kept.external_id, kept.company) == ("Иванов Иван", "Казань", "P-1001", "Ромашка")
    assert kept.email == "ivan@example.com" and kept.extra_emails == ["IVAN.I@mail.ru"]
    assert kept.phone == "+79091234567" and kept.extra_phones == ["+79097654321"]  # the shared number once
    assert "79097654321" in kept.phone_digits  # found by the other's number too
    assert {t.name for t in kept.tags.all()} == {"VIP", "Авито"}
    assert Deal.objects.filter(client=kept).count() == 3 and not Deal.objects.filter(client=other).exists()
    assert Task.objects.filter(client=kept).count() == 3
    assert Activity.objects.filter(client=kept, kind=Activity.Kind.COMMENT).count() == 3
    assert Conversation.objects.filter(client=kept).count() == 2
    assert (kept.sales_count, kept.sales_sum) == (3, Decimal("301.50"))
    assert (other.sales_count, other.sales_sum) == (0, 0)
    assert "Note of Иван Иванов" in kept.note.text and "Note of Иванов Иван" in kept.note.text
    assert other.is_deleted and other.merged_in.kept == kept
    assert Activity.objects.filter(client=kept, kind=Activity.Kind.MERGE, field="merged_in").exists()
    assert Activity.objects.filter(client=other, kind=Activity.Kind.MERGE, field="merged_into").exists()
    card = admin_client.get(kept.get_absolute_url()).content.decode()
    assert "Merged in on" in card and "Undo the merge" in card and "merged in Иван Иванов" in card
    gone = admin_client.get(other.get_absolute_url()).content.decode()
    assert "This client was merged on" in gone and "Иванов Иван" in gone


def test_undo_brings_both_back_and_keeps_what_changed_since(admin_client, admin):
    kept, other = _pair(admin)
    _related(kept, admin, n=1)
    _related(other, admin, n=2)
    deals_of_other = set(Deal.objects.filter(client=other).values_list("pk", flat=True))
    _post(admin_client, kept, other, city="other", external_id="other")
    kept.refresh_from_db()
    # after the merge someone corrects the Player ID and writes a new comment on the kept card
    client_services.client_update(actor=admin, client=kept, data={"external_id": "P-2002"})
    client_services.comment_add(actor=admin, client=kept, text="After the merge")
    record = Merge.objects.get()
    response = admin_client.post(reverse("clients:merge-undo", args=[record.pk]), follow=True)
    assert "The merge was undone" in response.content.decode() and "Player ID" in response.content.decode()
    kept.refresh_from_db()
    other.refresh_from_db()
    assert not other.is_deleted and other.merged_in is None
    assert (kept.city, kept.external_id, kept.extra_emails, kept.extra_phones) == ("", "P-2002", [], [])
    assert kept.phone_digits == "79091234567"
    assert {t.name for t in kept.tags.all()} == {"VIP"}
    assert set(Deal.objects.filter(client=other).values_list("pk", flat=True)) == deals_of_other
    assert Task.objects.filter(client=other).count() == 2 and Task.objects.filter(client=kept).count() == 1
    assert list(Activity.objects.filter(client=kept, kind=Activity.Kind.COMMENT).order_by("pk").values_list("text", flat=True)) == [
        "Comment 0", "After the merge"]
    assert (kept.sales_count, other.sales_count, other.sales_sum) == (1, 2, Decimal("201.00"))
    assert kept.note.text == "Note of Иванов Иван" and other.note.text == "Note of Иван Иванов"
    assert Merge.objects.get().undone_at is not None
    again = admin_client.post(reverse("clients:merge-undo", args=[record.pk]), follow=True).content.decode()
    assert "already undone" in again


def test_a_lead_linked_to_the_merged_customer_follows_it_and_goes_back_on_undo(admin_client, admin):
    kept, other = _pair(admin)
    lead = ClientFactory(name="Лид Иванова", phone="+79095550000")
    link = LeadConversion.objects.create(client=lead, kind=LeadConversion.Kind.LINKED, customer=other, by=admin)
    _post(admin_client, kept, other)
    link.refresh_from_db()
    assert link.customer_id == kept.pk and link.client_id == lead.pk
    admin_client.post(reverse("clients:merge-undo", args=[Merge.objects.get().pk]))
    link.refresh_from_db()
    assert link.customer_id == other.pk


def test_custom_fields_can_be_copied_too(admin_client, admin):
    field = CustomFieldFactory(label="Источник лида")
    kept, other = _pair(admin)
    Client.objects.filter(pk=other.pk).update(custom={f"cf_{field.pk}": "Выставка"})
    page = admin_client.get(reverse("clients:merge", args=[kept.pk]) + f"?other={other.pk}").content.decode()
    assert "Источник лида" in page and "Выставка" in page
    _post(admin_client, kept, other, **{f"cf_{field.pk}": "other"})
    kept.refresh_from_db()
    assert kept.custom[f"cf_{field.pk}"] == "Выставка"


def test_deliveries_of_one_mass_send_to_both_keep_one_each(admin):
    kept, other = _pair(admin)
    send = MassSend.objects.create(channel="sms", body="Hello", created_by=admin)
    mine = Delivery.objects.create(mass_send=send, client=kept, address="+79091234567")
    theirs = Delivery.objects.create(mass_send=send, client=other, address="+79097654321")
    merging.merge(actor=admin, kept=kept, other=other, take=set())
    assert Delivery.objects.get(pk=mine.pk).client_id == kept.pk
    assert Delivery.objects.get(pk=theirs.pk).client_id == other.pk  # its history stays with the merged record


def test_finding_the_other_client_by_phone_digits(admin_client, admin):
    kept, other = _pair(admin)
    page = admin_client.get(reverse("clients:merge", args=[kept.pk]) + "?q=9097654", headers={"HX-Request": "true"})
    assert "Иван Иванов" in page.content.decode() and f"?other={other.pk}" in page.content.decode()
    assert "Иванов Иван</a>" not in page.content.decode()  # not the kept client itself


def test_a_manager_may_not_merge_and_nothing_is_written(manager_client, manager):
    kept = ClientFactory(responsible=manager)
    other = ClientFactory(responsible=manager)
    assert manager_client.get(reverse("clients:merge", args=[kept.pk]) + f"?other={other.pk}").status_code == 403
    assert _post(manager_client, kept, other, city="other").status_code == 403
    assert not Merge.objects.exists() and not Client.objects.get(pk=other.pk).is_deleted


def test_clients_the_user_may_not_see_are_missing(client, team):
    from crm.models import Role

    merger = role("Manager")
    merger.group.permissions.add(*__import__("django.contrib.auth.models", fromlist=["Permission"]).Permission.objects.filter(
        codename="merge_clients"))
    user = UserFactory(role=merger, team=team)
    assert Role.objects.get(pk=merger.pk).visibility == "own"
    mine, theirs = ClientFactory(responsible=user), ClientFactory(responsible=UserFactory())
    client.force_login(user)
    assert client.get(reverse("clients:merge", args=[mine.pk]) + f"?other={theirs.pk}").status_code == 404
    assert client.get(reverse("clients:merge", args=[theirs.pk]) + f"?other={mine.pk}").status_code == 404
    assert _post(client, mine, theirs).status_code == 404
    assert not Merge.objects.exists()
    # and someone else's merge cannot be undone through a client one may not see
    other_admin = User.objects.filter(is_superuser=False).exclude(pk=user.pk).first() or UserFactory(role=role("Admin"))
    a, b = ClientFactory(responsible=other_admin), ClientFactory(responsible=other_admin)
    record = merging.merge(actor=UserFactory(role=role("Admin")), kept=a, other=b, take=set())
    assert client.post(reverse("clients:merge-undo", args=[record.pk])).status_code == 404
    assert Merge.objects.get(pk=record.pk).undone_at is None


def test_a_refused_merge_says_why_and_keeps_the_choices(admin_client, admin):
    kept, other = _pair(admin)
    Client.objects.filter(pk=other.pk).update(email="not an address")
    response = _post(admin_client, kept, other, email="other", city="other")
    assert response.status_code == 400
    page = response.content.decode()
    assert "valid email" in page.lower() and 'name="keep_city" value="other" checked' in page
    assert not Merge.objects.exists() and not Client.objects.get(pk=other.pk).is_deleted


@pytest.mark.parametrize("n", [1, 12])
def test_merge_page_query_count(n, admin_client, admin, django_assert_num_queries):
    kept, other = _pair(admin)
    _related(other, admin, n=n)
    url = reverse("clients:merge", args=[kept.pk]) + f"?other={other.pk}"
    # user with perms, kept, other, custom fields, the preview's counts, notes, messages, files, both clients' tags
    with django_assert_num_queries(10):
        admin_client.get(url)
    with django_assert_num_queries(3):  # user with perms, kept, the candidates
        admin_client.get(reverse("clients:merge", args=[kept.pk]) + "?q=Иван", headers={"HX-Request": "true"})


# Concurrency (point 6): real connections, each thread its own -------------------------------------


def _in_thread(target, results, key):
    def run():
        try:
            results[key] = target()
        except Exception as error:
            results[key] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _waiting_on_lock() -> bool:
    """True once another backend waits on a row lock (the merge, blocked by the open edit)."""

    def someone_waits() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
            return bool(cursor.fetchone()[0])

    return wait_for(someone_waits, timeout=10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("edited,change", [("kept", {"company": "Ромашка и партнёры"}), ("other", {"city": "Нижний Новгород"})])
def test_a_merge_racing_an_edit_of_either_client_loses_nothing(edited, change):
    """The edit commits first; the merge, waiting on the row, reads it as edited: an edit of the kept
    client stands beside the value taken, and an edit of the client merged away is the value taken
    (its feed entry moved to the kept client with the rest)."""
    admin = UserFactory(role=role("Admin"))
    kept, other = _pair(admin)
    edit_holds, release = threading.Event(), threading.Event()
    results: dict = {}

    def edit():
        with transaction.atomic():
            client_services.client_update(actor=admin, client=kept if edited == "kept" else other, data=change)
            edit_holds.set()
            release.wait(10)
        return "edited"

    editing = _in_thread(edit, results, "edit")
    assert edit_holds.wait(10)
    merging_ = _in_thread(lambda: merging.merge(actor=admin, kept=kept, other=other, take={"city"}), results, "merge")
    assert _waiting_on_lock()  # the merge waits for the edit's row lock
    release.set()
    editing.join(10)
    merging_.join(10)
    assert results["edit"] == "edited" and isinstance(results["merge"], Merge)
    kept.refresh_from_db()
    if edited == "kept":
        assert (kept.company, kept.city) == ("Ромашка и партнёры", "Казань")  # the edit and the merge both stand
    else:
        assert kept.city == "Нижний Новгород"
        assert Activity.objects.filter(client=kept, kind=Activity.Kind.CHANGE, new_value="Нижний Новгород").exists()


@pytest.mark.django_db(transaction=True)
def test_a_merge_racing_a_move_of_the_other_clients_deal_loses_nothing():
    admin = UserFactory(role=role("Admin"))
    kept, other = _pair(admin)
    deal = DealFactory(client=other, responsible=admin)
    stages = list(deal.stage.line.stages.order_by("position"))
    move_holds, release = threading.Event(), threading.Event()
    results: dict = {}

    def move():
        with transaction.atomic():
            fresh = Deal.objects.select_related("stage__line").get(pk=deal.pk)
            deal_services.deal_move(actor=admin, deal=fresh, to_stage_id=stages[1].pk, seen_stage_id=fresh.stage_id,
                                    seen_version=fresh.version)
            move_holds.set()
            release.wait(10)
        return "moved"

    moving = _in_thread(move, results, "move")
    assert move_holds.wait(10)
    merging_ = _in_thread(lambda: merging.merge(actor=admin, kept=kept, other=other, take=set()), results, "merge")
    assert _waiting_on_lock()
    release.set()
    moving.join(10)
    merging_.join(10)
    assert results["move"] == "moved" and isinstance(results["merge"], Merge)
    deal.refresh_from_db()
    assert (deal.client_id, deal.stage_id) == (kept.pk, stages[1].pk)
    assert Merge.objects.get().journal["moved"]["deals"] == [deal.pk]


@pytest.mark.django_db(transaction=True)
def test_an_edit_of_the_merged_client_after_the_merge_is_refused_not_lost():
    admin = UserFactory(role=role("Admin"))
    kept, other = _pair(admin)
    merging.merge(actor=admin, kept=kept, other=other, take=set())
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        client_services.client_update(actor=admin, client=other, data={"company": "Late edit"})
    assert Client.objects.get(pk=other.pk).company == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["sale", "merge"])
def test_a_sale_on_the_other_clients_deal_racing_a_merge_is_counted_once_on_the_kept_client(first):
    """Whichever takes the deal first, the sale lands once, on the client the deal belongs to when
    it is written, and both clients' counts agree with their sales (no deadlock: deals, then clients)."""
    admin = UserFactory(role=role("Admin"))
    kept, other = _pair(admin)
    deal = DealFactory(client=other, responsible=admin)
    holds, release = threading.Event(), threading.Event()
    results: dict = {}

    def sale():
        with transaction.atomic():
            deal_services.sale_record(deal=Deal.objects.get(pk=deal.pk), player_id="P-1001", amount=Decimal("70.00"))
            if first == "sale":
                holds.set()
                release.wait(10)
        return "sold"

    def merge():
        with transaction.atomic():
            record = merging.merge(actor=admin, kept=kept, other=other, take=set())
            if first == "merge":
                holds.set()
                release.wait(10)
        return record

    one, two = (sale, merge) if first == "sale" else (merge, sale)
    starting = _in_thread(one, results, "one")
    assert holds.wait(10)
    waiting = _in_thread(two, results, "two")
    assert _waiting_on_lock()
    release.set()
    starting.join(10)
    waiting.join(10)
    assert not any(isinstance(v, Exception) for v in results.values()), results
    kept.refresh_from_db()
    other.refresh_from_db()
    from deals.models import Sale

    sale_row = Sale.objects.get()
    assert sale_row.client_id == kept.pk and Deal.objects.get(pk=deal.pk).client_id == kept.pk
    assert (kept.sales_count, kept.sales_sum, other.sales_count, other.sales_sum) == (1, Decimal("70.00"), 0, 0)
