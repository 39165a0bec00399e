"""The seed's stages where a deal is done with (a first sale, ignored, handed to the 2nd line) close
it: such deals do not count towards a line's cap of open deals per manager."""

from django.db import migrations

from deals.defaults import CLOSING_CODES


def mark(apps, schema_editor):
    apps.get_model("deals", "Stage").objects.filter(code__in=CLOSING_CODES).update(closes=True)


class Migration(migrations.Migration):
    dependencies = [("deals", "0007_shifts_and_distribution")]
    operations = [migrations.RunPython(mark, migrations.RunPython.noop)]
