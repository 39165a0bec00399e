"""The name key stored on the client (Client.name_key, made in Python by clients.names.name_key) in
place of the index on the SQL function client_name_key(name): the function ran a sorting
subquery for every row an import inserted. The column and its index come first, while every key
is still empty (the partial index skips empty keys, so it is built at once); 0021 fills the keys
of existing clients in short batches."""

from django.db import migrations, models

OLD_FUNCTION = (
    "CREATE OR REPLACE FUNCTION client_name_key(name text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ "
    "SELECT array_to_string(array(SELECT w FROM unnest(regexp_split_to_array(translate(lower(name), 'ё', 'е'), "
    "'[^[:alnum:]]+')) AS w WHERE w <> '' ORDER BY w), ' ') $$"
)


def drop_old_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS client_name_key_idx")
        schema_editor.execute("DROP FUNCTION IF EXISTS client_name_key(text)")


def restore_old_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_FUNCTION)
        schema_editor.execute("CREATE INDEX IF NOT EXISTS client_name_key_idx ON clients_client (client_name_key(name::text)) "
                              "WHERE deleted_at IS NULL")


class Migration(migrations.Migration):
    dependencies = [("clients", "0019_duplicates_indexes")]
    operations = [
        migrations.RunPython(drop_old_index, restore_old_index),
        migrations.AddField(
            model_name="client",
            name="name_key",
            field=models.CharField(blank=True, default="", editable=False, max_length=30),
        ),
        migrations.AddIndex(
            model_name="client",
            index=models.Index(condition=models.Q(("deleted_at__isnull", True), models.Q(("name_key", ""), _negated=True)),
                               fields=["name_key"], name="client_name_key_idx"),
        ),
    ]
