"""Raw SQL for migrations that only PostgreSQL runs (indexes SQLite has no kind of: trigram GIN,
jsonb operator classes). On SQLite, the embedded default, such a migration does nothing."""

from django.db import migrations


def postgres_only(forward: list[str], backward: list[str]) -> migrations.RunPython:
    """An operation running `forward` (and `backward` when unapplied) statement by statement."""

    def run(statements):
        def apply(apps, schema_editor):
            if schema_editor.connection.vendor != "postgresql":
                return
            for sql in statements:
                schema_editor.execute(sql)

        return apply

    return migrations.RunPython(run(forward), run(backward))
