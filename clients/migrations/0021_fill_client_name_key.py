"""The name keys of the clients that existed before 0020, filled in batches of BATCH clients by id,
each batch its own transaction (the migration is not atomic): a table of a million clients is
never locked whole, and the app keeps working meanwhile (a client saved in the meantime gets its
key from Client.save). Interrupted, it is run again and fills only the keys still empty."""

from django.db import migrations, transaction

from clients.names import name_key

BATCH = 5_000


def fill(apps, schema_editor):
    Client = apps.get_model("clients", "Client")
    table = schema_editor.quote_name(Client._meta.db_table)
    last = 0
    with schema_editor.connection.cursor() as cursor:
        while True:
            cursor.execute(f"SELECT id, name FROM {table} WHERE id > %s AND name_key = '' ORDER BY id LIMIT %s", [last, BATCH])
            rows = cursor.fetchall()
            if not rows:
                return
            keys = {pk: key for pk, name in rows if (key := name_key(name))}
            if keys and schema_editor.connection.vendor == "postgresql":
                cursor.execute(f"UPDATE {table} c SET name_key = v.key FROM unnest(%s::bigint[], %s::text[]) AS v(id, key) "
                               "WHERE c.id = v.id AND c.name_key = ''", [list(keys), list(keys.values())])
            elif keys:
                with transaction.atomic(using=schema_editor.connection.alias):
                    cursor.executemany(f"UPDATE {table} SET name_key = %s WHERE id = %s AND name_key = ''",
                                       [(key, pk) for pk, key in keys.items()])
            last = rows[-1][0]


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("clients", "0020_client_name_key")]
    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
