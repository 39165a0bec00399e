"""Indexes no query uses, each one a cost on every insert (an import's COPY pays for all of them).

- client_email_idx (email): nothing looks a client up by its exact e-mail. The import's duplicate
  check compares lower(email) (client_email_lower_idx) and the table's e-mail filter is a
  substring search (client_email_upper_trgm).
- client_created_idx (created_at): the "Created from / to" filters compare the local date,
  (created_at AT TIME ZONE …)::date, which a b-tree on created_at cannot serve; nothing else
  filters or sorts clients on created_at.
- deleted_by_id: NULL on every live client and never filtered on (users are deactivated, not
  deleted, so the foreign key's ON DELETE never looks it up either).
- clients_client_tags.client_id: the unique (client_id, tag_id) index leads with the same column
  and serves every lookup by client.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TAGS = "clients_client_tags"


def _client_id_index(schema_editor) -> str | None:
    """The through table's own index on client_id alone (its name is a hash Django made)."""
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(cursor, TAGS)
    for name, info in constraints.items():
        if info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == ["client_id"]:
            return name
    return None


def drop_tags_client_index(apps, schema_editor):
    name = _client_id_index(schema_editor)
    if name:
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_tags_client_index(apps, schema_editor):
    if not _client_id_index(schema_editor):
        schema_editor.execute(f"CREATE INDEX clients_client_tags_client_id_01fe2617 ON {TAGS} (client_id)")


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0013_drop_duplicate_fk_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="client", name="client_created_idx"),
        migrations.RemoveIndex(model_name="client", name="client_email_idx"),
        migrations.AlterField(
            model_name="client",
            name="deleted_by",
            field=models.ForeignKey(
                blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(drop_tags_client_index, create_tags_client_index),
    ]
