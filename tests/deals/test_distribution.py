"""Lead distribution (issue 14): who receives a deal nobody is responsible for, why (the feed says
it), the cap, the queue and its draining, and the hand-back at the end of a shift."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from guardian.shortcuts import assign_perm

from clients.models import Client
from crm import activity
from crm import permissions as gate
from crm.models import Activity, Notification
from deals import distribution, services, shifts
from deals.models import Deal, Line, Shift
from tests.factories import ClientFactory, FunnelFactory, UserFactory, role

pytestmark = pytest.mark.django_db


@pytest.fixture
def line(stages):
    line = stages[0].line
    Line.objects.filter(pk=line.pk).update(distribution=Line.Distribution.ROUND_ROBIN)
    line.refresh_from_db()
    return line


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def managers(n, **kwargs):
    return [UserFactory(username=f"m{i}", first_name=f"M{i}", last_name="Test", role=role("Manager"), **kwargs) for i in range(n)]


def on_shift(*users):
    for user in users:
        shifts.start(user=user)
    return users


def new_deal(admin, stage, name="Lead", client=None):
    return services.deal_create(actor=admin, client=client or ClientFactory(responsible=None), stage=stage, name=name,
                                distribute=True)


def test_round_robin_serves_each_manager_in_turn_and_the_feed_says_why(admin, line, stages, client):
    a, b, c = on_shift(*managers(3))
    deals = [new_deal(admin, stages[0], f"Lead {i}") for i in range(7)]
    assert [d.responsible_id for d in deals] == [a.pk, b.pk, c.pk, a.pk, b.pk, c.pk, a.pk]
    assert all(d.assigned_at is not None and d.queued_at is None for d in deals)
    line.refresh_from_db()
    assert line.served_last_id == a.pk
    # the client nobody was responsible for goes with the deal: the manager can open it
    assert Client.objects.get(pk=deals[1].client_id).responsible_id == b.pk
    client.force_login(admin)
    page = client.get(reverse("clients:feed", args=[deals[1].client_id])).content.decode()
    assert f"deal #{deals[1].pk} went to {b} by round robin in 1st line: next in turn" in page
    # the manager is told, in their language
    told = Notification.objects.get(user=b, params__deal_id=deals[1].pk)
    assert activity.notification_text_for(b, told) == f"A new deal is yours: #{deals[1].pk} Lead 1 (1st line)"
    b.language = "ru"
    assert activity.notification_text_for(b, told) == f"Вам новая сделка: #{deals[1].pk} Lead 1 (1-я линия)"


def test_one_rule_decides_who_may_receive(admin, line, stages, team):
    working, paused, gone, away, outsider = managers(5)
    on_shift(working, paused, gone, outsider)
    shifts.pause(user=paused)
    gone.is_active = False
    gone.save()
    # a role that may not see deals at all
    outsider.role = None
    outsider.save()
    outsider.groups.clear()
    assert [c.pk for c in distribution.eligible(line)] == [working.pk]
    assert distribution.may_receive(working, line) and not distribution.may_receive(away, line)
    # a line kept for a team: only its members
    line.teams.set([team])
    assert distribution.eligible(line) == []
    working.team = team
    working.save()
    assert [c.pk for c in distribution.eligible(line)] == [working.pk]


def test_funnel_access_is_the_gates_rule(admin, team):
    """The SQL that picks receivers agrees with gate.may_open_funnel for every way of being let in."""
    funnel = FunnelFactory()
    other_line = funnel.lines.get()
    plain, granted, via_group, configurer = managers(4)
    assign_perm(gate.ACCESS_FUNNEL, granted, funnel)
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="Night shift")
    via_group.groups.add(group)
    assign_perm(gate.ACCESS_FUNNEL, group, funnel)
    configurer.role = role("Admin")
    configurer.save()
    on_shift(plain, granted, via_group, configurer, admin)
    receivers = {c.pk for c in distribution.eligible(other_line)}
    for user in (plain, granted, via_group, configurer, admin):
        fresh = type(user).objects.get(pk=user.pk)
        assert (user.pk in receivers) == gate.may_open_funnel(fresh, funnel.pk), user
    assert receivers == {granted.pk, via_group.pk, configurer.pk, admin.pk}


def test_the_cap_passes_over_a_full_manager_and_then_queues(admin, line, stages, client, django_capture_on_commit_callbacks):
    Line.objects.filter(pk=line.pk).update(cap=2)
    a, b = on_shift(*managers(2))
    deals = [new_deal(admin, stages[0], f"Lead {i}") for i in range(5)]
    assert [d.responsible_id for d in deals] == [a.pk, b.pk, a.pk, b.pk, None]
    waiting = Deal.objects.get(pk=deals[4].pk)
    assert waiting.queued_at is not None and waiting.assigned_at is None
    client.force_login(admin)
    page = client.get(reverse("clients:feed", args=[waiting.client_id])).content.decode()
    assert f"deal #{waiting.pk} waits in the queue of 1st line: nobody available on shift; at the limit: {a}; {b}" in page
    # deals in a stage that closes a deal do not count: a's sale makes room, the queue moves at once
    closing = next(s for s in stages if s.closes)
    first = Deal.objects.select_related("stage__line").get(pk=deals[0].pk)
    with django_capture_on_commit_callbacks(execute=True) as after_commit:  # the queue is drained once the move commits
        services.deal_move(actor=a, deal=first, to_stage_id=closing.pk, seen_stage_id=first.stage_id, seen_version=first.version)
    # the queue's drain; the stage event's kick was already asked for in this (the test's) transaction
    # when the deals were created: crm.events asks once per transaction
    assert len(after_commit) == 1
    assert Deal.objects.get(pk=waiting.pk).responsible_id == a.pk


def test_least_loaded_gives_to_the_fewest_open_deals(admin, line, stages):
    Line.objects.filter(pk=line.pk).update(distribution=Line.Distribution.LEAST_LOADED)
    busy, free = on_shift(*managers(2))
    closing = next(s for s in stages if s.closes)
    for i in range(3):
        Deal.objects.create(client=ClientFactory(), stage=stages[0], name=f"open {i}", responsible=busy)
        Deal.objects.create(client=ClientFactory(), stage=closing, name=f"closed {i}", responsible=free)
    Deal.objects.create(client=ClientFactory(), stage=stages[1], name="deleted", responsible=free, deleted_at=timezone.now())
    deals = [new_deal(admin, stages[0], f"Lead {i}") for i in range(4)]
    assert [d.responsible_id for d in deals] == [free.pk, free.pk, free.pk, busy.pk]
    entry = Activity.objects.get(deal=deals[0], kind=Activity.Kind.ASSIGNED)
    assert (entry.field, entry.new_value, entry.field_label) == ("least_loaded", str(free), "1st line")


def test_off_leaves_the_deal_unassigned_and_out_of_any_queue(admin, stages, line):
    Line.objects.filter(pk=line.pk).update(distribution=Line.Distribution.OFF)
    on_shift(*managers(1))
    deal = new_deal(admin, stages[0])
    assert (deal.responsible_id, deal.queued_at) == (None, None)
    assert not distribution.queued(line).exists()


def test_the_queue_is_first_in_first_out_and_goes_to_the_first_manager_who_starts(admin, line, stages, client):
    waiting = [new_deal(admin, stages[0], f"Lead {i}") for i in range(3)]
    assert all(d.responsible_id is None and d.queued_at for d in waiting)
    assert list(distribution.queued(line).values_list("pk", flat=True)) == [d.pk for d in waiting]
    Line.objects.filter(pk=line.pk).update(cap=2)
    (mary,) = managers(1, language="en")
    client.force_login(mary)
    response = client.post(reverse("deals:shift-action", args=["start"]), headers={"HX-Request": "true"})
    assert response.status_code == 200 and "End shift" in response.content.decode()
    assert "Shift started" in response["HX-Trigger"]
    # the two oldest, in order; the third waits for room
    assert [Deal.objects.get(pk=d.pk).responsible_id for d in waiting] == [mary.pk, mary.pk, None]
    told = Notification.objects.get(user=mary)
    assert activity.notification_text_for(mary, told) == "2 new deals are yours in 1st line"


def test_ending_a_shift_hands_back_only_what_was_not_worked(admin, line, stages, client):
    Line.objects.filter(pk=line.pk).update(shift_end=Line.ShiftEnd.HAND_BACK)
    leaving, staying = on_shift(*managers(2))
    untouched, moved, written = (new_deal(admin, stages[0], name) for name in ("untouched", "moved", "written"))
    # round robin gave them to leaving, staying, leaving: make leaving own all three
    Deal.objects.filter(pk__in=[moved.pk]).update(responsible=leaving)
    moved = Deal.objects.select_related("stage__line").get(pk=moved.pk)
    services.deal_move(actor=leaving, deal=moved, to_stage_id=stages[1].pk, seen_stage_id=stages[0].pk, seen_version=moved.version)
    activity.record(client_id=written.client_id, actor=leaving, kind=Activity.Kind.MESSAGE, new="SMS")
    kept_before = Deal.objects.create(client=ClientFactory(), stage=stages[0], name="mine by hand", responsible=leaving)
    client.force_login(leaving)
    response = client.post(reverse("deals:shift-action", args=["end"]), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("deals:shifts")  # no open redirect
    assert Deal.objects.get(pk=untouched.pk).responsible_id == staying.pk
    assert {Deal.objects.get(pk=d.pk).responsible_id for d in (moved, written, kept_before)} == {leaving.pk}
    shift = Shift.objects.get(user=leaving)
    assert shift.ended_at is not None and shift.ended_how == Shift.Ended.USER
    handed = Activity.objects.get(deal=untouched, kind=Activity.Kind.ASSIGNED, field="handback")
    assert handed.old_value == str(leaving)
    assert Notification.objects.filter(user=staying, params__deal_id=untouched.pk).exists()
    assert Client.objects.get(pk=untouched.client_id).responsible_id == staying.pk
    # the last one out: what was not worked goes back to the queue
    shifts.end(user=staying)
    again = Deal.objects.get(pk=untouched.pk)
    assert again.responsible_id is None and again.queued_at is not None


def test_keep_mode_leaves_the_deals_with_the_manager(admin, line, stages):
    leaving, _staying = on_shift(*managers(2))
    deal = new_deal(admin, stages[0])
    assert deal.responsible_id == leaving.pk
    shifts.end(user=leaving)
    assert Deal.objects.get(pk=deal.pk).responsible_id == leaving.pk


def test_a_shift_left_open_is_closed_after_the_idle_limit(settings, line, stages, admin):
    settings.SHIFT_IDLE_HOURS = 12
    Line.objects.filter(pk=line.pk).update(shift_end=Line.ShiftEnd.HAND_BACK)
    forgot, fresh = managers(2, language="ru")
    on_shift(forgot, fresh)
    deal = new_deal(admin, stages[0])
    assert deal.responsible_id == forgot.pk
    last_seen = timezone.now() - timedelta(hours=13)
    Shift.objects.filter(user=forgot).update(seen_at=last_seen)
    assert shifts.close_idle() == [Shift.objects.get(user=forgot).pk]
    closed = Shift.objects.get(user=forgot)
    assert closed.ended_how == Shift.Ended.IDLE and closed.ended_at == last_seen + timedelta(hours=12)
    assert Shift.objects.get(user=fresh).ended_at is None
    assert Deal.objects.get(pk=deal.pk).responsible_id == fresh.pk
    told = Notification.objects.get(user=forgot, kind=Notification.Kind.SHIFT)
    assert activity.notification_text_for(forgot, told) == (
        "Ваша смена закрыта после 12 ч без активности. 1 необработанная сделка передана коллеге или возвращена в очередь.")
    assert shifts.close_idle() == []  # once


def test_the_widget_is_a_sign_of_life(manager_client, manager):
    shifts.start(user=manager)
    Shift.objects.filter(user=manager).update(seen_at=timezone.now() - timedelta(hours=5))
    manager_client.get(reverse("deals:shift"), headers={"HX-Request": "true"})
    assert timezone.now() - Shift.objects.get(user=manager).seen_at < timedelta(minutes=1)


def test_pauses_are_logged_and_not_counted_as_work(manager):
    shift = shifts.start(user=manager)
    started = timezone.now() - timedelta(hours=3)
    Shift.objects.filter(pk=shift.pk).update(started_at=started)
    shifts.pause(user=manager)
    shifts.pause(user=manager)  # twice: one break
    shift = Shift.objects.get(pk=shift.pk)
    shift.pauses.update(started_at=shift.paused_at - timedelta(minutes=30))
    Shift.objects.filter(pk=shift.pk).update(paused_at=shift.paused_at - timedelta(minutes=30))
    shifts.resume(user=manager)
    shift = Shift.objects.get(pk=shift.pk)
    assert shift.pauses.count() == 1 and shift.pauses.get().ended_at is not None
    assert 29 * 60 <= shift.paused_seconds <= 31 * 60
    assert 2.4 * 3600 <= shift.worked_seconds() <= 2.6 * 3600


def test_one_open_shift_per_user(manager):
    first = shifts.start(user=manager)
    assert shifts.start(user=manager).pk == first.pk
    assert Shift.objects.filter(user=manager).count() == 1
    shifts.end(user=manager)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        shifts.end(user=manager)


def test_an_import_without_a_responsible_column_is_distributed(admin, line, stages, media):
    from imports.models import ImportJob
    from tests.imports.conftest import service_import
    from tests.imports.files import plain_xlsx

    a, b = on_shift(*managers(2))
    rows = [["ФИО", "Телефон"], ["Иванова Анна", "8 916 000-00-01"], ["Петров Пётр", "+7 (916) 000-00-02"],
            ["Сидоров", ""], ["", ""]]
    job = service_import(admin, plain_xlsx(rows), {0: "name", 1: "phone"}, deal_line=line)
    assert job.status == ImportJob.Status.DONE and job.created == 3
    deals = list(Deal.objects.filter(client__name__in=["Иванова Анна", "Петров Пётр", "Сидоров"]).order_by("pk"))
    assert [d.responsible_id for d in deals] == [a.pk, b.pk, a.pk]
    assert [Client.objects.get(pk=d.client_id).responsible_id for d in deals] == [a.pk, b.pk, a.pk]
    assert Notification.objects.filter(user=a, params__about="distributed", params__n=2).exists()
    # nobody on shift: the deals wait, and so do their clients (nobody's yet)
    for user in (a, b):
        shifts.end(user=user)
    job = service_import(admin, plain_xlsx([["ФИО"], ["Клиент в очереди"]]), {0: "name"}, deal_line=line)
    waiting = Deal.objects.get(client__name="Клиент в очереди")
    assert waiting.responsible_id is None and waiting.queued_at is not None
    assert Client.objects.get(pk=waiting.client_id).responsible_id is None
    shifts.start(user=b)
    assert Deal.objects.get(pk=waiting.pk).responsible_id == b.pk
    assert Client.objects.get(pk=waiting.client_id).responsible_id == b.pk


def test_import_rows_with_a_responsible_keep_it(admin, line, stages, media):
    from tests.imports.conftest import service_import
    from tests.imports.files import plain_xlsx

    a, b = on_shift(*managers(2))
    rows = [["ФИО", "Ответственный"], ["Анна", b.username], ["Пётр", ""]]
    service_import(admin, plain_xlsx(rows), {0: "name", 1: "responsible"}, deal_line=line)
    assert Deal.objects.get(client__name="Анна").responsible_id == b.pk
    assert Deal.objects.get(client__name="Пётр").responsible_id == a.pk


def test_the_quick_deal_can_go_to_the_next_manager(admin_client, admin, line, stages):
    (mary,) = on_shift(*managers(1))
    client = ClientFactory(responsible=admin)
    url = reverse("deals:quick", args=[client.pk])
    assert "next manager on shift" in admin_client.get(url, headers={"HX-Request": "true"}).content.decode()
    admin_client.post(url, {"name": "Given", "budget": "0", "stage": stages[0].pk, "distribute": "on"}, headers={"HX-Request": "true"})
    admin_client.post(url, {"name": "Mine", "budget": "0", "stage": stages[0].pk}, headers={"HX-Request": "true"})
    assert Deal.objects.get(name="Given").responsible_id == mary.pk
    assert Deal.objects.get(name="Mine").responsible_id == admin.pk
    assert Client.objects.get(pk=client.pk).responsible_id == admin.pk  # an owned client stays with its owner


def test_line_settings_save_the_distribution(admin_client, line, stages, team):
    url = reverse("deals:line-distribution", args=[line.funnel_id, line.pk])
    prefix = f"line-{line.pk}-"
    closing = [stages[0].pk]
    response = admin_client.post(url, {prefix + "distribution": "least_loaded", prefix + "cap": "30",
                                       prefix + "shift_end": "hand_back", prefix + "team_ids": [team.pk],
                                       prefix + "closing": closing}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Least loaded" in response.content.decode()
    line.refresh_from_db()
    assert (line.distribution, line.cap, line.shift_end) == ("least_loaded", 30, "hand_back")
    assert list(line.teams.all()) == [team]
    assert [s.pk for s in line.stages.filter(closes=True)] == closing
    bad = admin_client.post(url, {prefix + "distribution": "least_loaded", prefix + "cap": "0", prefix + "shift_end": "keep"},
                            headers={"HX-Request": "true"})
    assert bad.status_code == 200 and "greater than or equal to 1" in bad.content.decode()
    line.refresh_from_db()
    assert line.cap == 30  # nothing saved


def test_a_manager_may_not_change_the_distribution(manager_client, line):
    url = reverse("deals:line-distribution", args=[line.funnel_id, line.pk])
    prefix = f"line-{line.pk}-"
    response = manager_client.post(url, {prefix + "distribution": "off", prefix + "shift_end": "keep"})
    assert response.status_code == 403
    line.refresh_from_db()
    assert line.distribution == "round_robin"


@pytest.mark.parametrize("language,expected", [("en", "1st line"), ("ru", "1-я линия")])
def test_feed_reasons_are_in_the_readers_language(language, expected, admin, line, stages, client):
    on_shift(*managers(1))
    deal = new_deal(admin, stages[0])
    admin.language = language
    admin.save()
    client.force_login(admin)
    with translation.override(language):
        page = client.get(reverse("clients:feed", args=[deal.client_id])).content.decode()
    assert expected in page and ("по кругу" in page) == (language == "ru")


def test_a_long_queue_is_handed_out_in_batches_in_order(admin, line, stages, monkeypatch):
    monkeypatch.setattr(distribution, "DRAIN_BATCH", 2)
    waiting = [new_deal(admin, stages[0], f"Lead {i}") for i in range(5)]
    (mary,) = managers(1)
    shifts.start(user=mary)
    assert [Deal.objects.get(pk=d.pk).responsible_id for d in waiting] == [mary.pk] * 5
    assert Activity.objects.filter(kind=Activity.Kind.ASSIGNED, field="round_robin").count() == 5
    # with a cap, the batches stop where the room ends
    otto = UserFactory(username="otto2", role=role("Manager"))
    more = [new_deal(admin, stages[0], f"More {i}") for i in range(4)]  # mary is still on shift: hers
    assert {Deal.objects.get(pk=d.pk).responsible_id for d in more} == {mary.pk}
    shifts.end(user=mary)
    Line.objects.filter(pk=line.pk).update(cap=3)
    extra = [new_deal(admin, stages[0], f"Extra {i}") for i in range(5)]
    assert distribution.drain(line.pk) == 0  # nobody on shift
    shifts.start(user=otto)
    assert [Deal.objects.get(pk=d.pk).responsible_id for d in extra] == [otto.pk] * 3 + [None, None]


@pytest.mark.django_db(transaction=True)
def test_distributing_locks_the_line_not_its_funnel(stages):
    """Lines of one funnel distribute side by side, and the funnel's settings stay writable."""
    import threading

    from django.db import connection, transaction

    from deals.models import Funnel

    first, second = Line.objects.filter(funnel__name="Sales").order_by("position")
    answers = []

    def other_connection():
        try:
            with transaction.atomic():
                Funnel.objects.select_for_update(nowait=True).get(pk=first.funnel_id)
                Line.objects.select_for_update(nowait=True).get(pk=second.pk)
                answers.append("free")
        except Exception as error:
            answers.append(type(error).__name__)
        finally:
            connection.close()

    with transaction.atomic():
        distribution.lock(first.pk)
        thread = threading.Thread(target=other_connection)
        thread.start()
        thread.join(20)
    assert answers == ["free"]
