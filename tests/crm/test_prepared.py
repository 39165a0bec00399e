"""The statements every page sends through crm.raw.prepared_cursor (the signed-in user, the board's
cards, the clients table's page): prepared once per connection, then only executed, with a generic
plan; logged with their parameters merged, as every other statement is."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm import raw
from tests.factories import ClientFactory, DealFactory

pytestmark = pytest.mark.django_db


def prepared_statements() -> dict[str, tuple[int, int]]:
    """{statement text: (generic plans, custom plans)} of this connection's prepared statements."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        return {statement: (generic, custom) for statement, generic, custom in cursor.fetchall()}


def test_a_statement_is_prepared_once_and_then_executed_with_a_generic_plan():
    sql = "SELECT id, name FROM clients_client WHERE id = %s"
    client = ClientFactory(name="Анна Петрова")
    for _ in range(3):
        with raw.prepared_cursor() as cursor:
            cursor.execute(sql, [client.pk])
            assert cursor.fetchall() == [(client.pk, "Анна Петрова")]
    plans = {text: counts for text, counts in prepared_statements().items() if "FROM clients_client WHERE id = $1" in text}
    assert list(plans.values()) == [(3, 0)]  # one statement, three executions, never planned for its value


def test_a_prepared_statement_is_logged_with_its_parameters_merged():
    client = ClientFactory(name="O'Brien")
    with CaptureQueriesContext(connection) as queries, raw.prepared_cursor() as cursor:
        cursor.execute("SELECT name FROM clients_client WHERE id = %s AND name = %s", [client.pk, "O'Brien"])
        assert cursor.fetchone() == ("O'Brien",)
    assert [q["sql"] for q in queries] == [f"SELECT name FROM clients_client WHERE id = {client.pk} AND name = 'O''Brien'"]


@pytest.mark.parametrize("page", ["board", "clients"])
def test_the_pages_statements_are_prepared_and_reused(page, admin_client, admin):
    deal = DealFactory(client=ClientFactory(responsible=admin), responsible=admin)
    url = deal.stage.line.funnel.get_absolute_url() if page == "board" else reverse("clients:list")
    marker = "AS card_tags" if page == "board" else "FROM clients_client c "
    for _ in range(3):
        response = admin_client.get(url)
        assert response.status_code == 200
    plans = prepared_statements()
    ours = [counts for text, counts in plans.items() if marker in text]
    user_row = [counts for text, counts in plans.items() if text.lstrip().startswith("SELECT crm_user.")]
    assert ours and all(generic >= 3 and custom == 0 for generic, custom in ours), plans
    assert user_row and all(generic >= 3 for generic, _custom in user_row)
