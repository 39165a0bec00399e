"""The "Documents" mass action (seed 002): fill an admin's .docx template for each client."""

import re
import tempfile
import zipfile

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import QueryDict
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from crm import permissions as gate

from .labels import label
from .models import CustomField, DocumentTemplate
from .phones import format_phone

MAX_TEMPLATE_BYTES = 5 * 1024 * 1024
MAX_DOCUMENTS = 500  # one download; larger selections: narrow the filter
PLACEHOLDERS = ["name", "phone", "email", "company", "country", "city", "address", "responsible", "player_id",
                "registration_date", "today"]


def check_template(uploaded) -> None:
    if uploaded.size > MAX_TEMPLATE_BYTES:
        raise ValidationError(_("The template is larger than 5 MB."))
    head = uploaded.read(4)
    uploaded.seek(0)
    if head != b"PK\x03\x04" or not zipfile.is_zipfile(uploaded):
        raise ValidationError(_("This is not a Word .docx file."))
    uploaded.seek(0)
    with zipfile.ZipFile(uploaded) as archive:
        names = set(archive.namelist())
        if "word/document.xml" not in names:
            raise ValidationError(_("This is not a Word .docx file."))
        if any(n.lower().endswith("vbaproject.bin") for n in names):
            raise ValidationError(_("Templates with macros are not accepted."))
        if sum(i.file_size for i in archive.infolist()) > 50 * 1024 * 1024:
            raise ValidationError(_("The template unpacks to far more than it weighs: refused."))
    uploaded.seek(0)


@transaction.atomic
def template_upload(*, actor, name: str, uploaded) -> DocumentTemplate:
    gate.require(actor, gate.CONFIGURE_FIELDS)
    check_template(uploaded)
    template = DocumentTemplate(name=(name or uploaded.name)[:100], uploaded_by=actor)
    template.file.save(uploaded.name, uploaded, save=False)
    template.save()
    return template


# Placeholders that carry a card field (the layout's key), blank for a reader it is hidden from.
PLACEHOLDER_FIELD = {"player_id": "external_id"}


def context_for(client, custom_fields, hidden=frozenset()) -> dict:
    context = {
        "name": client.name, "phone": format_phone(client.phone), "email": client.email, "company": client.company,
        "country": label("country", client.country), "city": client.city, "address": client.address,
        "responsible": str(client.responsible or ""), "player_id": client.external_id,
        "registration_date": formats.date_format(client.registration_date, "SHORT_DATE_FORMAT") if client.registration_date else "",
        "today": formats.date_format(timezone.localdate(), "SHORT_DATE_FORMAT"),
    }
    for field in custom_fields:
        context[field.key] = client.custom.get(field.key, "")
    for key in context:
        if PLACEHOLDER_FIELD.get(key, key) in hidden:
            context[key] = ""
    return context


def check_count(count: int) -> None:
    if count > MAX_DOCUMENTS:
        raise ValidationError(_("At most %(n)s documents at once: narrow the selection.") % {"n": MAX_DOCUMENTS})


def selection_query(selection) -> str:
    """The chosen clients as the form posted them (ticked ids, or the table's filter), for the
    worker to choose them again as the user (clients.selectors.bulk_selection)."""
    data = QueryDict(mutable=True)
    data["scope"] = selection.scope
    if selection.scope == "filter":
        data["query"] = selection.query
    else:
        data.setlist("ids", [str(pk) for pk in selection.ids])
    return data.urlencode()


def documents_write(out, *, actor, template: DocumentTemplate, clients, progress=None) -> int:
    """Write a zip of one filled .docx per client to `out` (autoescaped: a client's data cannot
    inject XML); the number of documents. `progress(n)` is told after each one."""
    from docxtpl import DocxTemplate

    gate.require(actor, gate.VIEW_CLIENTS)
    gate.require(actor, gate.EXPORT_CLIENTS)  # a zip of clients' personal data is an export
    hidden = gate.hidden_fields(actor)
    chosen = list(clients.select_related("responsible").order_by("name", "pk")[: MAX_DOCUMENTS + 1])
    check_count(len(chosen))
    if progress is not None:
        progress(0, total=len(chosen))
    custom_fields = list(CustomField.objects.filter(is_active=True, entity=CustomField.Entity.CLIENT))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for done, client in enumerate(chosen, 1):
            document = DocxTemplate(template.file.path)
            document.render(context_for(client, custom_fields, hidden), autoescape=True)
            with tempfile.TemporaryFile() as one:
                document.save(one)
                one.seek(0)
                safe = re.sub(r"[^\w\- ]+", "_", client.name).strip() or "client"
                archive.writestr(f"{client.pk}_{safe}.docx", one.read())
            if progress is not None:
                progress(done)
    return len(chosen)


def documents_zip(*, actor, template: DocumentTemplate, clients):
    """The zip in a temporary file, for a selection small enough to fill in the request."""
    spool = tempfile.TemporaryFile()
    try:
        count = documents_write(spool, actor=actor, template=template, clients=clients)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, count
