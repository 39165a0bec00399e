import pytest
from django.urls import reverse

from clients.models import CardField, Client, CustomField
from tests.conftest import HX
from tests.factories import ClientFactory, CustomFieldFactory, UserFactory, role

pytestmark = pytest.mark.django_db


def rows(block="contact"):
    return list(CardField.objects.filter(block=block).select_related("custom_field").order_by("position", "pk"))


def save(client, block, rows_data):
    payload = {"order": [r["pk"] for r in rows_data]}
    for r in rows_data:
        payload[f"label_{r['pk']}"] = r.get("label", "")
        if r.get("shown", True):
            payload[f"shown_{r['pk']}"] = "1"
        if r.get("mv", True):
            payload[f"mv_{r['pk']}"] = "1"
        if r.get("me", True):
            payload[f"me_{r['pk']}"] = "1"
        if r.get("delete"):
            payload[f"delete_{r['pk']}"] = "1"
    return client.post(reverse("clients:layout-save", args=[block]), payload, headers=HX)


def test_editor_has_admin_and_manager_tabs(admin_client):
    page = admin_client.get(reverse("clients:layout", args=["contact"]), headers=HX).content.decode()
    assert "Display settings" in page and ">Admin<" in page and ">Manager<" in page
    assert "Player ID" in page and "Add a field" in page


def test_add_a_selector_then_reorder_rename_hide_and_restrict(admin_client):
    response = admin_client.post(reverse("clients:layout-add", args=["contact"]),
                                 {"kind": "select", "label": "Сегмент", "choices": "A\nB\nA"}, headers=HX)
    assert "Сегмент" in response.content.decode()
    field = CustomField.objects.get(label="Сегмент")
    assert field.choices == ["A", "B"] and field.entity == "client"
    current = rows()
    segment = next(r for r in current if r.custom_field_id == field.pk)
    email = next(r for r in current if r.system_key == "email")
    city = next(r for r in current if r.system_key == "city")
    order = [segment] + [r for r in current if r.pk != segment.pk]
    data = []
    for r in order:
        item = {"pk": r.pk}
        if r.pk == segment.pk:
            item.update(me=False)
        if r.pk == email.pk:
            item.update(label="Почта")
        if r.pk == city.pk:
            item.update(shown=False)
        data.append(item)
    assert "HX-Redirect" in save(admin_client, "contact", data).headers
    after = rows()
    assert after[0].pk == segment.pk and not after[0].manager_editable and after[0].manager_visible
    assert next(r for r in after if r.pk == email.pk).label == "Почта"
    assert next(r for r in after if r.pk == city.pk).hidden


def test_deleting_a_custom_field_keeps_its_values(admin_client):
    field = CustomFieldFactory(label="Удаляемое")
    row = CardField.objects.create(block="contact", custom_field=field, position=50)
    obj = ClientFactory(custom={field.key: "значение"})
    save(admin_client, "contact", [{"pk": r.pk, "delete": r.pk == row.pk} for r in rows()])
    field.refresh_from_db()
    assert not field.is_active
    assert Client.objects.get(pk=obj.pk).custom == {field.key: "значение"}
    assert "Удаляемое" not in admin_client.get(obj.get_absolute_url()).content.decode()
    admin_client.post(reverse("fields:toggle", args=[field.pk]))  # restore under Fields
    assert "значение" in admin_client.get(obj.get_absolute_url()).content.decode()


@pytest.fixture
def locked_setup(admin):
    """A selector managers see but may not edit, and a text field they may not see."""
    readonly = CustomFieldFactory(label="Класс", kind="select", choices=["A", "B"])
    secret = CustomFieldFactory(label="Секрет", kind="text")
    CardField.objects.create(block="contact", custom_field=readonly, position=0, manager_editable=False)
    CardField.objects.create(block="contact", custom_field=secret, position=60, manager_visible=False)
    CardField.objects.filter(block="contact", system_key="responsible").update(manager_editable=False)
    return readonly, secret


def test_manager_sees_the_manager_layout_in_the_admins_order(manager_client, manager, locked_setup):
    readonly, secret = locked_setup
    obj = ClientFactory(responsible=manager, custom={readonly.key: "A", secret.key: "top secret"})
    page = manager_client.get(obj.get_absolute_url()).content.decode()
    assert "Класс" in page and "Секрет" not in page and "top secret" not in page
    assert page.index("Класс") < page.index("Phone")  # the admin put it first
    form = manager_client.get(reverse("clients:edit", args=[obj.pk]), headers=HX).content.decode()
    assert readonly.key not in form and secret.key not in form
    table = manager_client.get(reverse("clients:columns"), headers=HX).content.decode()
    assert "Секрет" not in table and "Класс" in table


def test_manager_write_to_read_only_or_hidden_field_is_refused(manager_client, manager, locked_setup):
    readonly, secret = locked_setup
    obj = ClientFactory(name="Keep", responsible=manager, custom={readonly.key: "A", secret.key: "s"})
    base = {"name": "Changed", "priority": "normal", "lifecycle": "potential"}
    for crafted in ({readonly.key: "B"}, {secret.key: "x"}):
        response = manager_client.post(reverse("clients:edit", args=[obj.pk]), {**base, **crafted}, headers=HX)
        assert response.status_code == 403
    obj.refresh_from_db()
    assert obj.name == "Keep" and obj.custom == {readonly.key: "A", secret.key: "s"}
    # and through the service itself
    from django.core.exceptions import PermissionDenied

    from clients import services

    with pytest.raises(PermissionDenied):
        services.client_update(actor=manager, client=obj, data={"custom": {readonly.key: "B", secret.key: "s"}})
    # a legitimate edit keeps the locked values
    assert "HX-Redirect" in manager_client.post(reverse("clients:edit", args=[obj.pk]), base, headers=HX).headers
    obj.refresh_from_db()
    assert obj.name == "Changed" and obj.custom == {readonly.key: "A", secret.key: "s"}


def test_mass_action_on_a_read_only_field_is_refused(client, locked_setup):
    changer = role("Manager")
    from django.contrib.auth.models import Permission

    changer.group.permissions.add(Permission.objects.get(codename="change_responsible"))
    user = UserFactory(role=changer)
    other = UserFactory(role=role("Manager"))
    obj = ClientFactory(responsible=user)
    client.force_login(user)
    response = client.post(reverse("clients:bulk-run"), {"action": "responsible", "scope": "ids", "ids": [obj.pk],
                                                         "digest": "x", "responsible": other.pk}, headers=HX)
    assert response.status_code == 403
    obj.refresh_from_db()
    assert obj.responsible == user


def test_hidden_fields_filters_are_ignored_for_managers(manager_client, manager, locked_setup):
    readonly, secret = locked_setup
    ClientFactory(name="Match", responsible=manager, custom={secret.key: "x"})
    ClientFactory(name="Other", responsible=manager, custom={secret.key: "y"})
    response = manager_client.get(reverse("clients:list"), {secret.key: "x"})
    assert sorted(row["name"] for row in response.context["page"].rows) == ["Match", "Other"]  # not a probe


def test_manager_cannot_open_the_editor(manager_client):
    assert manager_client.get(reverse("clients:layout", args=["contact"]), headers=HX).status_code == 403
    before = [(r.pk, r.position) for r in rows()]
    assert save(manager_client, "contact", [{"pk": pk} for pk, _ in reversed(before)]).status_code == 403
    assert [(r.pk, r.position) for r in rows()] == before


@pytest.mark.parametrize("extra", [0, 10])
def test_editor_query_count(extra, admin_client, django_assert_num_queries):
    for i in range(extra):
        field = CustomFieldFactory(label=f"F{i}")
        CardField.objects.create(block="contact", custom_field=field, position=100 + i)
    with django_assert_num_queries(2):  # user with perms, layout rows
        admin_client.get(reverse("clients:layout", args=["contact"]), headers=HX)


def test_the_hidden_keys_read_alone_agree_with_the_whole_layout(manager, django_assert_num_queries):
    """The table and the board read only the keys a manager may not see (one query, once per
    request); they must be the keys the whole layout hides: the eye closed or not visible to
    managers, custom fields by their cf_ key, a deactivated custom field's row not at all."""
    from crm import permissions as gate

    shown, hidden, off = (CustomFieldFactory(label=label) for label in ("Shown", "Hidden", "Off"))
    deal_field = CustomFieldFactory(label="Deal note", entity=CustomField.Entity.DEAL)
    for field in (shown, hidden, off):
        CardField.objects.create(block="contact", custom_field=field, position=200 + field.pk)
    CardField.objects.create(block="deal", custom_field=deal_field, position=200, manager_visible=False)
    CardField.objects.filter(block="contact", custom_field=hidden).update(hidden=True)
    CardField.objects.filter(block="contact", custom_field=off).update(manager_visible=False)
    CardField.objects.filter(block="contact", system_key="email").update(manager_visible=False)
    CardField.objects.filter(block="deal", system_key="budget").update(hidden=True)
    CustomField.objects.filter(pk=off.pk).update(is_active=False)

    with django_assert_num_queries(2):  # the role's permissions with the user, then the keys; asked twice
        by_block = gate.hidden_by_block(manager)
        assert gate.hidden_fields(manager, "deal") == by_block["deal"]
    whole = {block: {r.key for r in rows(block) if (r.hidden or not r.manager_visible)
                     and (r.custom_field is None or r.custom_field.is_active)} for block in ("contact", "deal")}
    assert by_block == whole
    assert {f"cf_{hidden.pk}", "email"} <= by_block["contact"] and f"cf_{shown.pk}" not in by_block["contact"]
    assert f"cf_{off.pk}" not in by_block["contact"]
    assert {"budget", f"cf_{deal_field.pk}"} <= by_block["deal"]
