"""The import's duplicate lookup finds a row's phones and e-mails among the clients' other phones and
other e-mails too, all the keys of a chunk in one scan (`?| array[…]`), PostgreSQL only (SQLite:
compared in Python):

- client_extra_phones_gin becomes a jsonb_ops index (it served `@>` only; `?|` needs this operator
  class, which serves `@>` as well, as clients.duplicates asks it);
- client_extra_emails_gin: the other e-mails in lower case (a merge keeps them as typed).

Both partial: most clients have none, and those rows cost an insert nothing.
"""

from django.db import migrations

from crm.migration_sql import postgres_only

FORWARD = [
    "DROP INDEX IF EXISTS client_extra_phones_gin",
    "CREATE INDEX client_extra_phones_gin ON clients_client USING gin (extra_phones) "
    "WHERE deleted_at IS NULL AND extra_phones <> '[]'::jsonb",
    "CREATE INDEX IF NOT EXISTS client_extra_emails_gin ON clients_client USING gin ((lower(extra_emails::text)::jsonb)) "
    "WHERE deleted_at IS NULL AND extra_emails <> '[]'::jsonb",
]
BACKWARD = [
    "DROP INDEX IF EXISTS client_extra_emails_gin",
    "DROP INDEX IF EXISTS client_extra_phones_gin",
    "CREATE INDEX client_extra_phones_gin ON clients_client USING gin (extra_phones jsonb_path_ops) "
    "WHERE deleted_at IS NULL AND extra_phones <> '[]'::jsonb",
]


class Migration(migrations.Migration):
    dependencies = [("clients", "0022_client_phone_extension")]
    operations = [postgres_only(FORWARD, BACKWARD)]
