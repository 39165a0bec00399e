import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from imports import services
from imports.models import ImportJob


def upload(client, data: bytes, name: str = "clients.xlsx"):
    return client.post(reverse("imports:upload"), {"file": SimpleUploadedFile(name, data)})


def selected(page: str) -> list[str]:
    """The field chosen for each column on the mapping step."""
    import re

    chosen = []
    for block in re.findall(r'<select id="col-\d+" name="col_\d+"[^>]*>(.*?)</select>', page, re.S):
        match = re.search(r'<option value="([^"]*)" selected>', block)
        chosen.append(match.group(1) if match else "")
    return chosen


def wizard(client, data: bytes, *, name="clients.xlsx", mapping=None, duplicates="skip", deal_line=None, require_all=False):
    """Upload → columns (the guess, or `mapping` by header) → preview → start, as a user clicks
    through; then run what the worker runs. Returns (job, the columns page, the preview page)."""
    response = upload(client, data, name)
    assert response.status_code == 302, response.content.decode()[-2000:]
    job = ImportJob.objects.latest("created_at")
    columns = client.get(reverse("imports:map", args=[job.pk])).content.decode()
    headers, _rows = services.sample(job, 1)
    guessed = selected(columns)
    post = {"duplicates": duplicates}
    for index, header in enumerate(headers):
        post[f"col_{index}"] = mapping[header] if mapping and header in mapping else guessed[index]
    if deal_line is not None:
        post["deal_line"] = str(deal_line.pk)
    if require_all:
        post["require_all"] = "on"
    response = client.post(reverse("imports:map", args=[job.pk]), post)
    assert response.status_code == 302, response.content.decode()[-3000:]
    preview = client.get(reverse("imports:preview", args=[job.pk])).content.decode()
    client.post(reverse("imports:preview", args=[job.pk]))
    job = services.import_run(job_id=job.pk)  # what the worker does
    return job, columns, preview


def service_import(actor, data: bytes, mapping: dict, *, duplicates="skip", name="x.xlsx", deal_line=None, require_all=False):
    """The same without the pages: mapping is {column index: field}."""
    job = services.import_upload(actor=actor, uploaded=SimpleUploadedFile(name, data))
    headers, _rows = services.sample(job, 1)
    services.import_set_mapping(actor=actor, job=job, mapping={str(k): v for k, v in mapping.items()}, headers=headers,
                                duplicates=duplicates, deal_line=deal_line, require_all=require_all)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)
    return services.import_run(job_id=job.pk)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
