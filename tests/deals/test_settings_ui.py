"""Funnel settings as a quiet list: drag-and-drop saves by fetch, names renamed in place, deletions confirmed."""

import json

import pytest
from django.urls import reverse
from django.utils import translation

from clients.models import SavedFilter
from deals.models import Deal, Funnel, Line, Stage
from tests.conftest import HX
from tests.factories import DealFactory, FunnelFactory

pytestmark = pytest.mark.django_db


def order_of(line):
    return list(Stage.objects.filter(line=line).order_by("position").values_list("pk", flat=True))


def snapshot():
    """Everything a settings write could change."""
    return (
        list(Funnel.objects.order_by("pk").values_list("pk", "name", "position", "is_default_name")),
        list(Line.objects.order_by("pk").values_list("pk", "funnel", "name", "position", "is_default_name")),
        list(Stage.objects.order_by("pk").values_list("pk", "line", "name", "position", "color", "is_default_name")),
        list(Deal.objects.order_by("pk").values_list("pk", "stage", "version")),
    )


# Reorder (drag and drop, Alt+arrows) ------------------------------------------------------------


def test_dropped_order_is_saved_and_answered_as_json(admin_client, sales_funnel, stages):
    line = stages[0].line
    order = [stages[3].pk, *[s.pk for s in stages if s != stages[3]]]
    response = admin_client.post(reverse("deals:stages-order", args=[sales_funnel.pk, line.pk]), {"order": order}, headers=HX)
    assert response.status_code == 200
    assert response.json() == {"text": "Order saved."}
    assert order_of(line) == order


def test_a_stale_order_is_refused_with_409_and_nothing_changes(admin_client, sales_funnel, stages):
    line = stages[0].line
    before = snapshot()
    response = admin_client.post(reverse("deals:stages-order", args=[sales_funnel.pk, line.pk]),
                                 {"order": [s.pk for s in stages[1:]]}, headers=HX)  # one stage missing
    assert response.status_code == 409
    assert "reload the page" in response.json()["error"]
    assert snapshot() == before


def test_lines_reorder_by_fetch(admin_client, sales_funnel):
    ids = list(Line.objects.filter(funnel=sales_funnel).order_by("-position").values_list("pk", flat=True))
    response = admin_client.post(reverse("deals:lines-order", args=[sales_funnel.pk]), {"order": ids}, headers=HX)
    assert response.status_code == 200
    assert list(Line.objects.filter(funnel=sales_funnel).order_by("position").values_list("pk", flat=True)) == ids


def test_the_page_is_a_calm_list(admin_client, sales_funnel, stages):
    page = admin_client.get(reverse("deals:settings", args=[sales_funnel.pk])).content.decode()
    # per row: a handle, a swatch, the name, one "⋯" menu (no Save / ↑ / ↓ / Delete button wall)
    assert page.count('class="handle drag-handle stage-handle"') == Stage.objects.filter(line__funnel=sales_funnel).count()
    assert ">Save stage order<" not in page and 'data-move="up"' not in page
    assert f'data-reorder-url="{reverse("deals:stages-order", args=[sales_funnel.pk, stages[0].line_id])}"' in page
    assert "Alt+↑" in page


# Rename and recolour in place -------------------------------------------------------------------


def test_rename_in_place_answers_with_the_row(admin_client, sales_funnel, stages):
    url = reverse("deals:stage-update", args=[sales_funnel.pk, stages[1].pk])
    response = admin_client.post(url, {"name": "Talking", "color": stages[1].color}, headers=HX)
    assert response.status_code == 200
    assert f'id="stage-{stages[1].pk}"' in response.content.decode() and "Talking" in response.content.decode()
    assert json.loads(response["HX-Trigger"]) == {"settings-status": {"text": "Stage saved."}}
    stages[1].refresh_from_db()
    assert stages[1].name == "Talking"


def test_a_refused_name_comes_back_inline_with_what_was_typed(admin_client, sales_funnel, stages):
    before = snapshot()
    typed = "x" * 61
    response = admin_client.post(reverse("deals:stage-update", args=[sales_funnel.pk, stages[1].pk]),
                                 {"name": typed, "color": "red"}, headers=HX)
    assert response.status_code == 200 and "HX-Trigger" not in response
    body = response.content.decode()
    assert f'value="{typed}"' in body and 'aria-invalid="true"' in body and 'role="alert"' in body
    assert snapshot() == before


def test_a_refused_line_name_and_new_stage_come_back_inline(admin_client, sales_funnel, stages):
    before = snapshot()
    line = stages[0].line
    response = admin_client.post(reverse("deals:line-rename", args=[sales_funnel.pk, line.pk]), {"name": ""}, headers=HX)
    assert response.status_code == 200 and "Give the line a name" in response.content.decode()
    response = admin_client.post(reverse("deals:stage-create", args=[sales_funnel.pk, line.pk]),
                                 {"name": "y" * 70, "color": "blue"}, headers=HX)
    assert 'role="alert"' in response.content.decode() and "HX-Trigger" not in response
    assert f'value="{"y" * 70}"' in response.content.decode()
    assert snapshot() == before


def test_add_a_stage_in_place(admin_client, sales_funnel, stages):
    line = stages[0].line
    response = admin_client.post(reverse("deals:stage-create", args=[sales_funnel.pk, line.pk]),
                                 {"name": "Upsell", "color": "blue"}, headers=HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="line-{line.pk}"' in body and "Upsell" in body and "data-autofocus" in body
    assert Stage.objects.get(name="Upsell").position == len(stages) + 1


def test_recolouring_a_default_stage_keeps_its_translation(admin_client, admin, sales_funnel, stages):
    admin.language = "ru"
    admin.save(update_fields=["language"])
    with translation.override("ru"):
        shown = str(stages[0].label)
    assert shown != stages[0].name  # "Не обработано"
    url = reverse("deals:stage-update", args=[sales_funnel.pk, stages[0].pk])
    admin_client.post(url, {"name": shown, "color": "red"}, headers=HX)
    stages[0].refresh_from_db()
    assert (stages[0].name, stages[0].is_default_name, stages[0].color) == ("Not processed", True, "red")


def test_rename_the_funnel_and_a_line_in_place(admin_client, sales_funnel, stages):
    response = admin_client.post(reverse("deals:funnel-rename", args=[sales_funnel.pk]), {"name": "Продажи 2026"}, headers=HX)
    assert response.status_code == 200 and 'id="funnel-name-edit"' in response.content.decode()
    line = stages[0].line
    response = admin_client.post(reverse("deals:line-rename", args=[sales_funnel.pk, line.pk]), {"name": "Первая"}, headers=HX)
    assert response.status_code == 200 and f'id="line-{line.pk}-name-edit"' in response.content.decode()
    sales_funnel.refresh_from_db()
    line.refresh_from_db()
    assert (sales_funnel.name, line.name) == ("Продажи 2026", "Первая")


# Deleting: a confirmation that says what goes, and only POST deletes ------------------------------


def test_funnel_delete_confirmation_counts_lines_and_stages(admin_client):
    funnel = FunnelFactory(name="Partners")
    Line.objects.create(funnel=funnel, name="Second", position=2)
    response = admin_client.get(reverse("deals:funnel-delete", args=[funnel.pk]), headers=HX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Delete the funnel “Partners”?" in body and "2 lines" in body and "3 stages" in body
    assert "It holds no deals." in body and ">Delete funnel<" in body
    assert Funnel.objects.filter(pk=funnel.pk).exists()  # a GET only asks
    # without htmx: a page of its own, Cancel leads back to the settings
    page = admin_client.get(reverse("deals:funnel-delete", args=[funnel.pk])).content.decode()
    assert "<html" in page and reverse("deals:settings", args=[funnel.pk]) in page
    response = admin_client.post(reverse("deals:funnel-delete", args=[funnel.pk]), headers=HX)
    assert response.status_code in (200, 204) and response["HX-Redirect"] == reverse("deals:funnels")
    assert not Funnel.objects.filter(pk=funnel.pk).exists()
    assert not Stage.objects.filter(line__funnel_id=funnel.pk).exists()


def test_funnel_with_deals_says_so_and_offers_no_delete(admin_client, sales_funnel, stages):
    DealFactory(stage=stages[0])
    gone = DealFactory(stage=stages[1])
    Deal.objects.filter(pk=gone.pk).update(deleted_at="2026-01-01T00:00Z")
    body = admin_client.get(reverse("deals:funnel-delete", args=[sales_funnel.pk]), headers=HX).content.decode()
    assert "The funnel still holds 2 deals (deleted deals count too)." in body
    assert ">Delete funnel<" not in body


def test_line_delete_confirmation(admin_client, sales_funnel, stages):
    second = Line.objects.get(funnel=sales_funnel, position=2)
    body = admin_client.get(reverse("deals:line-delete", args=[sales_funnel.pk, second.pk]), headers=HX).content.decode()
    n = Stage.objects.filter(line=second).count()
    assert f"Deleting the line also deletes its {n} stages, for good." in body and ">Delete line<" in body
    assert Line.objects.filter(pk=second.pk).exists()
    DealFactory(stage=stages[0])
    body = admin_client.get(reverse("deals:line-delete", args=[sales_funnel.pk, stages[0].line_id]), headers=HX).content.decode()
    assert "The line still holds 1 deal" in body and ">Delete line<" not in body


def test_the_only_line_cannot_go_and_the_confirmation_says_so(admin_client):
    funnel = FunnelFactory()
    line = funnel.lines.get()
    body = admin_client.get(reverse("deals:line-delete", args=[funnel.pk, line.pk]), headers=HX).content.decode()
    assert "A funnel needs at least one line" in body and ">Delete line<" not in body


def test_a_line_of_another_funnel_is_404(admin_client, sales_funnel):
    other = FunnelFactory().lines.get()
    assert admin_client.get(reverse("deals:line-delete", args=[sales_funnel.pk, other.pk]), headers=HX).status_code == 404


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_deleting_needs_post(method, admin_client, sales_funnel, stages):
    before = snapshot()
    for url in (reverse("deals:funnel-delete", args=[sales_funnel.pk]),
                reverse("deals:line-delete", args=[sales_funnel.pk, stages[0].line_id]),
                reverse("deals:stage-delete", args=[sales_funnel.pk, stages[0].pk])):
        assert getattr(admin_client, method)(url).status_code == 405
        assert admin_client.get(url, headers=HX).status_code == 200  # GET only shows the confirmation
    assert snapshot() == before


def test_deleting_checks_the_csrf_token(sales_funnel, admin):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin)
    funnel = FunnelFactory()
    assert strict.post(reverse("deals:funnel-delete", args=[funnel.pk])).status_code == 403
    assert Funnel.objects.filter(pk=funnel.pk).exists()


# Who may ---------------------------------------------------------------------------------------


def writes(funnel, line, stage):
    return [
        (reverse("deals:stages-order", args=[funnel.pk, line.pk]), {"order": [stage.pk]}),
        (reverse("deals:lines-order", args=[funnel.pk]), {"order": [line.pk]}),
        (reverse("deals:stage-update", args=[funnel.pk, stage.pk]), {"name": "Hacked", "color": "red"}),
        (reverse("deals:stage-create", args=[funnel.pk, line.pk]), {"name": "Hacked", "color": "red"}),
        (reverse("deals:line-rename", args=[funnel.pk, line.pk]), {"name": "Hacked"}),
        (reverse("deals:funnel-rename", args=[funnel.pk]), {"name": "Hacked"}),
        (reverse("deals:line-delete", args=[funnel.pk, line.pk]), {}),
        (reverse("deals:stage-delete", args=[funnel.pk, stage.pk]), {"move_to": stage.pk}),
        (reverse("deals:funnel-delete", args=[funnel.pk]), {}),
    ]


@pytest.mark.parametrize("htmx", [False, True])
def test_a_manager_gets_403_and_nothing_changes(htmx, manager_client, sales_funnel, stages):
    empty = FunnelFactory(name="Empty")  # deletable, were it allowed
    empty_line = Line.objects.create(funnel=empty, name="Spare", position=2)
    Stage.objects.create(line=empty_line, name="Spare stage", position=1)
    before = snapshot()
    headers = HX if htmx else {}
    for funnel, line, stage in ((sales_funnel, stages[0].line, stages[0]), (empty, empty_line, empty_line.stages.get())):
        for url, data in writes(funnel, line, stage):
            assert manager_client.post(url, data, headers=headers).status_code == 403, url
            if "delete" in url:
                assert manager_client.get(url, headers=headers).status_code == 403, url
    assert manager_client.get(reverse("deals:settings", args=[sales_funnel.pk])).status_code == 403
    assert snapshot() == before


# Query counts: the same at two data sizes ---------------------------------------------------------


def grow(funnel, size):
    for i in range(size):
        line = Line.objects.create(funnel=funnel, name=f"Line {i}", position=10 + i)
        for j in range(3):
            Stage.objects.create(line=line, name=f"Stage {i}.{j}", position=j + 1)
            DealFactory(stage=Stage.objects.filter(line=line).last())


@pytest.mark.parametrize("size", [1, 8])
def test_settings_page_queries_do_not_grow(size, admin_client, sales_funnel, django_assert_num_queries):
    grow(sales_funnel, size)
    with django_assert_num_queries(6):  # user with perms, funnel, lines, stages, teams, the lines' teams
        response = admin_client.get(reverse("deals:settings", args=[sales_funnel.pk]))
    assert response.status_code == 200


@pytest.mark.parametrize("size", [1, 8])
def test_confirmations_and_pieces_query_counts(size, admin_client, sales_funnel, stages, django_assert_num_queries):
    grow(sales_funnel, size)
    line = stages[0].line
    with django_assert_num_queries(5):  # user with perms, funnel, lines, stages, deal count
        admin_client.get(reverse("deals:funnel-delete", args=[sales_funnel.pk]), headers=HX)
    with django_assert_num_queries(5):  # user with perms, funnel, lines, stages, deal count
        admin_client.get(reverse("deals:line-delete", args=[sales_funnel.pk, line.pk]), headers=HX)
    with django_assert_num_queries(5):  # user with perms, funnel, stage, update, stage again
        admin_client.post(reverse("deals:stage-update", args=[sales_funnel.pk, stages[2].pk]),
                          {"name": "Renamed", "color": "green"}, headers=HX)


# Saved filters -----------------------------------------------------------------------------------


def test_saved_filter_delete_is_confirmed_and_needs_post(admin_client, admin):
    saved = SavedFilter.objects.create(user=admin, name="Москва", query="q=Москва")
    page = admin_client.get(reverse("clients:filters"), headers=HX).content.decode()
    assert "hx-confirm=\"Delete the saved filter “Москва”? Clients are not affected.\"" in page
    url = reverse("clients:filter-delete", args=[saved.pk])
    assert admin_client.get(url).status_code == 405
    assert SavedFilter.objects.filter(pk=saved.pk).exists()
    response = admin_client.post(url, headers=HX)
    assert response.status_code in (200, 204) and response["HX-Redirect"] == reverse("clients:list")
    assert not SavedFilter.objects.filter(pk=saved.pk).exists()
