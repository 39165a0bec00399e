from django.db import migrations

from clients.layout import ensure_default_layout


def forward(apps, schema_editor):
    ensure_default_layout(apps)


class Migration(migrations.Migration):
    dependencies = [("clients", "0007_card_layout")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
