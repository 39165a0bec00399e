"""The name key stored on the client (Client.name_key, made in Python by clients.names.name_key) in
place of the index on the SQL function client_name_key(name): the function ran a sorting
subquery for every row an import inserted. Existing clients get their key from that function
(the same words, the same order) before it is dropped."""

from django.db import migrations, models

from clients.names import name_key

OLD_FUNCTION = (
    "CREATE OR REPLACE FUNCTION client_name_key(name text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ "
    "SELECT array_to_string(array(SELECT w FROM unnest(regexp_split_to_array(translate(lower(name), 'ё', 'е'), "
    "'[^[:alnum:]]+')) AS w WHERE w <> '' ORDER BY w), ' ') $$"
)


def drop_old_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS client_name_key_idx")


def restore_old_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_FUNCTION)
        schema_editor.execute("CREATE INDEX IF NOT EXISTS client_name_key_idx ON clients_client (client_name_key(name::text)) "
                              "WHERE deleted_at IS NULL")


def fill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD_FUNCTION)  # present since 0019; made again so this step stands alone
        schema_editor.execute("UPDATE clients_client SET name_key = coalesce(client_name_key(name::text), '')")
        schema_editor.execute("DROP FUNCTION client_name_key(text)")
        return
    Client = apps.get_model("clients", "Client")
    changed = []
    for client in Client.objects.only("pk", "name").iterator(chunk_size=2000):
        client.name_key = name_key(client.name)
        changed.append(client)
    Client.objects.bulk_update(changed, ["name_key"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("clients", "0019_duplicates_indexes")]
    operations = [
        migrations.RunPython(drop_old_index, restore_old_index),
        migrations.AddField(
            model_name="client",
            name="name_key",
            field=models.CharField(blank=True, default="", editable=False, max_length=30),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="client",
            index=models.Index(condition=models.Q(("deleted_at__isnull", True), models.Q(("name_key", ""), _negated=True)),
                               fields=["name_key"], name="client_name_key_idx"),
        ),
    ]
