"""PostgreSQL-only indexes: trigram GIN for name and phone digits, GIN for custom fields.

On SQLite (the embedded default) this migration does nothing, so it still runs there.
"""

from django.db import migrations

from crm.migration_sql import postgres_only

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS client_name_trgm ON clients_client USING gin (name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS client_phone_trgm ON clients_client USING gin (phone_digits gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS client_custom_gin ON clients_client USING gin (custom jsonb_path_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS client_custom_gin",
    "DROP INDEX IF EXISTS client_phone_trgm",
    "DROP INDEX IF EXISTS client_name_trgm",
]


class Migration(migrations.Migration):
    dependencies = [("clients", "0001_initial")]
    operations = [postgres_only(FORWARD, BACKWARD)]
