"""Indexes behind the remaining table filters.

Django's icontains on PostgreSQL is UPPER(col::text) LIKE UPPER(%s): the trigram indexes are on
that expression, or the planner cannot use them. The name index of 0002 is replaced for this
reason. Substring filters (email, company, city, address) get the same kind of index; the player
ID filter (case-insensitive exact) gets a b-tree on UPPER(external_id).
"""

from django.db import migrations, models
from django.db.models.functions import Upper

TRGM = ["name", "email", "company", "city", "address"]


def run(forward: bool):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        if forward:
            schema_editor.execute("DROP INDEX IF EXISTS client_name_trgm")
        for column in TRGM:
            name = f"client_{column}_upper_trgm"
            if forward:
                schema_editor.execute(
                    f"CREATE INDEX IF NOT EXISTS {name} ON clients_client USING gin (UPPER({column}::text) gin_trgm_ops)"
                )
            else:
                schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        if forward:
            # Finer statistics: LIKE '%fragment%' estimates come from the histogram.
            schema_editor.execute("ALTER TABLE clients_client ALTER COLUMN phone_digits SET STATISTICS 1000")
            schema_editor.execute("ALTER INDEX client_name_upper_trgm ALTER COLUMN 1 SET STATISTICS 1000")
            # Expression indexes only get statistics from ANALYZE; without them the planner
            # guesses 100 rows for every fragment and picks slow plans for common ones.
            schema_editor.execute("ANALYZE clients_client")
        else:
            schema_editor.execute(
                "CREATE INDEX IF NOT EXISTS client_name_trgm ON clients_client USING gin (name gin_trgm_ops)"
            )

    return apply


class Migration(migrations.Migration):
    dependencies = [("clients", "0002_postgres_search_indexes")]
    operations = [
        migrations.RunPython(run(True), run(False)),
        migrations.RemoveIndex(model_name="client", name="client_external_idx"),
        migrations.AddIndex(
            model_name="client", index=models.Index(Upper("external_id"), name="client_external_upper_idx")
        ),
        migrations.AddIndex(
            model_name="client", index=models.Index(fields=["registration_date"], name="client_registered_idx")
        ),
    ]
