import re

import pytest
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from tests.conftest import HX
from tests.factories import ClientFactory, CustomFieldFactory, UserFactory

pytestmark = pytest.mark.django_db


def create(client, **data):
    payload = {"name": "Иванов Иван", "phone": "8 (916) 123-45-67", "priority": "normal", "lifecycle": "potential"}
    payload.update(data)
    return client.post(reverse("clients:create"), payload, headers=HX)


def test_create_normalises_phone_and_records_author(manager_client, manager):
    response = create(manager_client, email="ivan@example.com", extra_phones_text="+1 202 555 0143, 89161112233")
    assert "HX-Redirect" in response.headers
    created = Client.objects.get()
    assert response["HX-Redirect"] == created.get_absolute_url()
    assert created.phone == "+79161234567"
    assert created.extra_phones == ["+12025550143", "+79161112233"]
    assert created.phone_digits == "79161234567 12025550143 79161112233"
    assert created.responsible == manager and created.created_by == manager


def test_31_character_name_refused_with_message_and_input_kept(manager_client):
    name = "Б" * 31
    response = create(manager_client, name=name, email="keep@example.com")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Ensure this value has at most 30 characters (it has 31)." in page
    assert f'value="{name}"' in page and 'value="keep@example.com"' in page  # nothing typed is lost
    assert not Client.objects.exists()


def test_30_character_name_accepted(manager_client):
    assert "HX-Redirect" in create(manager_client, name="Я" * 30).headers


def test_errors_in_russian_for_russian_user(client, manager):
    manager.language = "ru"
    manager.save()
    client.force_login(manager)
    page = create(client, name="", phone="12", email="not-an-email").content.decode()
    assert "Обязательное поле." in page
    assert "Введите правильный адрес электронной почты." in page
    assert "Введите корректный номер телефона" in page


def test_text_custom_field_limited_to_30(manager_client):
    field = CustomFieldFactory(label="Nickname")
    response = create(manager_client, **{field.column_key: "x" * 31})
    assert "at most 30 characters" in response.content.decode()
    assert "HX-Redirect" in create(manager_client, **{field.column_key: "x" * 30}).headers
    assert Client.objects.get().custom == {field.key: "x" * 30}


def test_custom_field_types_stored_in_json(manager_client):
    number = CustomFieldFactory(kind="number")
    day = CustomFieldFactory(kind="date")
    pick = CustomFieldFactory(kind="select", choices=["Gold", "Silver"])
    response = create(manager_client, **{number.column_key: "12.5", day.column_key: "2024-02-29", pick.column_key: "Gold"})
    assert "HX-Redirect" in response.headers
    assert Client.objects.get().custom == {number.key: 12.5, day.key: "2024-02-29", pick.key: "Gold"}
    response = create(manager_client, name="Other", **{number.column_key: "abc", pick.column_key: "Bronze"})
    page = response.content.decode()
    assert "Enter a number." in page and "Select a valid choice." in page


def test_edit_keeps_values_of_deleted_custom_fields(manager_client, manager):
    gone = CustomFieldFactory(is_active=False)
    obj = ClientFactory(responsible=manager, custom={gone.key: "kept"})
    response = manager_client.post(
        reverse("clients:edit", args=[obj.pk]),
        {"name": "Renamed", "phone": "", "priority": "high", "lifecycle": "converted"},
        headers=HX,
    )
    assert "HX-Redirect" in response.headers
    obj.refresh_from_db()
    assert obj.name == "Renamed" and obj.custom == {gone.key: "kept"} and obj.modified_by == manager


def test_manager_cannot_reassign_by_crafted_post(manager_client, manager, other_manager):
    obj = ClientFactory(responsible=manager, name="Mine")
    response = manager_client.post(
        reverse("clients:edit", args=[obj.pk]),
        {"name": "Changed", "responsible": other_manager.pk, "priority": "normal", "lifecycle": "potential"},
        headers=HX,
    )
    assert response.status_code == 403
    obj.refresh_from_db()
    assert obj.responsible == manager and obj.name == "Mine"


def test_admin_reassigns(admin_client, manager, other_manager):
    obj = ClientFactory(responsible=manager)
    admin_client.post(
        reverse("clients:edit", args=[obj.pk]),
        {"name": "X", "responsible": other_manager.pk, "priority": "normal", "lifecycle": "potential"},
        headers=HX,
    )
    obj.refresh_from_db()
    assert obj.responsible == other_manager


def test_user_without_create_permission_gets_403_and_nothing_saved(client, nobody):
    client.force_login(nobody)
    assert create(client).status_code == 403
    assert not Client.objects.exists()


@pytest.mark.parametrize("url_name", ["clients:create", "clients:columns", "clients:search"])
def test_form_pages_query_counts(admin_client, url_name, django_assert_max_num_queries):
    CustomFieldFactory.create_batch(3)
    with django_assert_max_num_queries(7):
        assert admin_client.get(reverse(url_name), headers=HX).status_code == 200


def test_edit_form_query_count(admin_client, admin, django_assert_num_queries):
    obj = ClientFactory(responsible=admin)
    UserFactory.create_batch(3)
    with django_assert_num_queries(6):
        # user with perms, client, custom fields, responsible choices, tags choices, tag values
        assert admin_client.get(reverse("clients:edit", args=[obj.pk]), headers=HX).status_code == 200


def edit_payload(**data):
    payload = {"name": "Edited", "phone": "", "priority": "normal", "lifecycle": "potential"}
    payload.update(data)
    return payload


def test_edit_opened_before_another_save_is_not_silently_overwritten(admin_client, admin, manager):
    obj = ClientFactory(name="Original", responsible=admin, city="Тула")
    form_page = admin_client.get(reverse("clients:edit", args=[obj.pk]), headers=HX).content.decode()
    seen = re.search(r'name="seen_modified" value="([^"]+)"', form_page).group(1)
    # meanwhile a colleague reassigns the client (e.g. a mass action)
    Client.objects.filter(pk=obj.pk).update(responsible=manager, modified_by=manager, modified_at=timezone.now())
    response = admin_client.post(
        reverse("clients:edit", args=[obj.pk]),
        edit_payload(name="My edit", responsible=admin.pk, seen_modified=seen), headers=HX,
    )
    page = response.content.decode()
    assert response.status_code == 200 and "saved this client while you were editing" in page
    assert 'value="My edit"' in page  # nothing typed is lost
    obj.refresh_from_db()
    assert obj.name == "Original" and obj.responsible == manager
    new_seen = re.search(r'name="seen_modified" value="([^"]+)"', page).group(1)
    response = admin_client.post(
        reverse("clients:edit", args=[obj.pk]),
        edit_payload(name="My edit", responsible=manager.pk, city="Тула", seen_modified=new_seen), headers=HX,
    )
    assert "HX-Redirect" in response.headers
    obj.refresh_from_db()
    assert obj.name == "My edit" and obj.responsible == manager


def test_service_refuses_reassignment_without_permission(manager, other_manager):
    from django.core.exceptions import PermissionDenied

    from clients import services

    obj = ClientFactory(responsible=manager)
    with pytest.raises(PermissionDenied):
        services.client_update(actor=manager, client=obj, data={"responsible": other_manager})
    obj.refresh_from_db()
    assert obj.responsible == manager


def test_removed_selector_value_is_kept_on_edit(manager_client, manager):
    level = CustomFieldFactory(kind="select", choices=["Gold", "Silver"])
    obj = ClientFactory(responsible=manager, custom={level.key: "Bronze"})
    page = manager_client.get(reverse("clients:edit", args=[obj.pk]), headers=HX).content.decode()
    assert "Bronze (no longer in the list)" in page
    manager_client.post(reverse("clients:edit", args=[obj.pk]), edit_payload(**{level.key: "Bronze"}), headers=HX)
    obj.refresh_from_db()
    assert obj.custom == {level.key: "Bronze"} and obj.name == "Edited"


def test_field_type_locked_once_clients_have_values(admin_client):
    field = CustomFieldFactory(kind="text")
    ClientFactory(custom={field.key: "abc"})
    response = admin_client.post(reverse("fields:edit", args=[field.pk]), {"label": field.label, "entity": "client", "kind": "number"})
    assert "its type cannot change" in response.content.decode()
    field.refresh_from_db()
    assert field.kind == "text"


def test_an_extension_typed_after_the_number_is_kept(manager_client):
    response = create(manager_client, phone="+7 (495) 123-45-67 доб. 1234", extra_phones_text="8 495 765 43 21 ext. 5")
    assert "HX-Redirect" in response.headers
    created = Client.objects.get()
    assert (created.phone, created.extra_phones) == ("+74951234567;ext=1234", ["+74957654321;ext=5"])
    assert created.phone_digits == "74951234567 74957654321"
    edit = manager_client.get(reverse("clients:edit", args=[created.pk])).content.decode()
    assert 'value="+7 495 123-45-67 ext. 1234"' in edit and "+7 495 765-43-21 ext. 5" in edit


def test_other_phones_split_as_the_import_splits_them(manager_client):
    """Commas, semicolons or new lines between numbers; an extension after a comma stays with its number."""
    response = create(manager_client, extra_phones_text="8 495 222-33-44, доб. 123; +7 916 000-11-22\n8 (903) 555-66-77")
    assert "HX-Redirect" in response.headers
    assert Client.objects.get().extra_phones == ["+74952223344;ext=123", "+79160001122", "+79035556677"]
