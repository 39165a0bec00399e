"""The duplicate lookup's indexes (clients.duplicates), PostgreSQL only (SQLite: clients.duplicates
compares in Python):

- client_extra_phones_gin: a client's phone among the other clients' extra phones,
  `extra_phones @> '["+7…"]'`. Partial: most clients have none, and those rows cost an insert nothing.
- client_name_key(name): the words of a name, lower case, ё as е, sorted ("Иванов Иван" and
  "иван ИВАНОВ" → "иван иванов"); client_name_key_idx finds the namesakes of an import's rows with a
  b-tree probe.
"""

from django.db import migrations

from crm.migration_sql import postgres_only

FORWARD = [
    "CREATE INDEX IF NOT EXISTS client_extra_phones_gin ON clients_client USING gin (extra_phones jsonb_path_ops) "
    "WHERE deleted_at IS NULL AND extra_phones <> '[]'::jsonb",
    "CREATE OR REPLACE FUNCTION client_name_key(name text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ "
    "SELECT array_to_string(array(SELECT w FROM unnest(regexp_split_to_array(translate(lower(name), 'ё', 'е'), "
    "'[^[:alnum:]]+')) AS w WHERE w <> '' ORDER BY w), ' ') $$",
    "CREATE INDEX IF NOT EXISTS client_name_key_idx ON clients_client (client_name_key(name::text)) WHERE deleted_at IS NULL",
]
BACKWARD = [
    "DROP INDEX IF EXISTS client_name_key_idx",
    "DROP FUNCTION IF EXISTS client_name_key(text)",
    "DROP INDEX IF EXISTS client_extra_phones_gin",
]


class Migration(migrations.Migration):
    dependencies = [("clients", "0018_card_other_emails")]
    operations = [postgres_only(FORWARD, BACKWARD)]
