"""The clients tables' indexes: one behind each query, none that no query uses (clients.migrations.0014)."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="index names are PostgreSQL's")
def test_unused_and_duplicate_indexes_are_gone():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('clients_client', 'clients_client_tags')")
        indexes = dict(cursor.fetchall())
    assert "client_email_idx" not in indexes and "client_created_idx" not in indexes
    assert not [d for d in indexes.values() if d.endswith("(deleted_by_id)")]
    # the unique (client_id, tag_id) serves lookups by client: no second index on client_id alone
    assert not [d for d in indexes.values() if "clients_client_tags" in d and d.endswith("(client_id)")]
    assert "client_recent_idx" in indexes and "client_email_lower_idx" in indexes
