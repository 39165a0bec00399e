"""Field-level matrix (issue 11): every field of the client and deal card layouts × {editable,
read-only, hidden} for a manager, against every write path (edit form, service, import, mass
action, quick deal) and every page that shows fields (card, panel, table, export, feed, deal
window, board, deals table, deals export, documents).

The manager here holds every permission the writes need (import, change responsible, export):
only the layout can refuse them, so a refusal proves the layout is asked.
"""

import csv
import io
import zipfile
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from docx import Document

from clients import services as client_services
from clients.models import CardField, Client, CustomField, DocumentTemplate
from crm.models import Activity, Role
from deals import services as deal_services
from deals.models import Deal, Funnel, Stage
from imports.models import ImportJob
from tests.conftest import HX
from tests.factories import (
    ClientFactory,
    CustomFieldFactory,
    DealFactory,
    UserFactory,
    role,
)
from tests.imports.files import plain_xlsx

pytestmark = pytest.mark.django_db

STATES = ["editable", "read-only", "hidden"]

# Client fields: (layout key, model attribute, stored value, a new value the manager tries to
# write, text of the stored value that a page would show — None where it is not distinctive).
CONTACT_FIELDS = [
    ("phone", "phone", "+79161234567", "+79169998877", "916 123-45-67"),
    ("extra_phones", "extra_phones", ["+79031112233"], ["+79035556677"], "903 111-22-33"),
    ("email", "email", "secret.mail@example.org", "new.mail@example.org", "secret.mail@example.org"),
    ("company", "company", "ООО Тайная Компания", "ООО Другая", "ООО Тайная Компания"),
    ("city", "city", "Тайногорск", "Казань", "Тайногорск"),
    ("address", "address", "ул. Скрытая, 7", "ул. Новая, 1", "ул. Скрытая, 7"),
    ("source", "source", "Секретный источник", "Авито", "Секретный источник"),
    ("external_id", "external_id", "PLAYER-77310", "PLAYER-1", "PLAYER-77310"),
    ("registration_date", "registration_date", "2026-03-14", "2026-05-01", None),
    ("country", "country", "KZ", "BY", None),
    ("channel", "channel", "telegram", "email", None),
    ("priority", "priority", "high", "low", None),
    ("lifecycle", "lifecycle", "potential", "converted", None),
    ("responsible", "responsible", None, None, None),  # values filled in by the test
    ("custom", "custom", "ЗНАЧЕНИЕ-СКРЫТО", "другое", "ЗНАЧЕНИЕ-СКРЫТО"),
]
DEAL_FIELDS = [
    ("budget", "budget", Decimal("987654"), Decimal("1"), "987"),
    ("channel", "channel", "telegram", "email", None),
    ("deal_responsible", "responsible", None, None, None),
    ("custom", "custom", "ДОГОВОР-СКРЫТ", "другой", "ДОГОВОР-СКРЫТ"),
]
# Form field names that differ from the layout key.
FORM_NAME = {"extra_phones": "extra_phones_text", "deal_responsible": "responsible"}


@pytest.fixture
def power_manager(db, team):
    """A Manager (own visibility, Manager layout) who may import, reassign and export."""
    from django.contrib.auth.models import Group

    power = Role.objects.create(group=Group.objects.create(name="Power manager"), visibility=Role.Visibility.OWN)
    power.group.permissions.set(role("Manager").group.permissions.all())
    for code in ("import_clients", "change_responsible", "export_clients"):
        power.group.permissions.add(Permission.objects.get(codename=code))
    user = UserFactory(username="paula", role=power, team=team, language="ru")
    from guardian.shortcuts import assign_perm

    for funnel in Funnel.objects.all():
        assign_perm("deals.access_funnel", user, funnel)
    return user


def set_state(block: str, key: str, state: str, custom_field=None) -> None:
    rows = CardField.objects.filter(block=block)
    row = rows.get(custom_field=custom_field) if key == "custom" else rows.get(system_key=key)
    row.manager_visible = state != "hidden"
    row.manager_editable = state == "editable"
    row.save()


def layout_key(key: str, custom_field) -> str:
    return custom_field.key if key == "custom" else key


@pytest.fixture
def world(power_manager, admin):
    """A client of the manager's with every field filled, a deal with every deal field filled."""
    client_field = CustomFieldFactory(label="Секретное поле", entity=CustomField.Entity.CLIENT)
    deal_field = CustomFieldFactory(label="Номер договора", entity=CustomField.Entity.DEAL)
    from django.apps import apps

    from clients.layout import ensure_default_layout

    ensure_default_layout(apps)
    values = {attr: value for _key, attr, value, _new, _shown in CONTACT_FIELDS if attr not in ("custom", "responsible")}
    values["registration_date"] = "2026-03-14"
    client = ClientFactory(name="Клиент Матрица", responsible=power_manager,
                           custom={client_field.key: "ЗНАЧЕНИЕ-СКРЫТО"}, **values)
    Client.objects.filter(pk=client.pk).update(phone_digits="79161234567 79031112233")
    stage = Stage.objects.filter(line__funnel__name="Sales").order_by("line__position", "position").first()
    deal = DealFactory(client=client, stage=stage, responsible=power_manager, budget=Decimal("987654"),
                       channel="telegram", custom={deal_field.key: "ДОГОВОР-СКРЫТ"})
    deal_services.sale_add(actor=admin, deal=deal, player_id="PLAYER-77310", amount=Decimal("10"))
    return {"client": Client.objects.get(pk=client.pk), "deal": Deal.objects.get(pk=deal.pk),
            "client_field": client_field, "deal_field": deal_field}


def snapshot(model, pk):
    return model.objects.filter(pk=pk).values().get()


def contact_new_value(key, new, world, other):
    if key == "responsible":
        return other
    if key == "custom":
        return {**world["client"].custom, world["client_field"].key: new}
    if key == "registration_date":
        from datetime import date

        return date.fromisoformat(new)
    return new


def form_value(key, new, world, other):
    if key in ("responsible", "deal_responsible"):
        return str(other.pk)
    if key == "extra_phones":
        return ", ".join(new)
    return str(new)


# Writes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("key,attr,stored,new,shown", CONTACT_FIELDS, ids=[f[0] for f in CONTACT_FIELDS])
def test_client_field_writes(client, world, power_manager, team, state, key, attr, stored, new, shown):
    other = UserFactory(username="ozzy", role=role("Manager"), team=team)
    target = world["client"]
    custom_field = world["client_field"]
    set_state("contact", key, state, custom_field)
    name = custom_field.key if key == "custom" else FORM_NAME.get(key, key)
    client.force_login(power_manager)
    before = snapshot(Client, target.pk)

    # The edit form: a locked field is not offered; a crafted POST carrying it is refused.
    form = client.get(reverse("clients:edit", args=[target.pk]), headers=HX).content.decode()
    offered = f'name="{name}"' in form
    assert offered == (state == "editable")
    crafted = {"name": target.name, name: form_value(key, new, world, other)}
    response = client.post(reverse("clients:edit", args=[target.pk]), crafted, headers=HX)
    if state != "editable":
        assert response.status_code == 403
        assert snapshot(Client, target.pk) == before

    # The service, as the import, the API and robots reach it.
    data = {attr: contact_new_value(key, new, world, other)}
    if state == "editable":
        client_services.client_update(actor=power_manager, client=Client.objects.get(pk=target.pk), data=data)
        after = Client.objects.get(pk=target.pk)
        stored_now = after.custom.get(custom_field.key) if key == "custom" else getattr(after, attr)
        wanted = data[attr][custom_field.key] if key == "custom" else data[attr]
        assert getattr(stored_now, "pk", stored_now) == getattr(wanted, "pk", wanted)
    else:
        before = snapshot(Client, target.pk)
        with pytest.raises(PermissionDenied):
            client_services.client_update(actor=power_manager, client=Client.objects.get(pk=target.pk), data=data)
        assert snapshot(Client, target.pk) == before


IMPORTABLE = ["phone", "extra_phones", "email", "company", "city", "address", "source", "external_id",
              "registration_date", "country", "channel", "priority", "responsible", "custom"]


@pytest.mark.parametrize("state", ["read-only", "hidden"])
@pytest.mark.parametrize("key", IMPORTABLE)
def test_import_refuses_a_column_mapped_to_a_locked_field(client, world, power_manager, settings, tmp_path, state, key):
    settings.MEDIA_ROOT = tmp_path
    set_state("contact", key, state, world["client_field"])
    client.force_login(power_manager)
    client.post(reverse("imports:upload"), {"file": SimpleUploadedFile("x.xlsx", plain_xlsx([["ФИО", "Поле"], ["Анна", "1"]]))})
    job = ImportJob.objects.get()
    target = layout_key(key, world["client_field"])
    response = client.post(reverse("imports:map", args=[job.pk]), {"col_0": "name", "col_1": target, "duplicates": "update"})
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status != ImportJob.Status.QUEUED and Client.objects.count() == 1


@pytest.mark.parametrize("state", STATES)
def test_bulk_responsible_change_follows_the_layout(client, world, power_manager, team, state):
    other = UserFactory(username="ozzy", role=role("Manager"), team=team)
    set_state("contact", "responsible", state)
    client.force_login(power_manager)
    data = {"action": "responsible", "ids": [world["client"].pk]}
    confirm = client.post(reverse("clients:bulk-confirm"), data, headers=HX)
    if state != "editable":
        assert confirm.status_code == 200  # the count is shown; the run is what writes
    import re

    digest = re.search(r'name="digest" value="([0-9a-f]+)"', confirm.content.decode()).group(1)
    response = client.post(reverse("clients:bulk-run"), {**data, "digest": digest, "responsible": other.pk}, headers=HX)
    owner = Client.objects.get(pk=world["client"].pk).responsible_id
    if state == "editable":
        assert "HX-Redirect" in response.headers and owner == other.pk
    else:
        assert response.status_code == 403 and owner == power_manager.pk


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("key,attr,stored,new,shown", DEAL_FIELDS, ids=[f[0] for f in DEAL_FIELDS])
def test_deal_field_writes(client, world, power_manager, team, state, key, attr, stored, new, shown):
    other = UserFactory(username="ozzy", role=role("Manager"), team=team)
    deal = world["deal"]
    deal_field = world["deal_field"]
    set_state("deal", key, state, deal_field)
    name = deal_field.key if key == "custom" else FORM_NAME.get(key, key)
    client.force_login(power_manager)
    before = snapshot(Deal, deal.pk)

    form = client.get(reverse("deals:edit", args=[deal.pk]), headers=HX).content.decode()
    assert (f'name="{name}"' in form) == (state == "editable")
    crafted = {"name": deal.name, name: form_value(key, new, world, other)}
    response = client.post(reverse("deals:edit", args=[deal.pk]), crafted, headers=HX)
    if state != "editable":
        assert response.status_code == 403
        assert snapshot(Deal, deal.pk) == before

    if key == "custom":
        value = {deal_field.key: new}
    elif key == "deal_responsible":
        value = other
    else:
        value = new
    if state == "editable":
        deal_services.deal_update(actor=power_manager, deal=Deal.objects.get(pk=deal.pk), data={attr: value})
        after = Deal.objects.get(pk=deal.pk)
        assert getattr(getattr(after, attr), "pk", getattr(after, attr)) == getattr(value, "pk", value)
    else:
        before = snapshot(Deal, deal.pk)
        with pytest.raises(PermissionDenied):
            deal_services.deal_update(actor=power_manager, deal=Deal.objects.get(pk=deal.pk), data={attr: value})
        assert snapshot(Deal, deal.pk) == before


@pytest.mark.parametrize("state", STATES)
def test_quick_deal_budget_follows_the_layout(client, world, power_manager, state):
    set_state("deal", "budget", state)
    client.force_login(power_manager)
    stage = world["deal"].stage
    url = reverse("deals:quick", args=[world["client"].pk])
    form = client.get(url, headers=HX).content.decode()
    assert ('name="budget"' in form) == (state == "editable")
    count = Deal.objects.count()
    response = client.post(url, {"name": "Новая", "stage": stage.pk, "budget": "5000"}, headers=HX)
    if state == "editable":
        assert Deal.objects.filter(name="Новая", budget=5000).exists()
    else:
        assert response.status_code == 403 and Deal.objects.count() == count
        client.post(url, {"name": "Без бюджета", "stage": stage.pk}, headers=HX)
        assert Deal.objects.get(name="Без бюджета").budget == 0  # without the field, the deal is made


def test_admin_writes_every_field_whatever_the_manager_layout(client, world, admin):
    for key, *_rest in CONTACT_FIELDS:
        set_state("contact", key, "hidden", world["client_field"])
    client.force_login(admin)
    form = client.get(reverse("clients:edit", args=[world["client"].pk]), headers=HX).content.decode()
    assert 'name="external_id"' in form and f'name="{world["client_field"].key}"' in form
    client_services.client_update(actor=admin, client=world["client"], data={"external_id": "ADMIN-1"})
    assert Client.objects.get(pk=world["client"].pk).external_id == "ADMIN-1"


# Reads ---------------------------------------------------------------------------------------


def pages(client, world, admin):
    """Every response that shows a client's or a deal's fields, as the manager gets them."""
    c, deal = world["client"], world["deal"]
    funnel = deal.stage.line.funnel
    line = f"?line={deal.stage.line_id}"
    everything = "&".join(f"shown={k}" for k in ("phone", "email", "company", "city", "address", "source",
                                                  "external_id", "registration_date", "country", "channel",
                                                  "priority", "lifecycle", world["client_field"].key))
    client.post(reverse("clients:columns"), f"{everything}&{everything.replace('shown=', 'order=')}",
                content_type="application/x-www-form-urlencoded")
    bodies = {
        "card": client.get(c.get_absolute_url()),
        "panel": client.get(reverse("clients:panel", args=[c.pk]), headers=HX),
        "feed": client.get(reverse("clients:feed", args=[c.pk]), headers=HX),
        "table": client.get(reverse("clients:list")),
        "export csv": client.get(reverse("clients:export") + "?format=csv"),
        "deal window": client.get(reverse("deals:detail", args=[deal.pk]), headers=HX),
        "board": client.get(funnel.get_absolute_url() + line),
        "deals table": client.get(reverse("deals:table", args=[funnel.pk]) + line),
        "deals export": client.get(reverse("deals:export", args=[funnel.pk]) + line + "&format=csv"),
        "client's deals row": client.get(reverse("deals:client-row", args=[c.pk]), headers=HX),
    }
    for name, response in bodies.items():
        assert response.status_code == 200, name
    texts = {name: b"".join(r.streaming_content).decode("utf-8-sig") if r.streaming else r.content.decode()
             for name, r in bodies.items()}
    template = DocumentTemplate.objects.create(name="Договор", uploaded_by=admin, file=SimpleUploadedFile("t.docx", docx_template()))
    zipped = client.post(reverse("clients:documents"), {"ids": [c.pk], "template": template.pk})
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(zipped.streaming_content))) as archive:
        texts["documents"] = "\n".join(
            p.text for name in archive.namelist() for p in Document(io.BytesIO(archive.read(name))).paragraphs
        )
    return texts


def docx_template() -> bytes:
    document = Document()
    for placeholder in ("name", "phone", "email", "company", "city", "address", "player_id"):
        document.add_paragraph(f"{placeholder}: {{{{ {placeholder} }}}}")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


SHOWN = [(key, shown) for key, _attr, _stored, _new, shown in CONTACT_FIELDS if shown]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("key,shown", SHOWN, ids=[k for k, _s in SHOWN])
def test_a_hidden_client_field_appears_in_no_response(client, world, power_manager, admin, settings, tmp_path, state, key, shown):
    settings.MEDIA_ROOT = tmp_path
    # A change of the field by the admin, so the feed has an entry about it.
    if key == "custom":
        change = {"custom": {world["client_field"].key: shown}}
    elif key == "extra_phones":
        change = {"extra_phones": ["+79031112233"]}
    else:
        change = {}
    Activity.objects.create(client=world["client"], actor=admin, kind=Activity.Kind.CHANGE,
                            field=layout_key(key, world["client_field"]), field_label="x", old_value="", new_value=shown)
    if change:
        client_services.client_update(actor=admin, client=world["client"], data=change)
    set_state("contact", key, state, world["client_field"])
    client.force_login(power_manager)
    texts = pages(client, world, admin)
    where = {name for name, text in texts.items() if shown in text}
    if state == "hidden":
        assert where == set(), f"{key} leaks in {sorted(where)}"
    else:
        in_table = {"table", "export csv"} if key not in ("extra_phones", "address") else set()  # no such columns
        assert {"card", "panel"} | in_table <= where, where


DEAL_SHOWN = [(key, shown) for key, _attr, _stored, _new, shown in DEAL_FIELDS if shown]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("key,shown", DEAL_SHOWN, ids=[k for k, _s in DEAL_SHOWN])
def test_a_hidden_deal_field_appears_in_no_response(client, world, power_manager, admin, settings, tmp_path, state, key, shown):
    settings.MEDIA_ROOT = tmp_path
    field = "budget" if key == "budget" else world["deal_field"].key
    Activity.objects.create(client=world["client"], deal=world["deal"], actor=admin, kind=Activity.Kind.CHANGE,
                            field=field, field_label="x", old_value="", new_value=shown)
    set_state("deal", key, state, world["deal_field"])
    client.force_login(power_manager)
    texts = pages(client, world, admin)
    where = {name for name, text in texts.items() if shown in text}
    if state == "hidden":
        assert where == set(), f"{key} leaks in {sorted(where)}"
    else:
        assert {"deal window"} <= where, where


def test_player_id_hidden_blanks_the_sale_form_and_keeps_the_card_untouched(client, world, power_manager):
    set_state("contact", "external_id", "hidden")
    Client.objects.filter(pk=world["client"].pk).update(external_id="")
    client.force_login(power_manager)
    form = client.get(reverse("deals:sale", args=[world["deal"].pk]), headers=HX).content.decode()
    assert "PLAYER-77310" not in form
    client.post(reverse("deals:sale", args=[world["deal"].pk]), {"player_id": "PLAYER-NEW", "amount": "5"}, headers=HX)
    assert Client.objects.get(pk=world["client"].pk).external_id == ""  # not theirs to write


def test_documents_need_the_export_permission(client, world, manager, admin, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    exporters = role("Manager").group
    exporters.permissions.remove(Permission.objects.get(codename="export_clients"))
    mine = ClientFactory(responsible=manager)
    template = DocumentTemplate.objects.create(name="Договор", uploaded_by=admin, file=SimpleUploadedFile("t.docx", docx_template()))
    client.force_login(manager)
    page = client.get(reverse("clients:list")).content.decode()
    assert reverse("clients:documents") not in page
    response = client.post(reverse("clients:documents"), {"ids": [mine.pk], "template": template.pk})
    assert response.status_code == 403


def test_csv_reader_of_the_export_sees_no_hidden_column_header(client, world, power_manager):
    set_state("contact", "company", "hidden")
    client.force_login(power_manager)
    response = client.get(reverse("clients:export") + "?format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")), delimiter=";"))
    assert "Компания" not in rows[0] and "Company" not in rows[0]


@pytest.mark.parametrize("state", STATES)
def test_quick_search_by_a_hidden_phone_finds_nothing(client, world, power_manager, state):
    set_state("contact", "phone", state)
    client.force_login(power_manager)
    page = client.get(reverse("clients:list"), {"q": "8 916 123-45-67"}).content.decode()
    assert ("Клиент Матрица" in page) == (state != "hidden")
    assert "Клиент Матрица" in client.get(reverse("clients:list"), {"q": "Матрица"}).content.decode()
