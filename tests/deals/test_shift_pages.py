"""The shift pages (issue 14): the widget and its buttons, "on shift now" with the queues, the
shift log; what each role sees (own / team / all), what they may do, and the queries each costs
at two sizes."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from deals import shifts
from deals.models import Deal, Line, Shift, ShiftPause
from tests.conftest import HX
from tests.factories import ClientFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def team_lead(team):
    lead_role = role("Manager")
    from django.contrib.auth.models import Group

    from crm.models import Role

    group = Group.objects.create(name="Team lead")
    group.permissions.set(lead_role.group.permissions.all())
    team_role = Role.objects.create(group=group, visibility=Role.Visibility.TEAM)
    return UserFactory(username="lead", role=team_role, team=team)


def test_the_widget_offers_start_then_pause_and_end(manager_client, manager):
    page = manager_client.get(reverse("deals:shift"), headers={**HX, "HX-Current-URL": "http://testserver/deals/1/?line=1"})
    body = page.content.decode()
    assert 'data-shift-action="start"' in body and 'value="/deals/1/?line=1"' in body
    response = manager_client.post(reverse("deals:shift-action", args=["start"]), headers=HX)
    body = response.content.decode()
    assert 'data-shift-action="pause"' in body and 'data-shift-action="end"' in body and "On shift" in body
    assert "shift-changed" in response["HX-Trigger"]
    body = manager_client.post(reverse("deals:shift-action", args=["pause"]), headers=HX).content.decode()
    assert "On a break" in body and 'data-shift-action="resume"' in body
    body = manager_client.post(reverse("deals:shift-action", args=["resume"]), headers=HX).content.decode()
    assert 'data-shift-action="pause"' in body
    response = manager_client.post(reverse("deals:shift-action", args=["end"]), headers=HX)
    assert 'data-shift-action="start"' in response.content.decode() and "Shift ended" in response["HX-Trigger"]
    shift = Shift.objects.get(user=manager)
    assert shift.ended_at and ShiftPause.objects.filter(shift=shift, ended_at__isnull=False).count() == 1


def test_ending_a_shift_twice_says_so(manager_client, manager):
    response = manager_client.post(reverse("deals:shift-action", args=["end"]), headers=HX)
    assert response.status_code == 200 and "You are not on shift" in response["HX-Trigger"]
    assert not Shift.objects.exists()


def test_unknown_actions_and_people_without_deals_are_refused(client, manager_client, nobody):
    assert manager_client.post(reverse("deals:shift-action", args=["hijack"])).status_code == 404
    client.force_login(nobody)
    assert client.post(reverse("deals:shift-action", args=["start"])).status_code == 403
    assert client.get(reverse("deals:shift")).status_code == 403
    assert not Shift.objects.exists()


def test_the_page_shows_the_widget_slot_only_to_those_who_work_deals(manager_client, client, nobody):
    assert 'class="shift-slot"' in manager_client.get(reverse("clients:list")).content.decode()
    client.force_login(nobody)
    assert "shift-slot" not in client.get(reverse("crm:profile")).content.decode()


def test_on_shift_now_lists_who_since_when_and_their_open_deals(admin_client, admin, stages):
    a, b = (UserFactory(username=u, first_name=u.title(), last_name="Manager", role=role("Manager")) for u in ("anna", "boris"))
    shifts.start(user=a)
    shifts.start(user=b)
    shifts.pause(user=b)
    closing = next(s for s in stages if s.closes)
    for stage in (stages[0], stages[1], closing):
        Deal.objects.create(client=ClientFactory(), stage=stage, name="d", responsible=a)
    page = admin_client.get(reverse("deals:shifts")).content.decode()
    assert "Anna Manager" in page and "Boris Manager" in page and "On a break since" in page
    row = page[page.index("Anna Manager"):page.index("</tr>", page.index("Anna Manager"))]
    assert '<td class="num">2</td>' in row  # the closed deal does not count
    assert reverse("deals:shift-end-for", args=[a.pk]) in page


def test_admin_ends_a_shift_someone_left_open(admin_client, manager):
    shifts.start(user=manager)
    response = admin_client.post(reverse("deals:shift-end-for", args=[manager.pk]))
    assert response.status_code == 302
    shift = Shift.objects.get(user=manager)
    assert shift.ended_how == Shift.Ended.ADMIN and shift.ended_by.username == "boss"


def test_a_manager_may_not_end_someone_elses_shift(manager_client, other_manager):
    shifts.start(user=other_manager)
    assert manager_client.post(reverse("deals:shift-end-for", args=[other_manager.pk])).status_code == 403
    assert Shift.objects.get(user=other_manager).ended_at is None


def test_each_role_sees_the_shifts_its_visibility_reaches(client, manager, other_manager, team):
    lead = team_lead(team)
    for user in (manager, other_manager, lead):
        shifts.start(user=user)
    client.force_login(manager)  # own
    page = client.get(reverse("deals:shifts")).content.decode()
    assert str(manager) in page and str(other_manager) not in page and str(lead) not in page
    client.force_login(lead)  # team: mary is in the lead's team, otto is not
    page = client.get(reverse("deals:shifts")).content.decode()
    assert str(manager) in page and str(lead) in page and str(other_manager) not in page
    log = client.get(reverse("deals:shift-log")).content.decode()
    assert str(manager) in log and str(other_manager) not in log
    # asking for someone out of reach shows the reachable ones, never theirs
    log = client.get(reverse("deals:shift-log"), {"user": other_manager.pk}).content.decode()
    assert str(other_manager) not in log
    assert "Queues" not in page  # the queues are for those who configure funnels


def test_the_queues_show_what_waits_and_for_how_long(admin_client, admin, stages):
    line = stages[0].line
    Line.objects.filter(pk=line.pk).update(distribution=Line.Distribution.ROUND_ROBIN)
    from deals import services

    deal = services.deal_create(actor=admin, client=ClientFactory(), stage=stages[0], name="Waiting lead", distribute=True)
    Deal.objects.filter(pk=deal.pk).update(queued_at=timezone.now() - timedelta(hours=2, minutes=5))
    page = admin_client.get(reverse("deals:shifts")).content.decode()
    assert "Queues" in page and "Waiting lead" in page and "2 h 05 min" in page


def test_the_shift_log_keeps_starts_breaks_and_ends(admin_client, manager):
    shift = shifts.start(user=manager)
    start = timezone.now() - timedelta(hours=8)
    Shift.objects.filter(pk=shift.pk).update(started_at=start)
    ShiftPause.objects.create(shift=shift, started_at=start + timedelta(hours=4), ended_at=start + timedelta(hours=4, minutes=30))
    Shift.objects.filter(pk=shift.pk).update(paused_seconds=1800)
    shifts.end(user=manager)
    page = admin_client.get(reverse("deals:shift-log")).content.decode()
    assert "Ended by the manager" in page
    assert "7 h 30 min" in page  # eight hours less the half-hour break
    assert "–" in page  # the break's from–to


SIZES = [1, 12]


@pytest.mark.parametrize("size", SIZES)
def test_widget_queries(size, manager_client, manager, django_assert_num_queries):
    for _ in range(size):  # past shifts do not cost anything
        Shift.objects.create(user=manager, started_at=timezone.now() - timedelta(days=2), ended_at=timezone.now() - timedelta(days=1),
                             seen_at=timezone.now())
    shifts.start(user=manager)
    with django_assert_num_queries(2):  # user with permissions, the open shift (read as it is stamped)
        manager_client.get(reverse("deals:shift"), headers=HX)


@pytest.mark.parametrize("size", SIZES)
def test_on_shift_page_queries(size, admin_client, admin, stages, django_assert_num_queries):
    Line.objects.filter(pk=stages[0].line_id).update(distribution=Line.Distribution.ROUND_ROBIN)
    for i in range(size):
        user = UserFactory(username=f"m{i}", role=role("Manager"))
        shifts.start(user=user)
        Deal.objects.create(client=ClientFactory(), stage=stages[0], name="q", queued_at=timezone.now())
        Deal.objects.create(client=ClientFactory(), stage=stages[0], name="open", responsible=user)
    # user with perms, shifts with their users, open deals, queue totals, lines, first queued deals
    with django_assert_num_queries(6):
        response = admin_client.get(reverse("deals:shifts"))
    assert len(response.context["shifts"]) == size


@pytest.mark.parametrize("size", SIZES)
def test_shift_log_queries(size, admin_client, django_assert_num_queries):
    for i in range(size):
        user = UserFactory(username=f"m{i}", role=role("Manager"))
        shift = shifts.start(user=user)
        ShiftPause.objects.create(shift=shift, started_at=timezone.now(), ended_at=timezone.now())
        shifts.end(user=user)
    # user with perms, users to choose from, totals, the page's count, its shifts, their breaks
    with django_assert_num_queries(6):
        response = admin_client.get(reverse("deals:shift-log"))
    assert len(response.context["page"]) == size


@pytest.mark.parametrize("size", SIZES)
def test_line_distribution_partial_queries(size, admin_client, stages, django_assert_num_queries):
    from tests.factories import TeamFactory

    line = stages[0].line
    for _ in range(size):
        TeamFactory()
    url = reverse("deals:line-distribution", args=[line.funnel_id, line.pk])
    data = {f"line-{line.pk}-distribution": "round_robin", f"line-{line.pk}-shift_end": "keep"}
    # the request and the line's card before and after the write, and the write itself; as many with one team as with 12
    with django_assert_num_queries(16):
        response = admin_client.post(url, data, headers=HX)
    assert response.status_code == 200
