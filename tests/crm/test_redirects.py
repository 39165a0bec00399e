"""No open redirects: a `next` or return address from the request stays on this site."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks import services as task_services
from tasks.models import TaskType
from tests.conftest import HX
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

HOSTILE = ["/\\evil.example", "//evil.example", "https://evil.example/x", "/\\/evil.example", "\\\\evil.example",
           "javascript:alert(1)"]


def where(response) -> str:
    return response.headers.get("HX-Redirect") or response.headers.get("Location", "")


@pytest.mark.parametrize("target", HOSTILE)
def test_notification_read_next(admin_client, target):
    response = admin_client.post(reverse("crm:notifications-read"), {"next": target})
    assert response.status_code == 302 and where(response) == reverse("crm:notifications")


@pytest.mark.parametrize("target", HOSTILE)
def test_quick_deal_next(admin_client, admin, target):
    from deals.models import Stage

    client = ClientFactory(responsible=admin)
    stage = Stage.objects.filter(line__funnel__name="Sales").first()
    response = admin_client.post(reverse("deals:quick", args=[client.pk]),
                                 {"name": "Сделка", "stage": stage.pk, "budget": "0", "next": target}, headers=HX)
    assert where(response) == client.get_absolute_url()


@pytest.mark.parametrize("target", HOSTILE)
def test_task_complete_next(admin_client, admin, target):
    client = ClientFactory(responsible=admin)
    task = task_services.task_create(actor=admin, client=client, type=TaskType.objects.first(), description="Позвонить",
                                     responsible=admin, deadline=timezone.now() + timedelta(days=1))
    response = admin_client.post(reverse("tasks:complete", args=[task.pk]), {"result": "ok", "next": target}, headers=HX)
    assert where(response) == reverse("tasks:list")


@pytest.mark.parametrize("target", HOSTILE)
def test_layout_save_return_address(admin_client, target):
    response = admin_client.post(reverse("clients:layout-save", args=["contact"]), {},
                                 headers={**HX, "HX-Current-URL": target})
    assert where(response) == reverse("clients:list")


def test_a_local_next_is_kept(admin_client):
    response = admin_client.post(reverse("crm:notifications-read"), {"next": "/clients/?q=%D0%98"})
    assert where(response) == "/clients/?q=%D0%98"
