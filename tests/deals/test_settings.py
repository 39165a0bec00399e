import pytest
from django.urls import reverse

from deals.models import Deal, Funnel, Line, Stage
from tests.conftest import HX
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db


def test_add_rename_recolour_and_reorder_stages(admin_client, sales_funnel, stages):
    line = stages[0].line
    admin_client.post(reverse("deals:stage-create", args=[sales_funnel.pk, line.pk]), {"name": "Upsell", "color": "green"})
    upsell = Stage.objects.get(name="Upsell")
    assert upsell.position == 9 and upsell.color == "green"
    admin_client.post(reverse("deals:stage-update", args=[sales_funnel.pk, stages[0].pk]), {"name": "Новые", "color": "red"})
    stages[0].refresh_from_db()
    assert (stages[0].name, stages[0].color, stages[0].is_default_name) == ("Новые", "red", False)
    order = [upsell.pk] + [s.pk for s in stages]
    response = admin_client.post(reverse("deals:stages-order", args=[sales_funnel.pk, line.pk]), {"order": order})
    assert response.status_code == 302
    assert list(Stage.objects.filter(line=line).order_by("position").values_list("pk", flat=True)) == order


def test_reorder_with_a_foreign_stage_is_refused(admin_client, sales_funnel, stages):
    line = stages[0].line
    other = Stage.objects.filter(line__position=2).first()
    before = list(Stage.objects.filter(line=line).order_by("position").values_list("pk", flat=True))
    admin_client.post(reverse("deals:stages-order", args=[sales_funnel.pk, line.pk]), {"order": [other.pk, *before[1:]]})
    assert list(Stage.objects.filter(line=line).order_by("position").values_list("pk", flat=True)) == before


def test_deleting_a_stage_with_deals_asks_where_and_moves_them_in_one_go(admin_client, sales_funnel, stages):
    held = [DealFactory(stage=stages[1]) for _ in range(3)]
    confirm = admin_client.get(reverse("deals:stage-delete", args=[sales_funnel.pk, stages[1].pk]), headers=HX).content.decode()
    assert "The stage holds 3 deals." in confirm and "Move its deals to" in confirm
    # without a target: refused, nothing changes
    admin_client.post(reverse("deals:stage-delete", args=[sales_funnel.pk, stages[1].pk]), {})
    assert Stage.objects.filter(pk=stages[1].pk).exists()
    response = admin_client.post(reverse("deals:stage-delete", args=[sales_funnel.pk, stages[1].pk]), {"move_to": stages[4].pk})
    assert response.status_code == 302
    assert not Stage.objects.filter(pk=stages[1].pk).exists()
    assert set(Deal.objects.filter(pk__in=[d.pk for d in held]).values_list("stage", flat=True)) == {stages[4].pk}


def test_last_stage_of_a_line_cannot_go(admin_client, sales_funnel):
    line = Line.objects.create(funnel=sales_funnel, name="Tiny", position=3)
    only = Stage.objects.create(line=line, name="Only", position=1)
    admin_client.post(reverse("deals:stage-delete", args=[sales_funnel.pk, only.pk]), {})
    assert Stage.objects.filter(pk=only.pk).exists()


def test_lines_add_rename_reorder_delete(admin_client, sales_funnel):
    admin_client.post(reverse("deals:line-create", args=[sales_funnel.pk]), {"name": "3rd line"})
    third = Line.objects.get(name="3rd line")
    admin_client.post(reverse("deals:line-rename", args=[sales_funnel.pk, third.pk]), {"name": "VIP line"})
    third.refresh_from_db()
    assert third.name == "VIP line"
    ids = list(Line.objects.filter(funnel=sales_funnel).order_by("-position").values_list("pk", flat=True))
    admin_client.post(reverse("deals:lines-order", args=[sales_funnel.pk]), {"order": ids})
    assert list(Line.objects.filter(funnel=sales_funnel).order_by("position").values_list("pk", flat=True)) == ids
    admin_client.post(reverse("deals:line-delete", args=[sales_funnel.pk, third.pk]))
    assert not Line.objects.filter(pk=third.pk).exists()


def test_line_with_deals_is_not_deleted(admin_client, sales_funnel, stages):
    DealFactory(stage=stages[0])
    response = admin_client.post(reverse("deals:line-delete", args=[sales_funnel.pk, stages[0].line_id]), follow=True)
    assert "The line still has deals" in response.content.decode()
    assert Line.objects.filter(pk=stages[0].line_id).exists()


def test_several_funnels(admin_client):
    response = admin_client.post(reverse("deals:funnels"), {"name": "Партнёры"})
    funnel = Funnel.objects.get(name="Партнёры")
    assert response["Location"] == reverse("deals:settings", args=[funnel.pk])
    assert funnel.lines.get().stages.count() == 1
    admin_client.post(reverse("deals:funnel-rename", args=[funnel.pk]), {"name": "Partners"})
    funnel.refresh_from_db()
    assert funnel.name == "Partners"
    board = admin_client.get(funnel.get_absolute_url()).content.decode()
    assert "Partners" in board and "Sales" in board  # the funnel switch
    admin_client.post(reverse("deals:funnel-delete", args=[funnel.pk]))
    assert not Funnel.objects.filter(pk=funnel.pk).exists()


@pytest.mark.parametrize("extra", [0, 12])
def test_settings_page_query_count(extra, admin_client, sales_funnel, stages, django_assert_num_queries):
    for i in range(extra):
        Stage.objects.create(line=stages[0].line, name=f"s{i}", position=20 + i)
    with django_assert_num_queries(6):  # user with perms, funnel, lines, stages, teams, the lines' teams
        admin_client.get(reverse("deals:settings", args=[sales_funnel.pk]))


def test_manager_cannot_configure(manager_client, sales_funnel, stages):
    response = manager_client.post(reverse("deals:stage-update", args=[sales_funnel.pk, stages[0].pk]), {"name": "Hacked", "color": "red"})
    assert response.status_code == 403
    stages[0].refresh_from_db()
    assert stages[0].name == "Not processed"
    assert "Funnel settings" not in manager_client.get(sales_funnel.get_absolute_url()).content.decode()
