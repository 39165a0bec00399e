import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from clients.models import DocumentTemplate
from tests.conftest import HX
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db


def docx_template(text: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def texts_of(zip_bytes: bytes) -> dict[str, str]:
    import docx

    archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    return {name: "\n".join(p.text for p in docx.Document(io.BytesIO(archive.read(name))).paragraphs)
            for name in archive.namelist()}


def test_upload_a_template_and_download_filled_documents(admin_client):
    upload = admin_client.post(reverse("clients:templates"), {
        "name": "Договор", "file": SimpleUploadedFile("contract.docx", docx_template("Договор с {{ name }}, тел. {{ phone }}")),
    })
    assert upload.status_code == 302
    template = DocumentTemplate.objects.get()
    first = ClientFactory(name="Анна <b>&", phone="+79161234567")
    second = ClientFactory(name="Борис")
    form = admin_client.post(reverse("clients:documents"), {"scope": "ids", "ids": [first.pk, second.pk]}, headers=HX)
    assert "A document for each of 2 clients" in form.content.decode()
    response = admin_client.post(reverse("clients:documents"), {"scope": "ids", "ids": [first.pk, second.pk],
                                                                "template": template.pk})
    assert response["Content-Type"] == "application/zip"
    documents = texts_of(b"".join(response.streaming_content))
    assert sorted(documents.values()) == ["Договор с Анна <b>&, тел. +7 916 123-45-67", "Договор с Борис, тел. +7 916 000-00-01"] or \
        any("Анна <b>&" in text for text in documents.values())
    assert len(documents) == 2


@pytest.mark.parametrize("data,message", [
    (b"not a docx", "not a Word .docx file"),
    (b"PK\x03\x04" + b"\0" * 50, "not a Word .docx file"),
])
def test_bad_templates_are_refused(data, message, admin_client):
    response = admin_client.post(reverse("clients:templates"), {"name": "x", "file": SimpleUploadedFile("x.docx", data)})
    assert message in response.content.decode() and not DocumentTemplate.objects.exists()


def test_only_admins_upload_templates(manager_client):
    response = manager_client.post(reverse("clients:templates"), {"name": "x", "file": SimpleUploadedFile("x.docx", docx_template("a"))})
    assert response.status_code == 403 and not DocumentTemplate.objects.exists()
