"""PostgreSQL-only: trigram index for the board's deal-name search (UPPER(), as icontains asks)."""

from django.db import migrations


def run(forward: bool):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        if forward:
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema_editor.execute(
                "CREATE INDEX IF NOT EXISTS deal_name_upper_trgm ON deals_deal USING gin (UPPER(name::text) gin_trgm_ops)"
            )
        else:
            schema_editor.execute("DROP INDEX IF EXISTS deal_name_upper_trgm")

    return apply


class Migration(migrations.Migration):
    dependencies = [("deals", "0002_default_funnel")]
    operations = [migrations.RunPython(run(True), run(False))]
