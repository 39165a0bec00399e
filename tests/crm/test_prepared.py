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


@pytest.mark.parametrize("page,marker", [("board", "AS card_tags"), ("clients", "FROM clients_client c "),
                                         ("clients", "FROM clients_customfield t"), ("clients", "FROM crm_tablesettings")])
def test_the_pages_statements_are_prepared_and_reused(page, marker, admin_client, admin):
    deal = DealFactory(client=ClientFactory(responsible=admin), responsible=admin)
    url = deal.stage.line.funnel.get_absolute_url() if page == "board" else reverse("clients:list")
    for _ in range(3):
        response = admin_client.get(url)
        assert response.status_code == 200
    plans = prepared_statements()
    ours = [counts for text, counts in plans.items() if marker in text]
    user_row = [counts for text, counts in plans.items() if text.lstrip().startswith("SELECT crm_user.")]
    assert ours and all(generic >= 3 and custom == 0 for generic, custom in ours), plans
    assert user_row and all(generic >= 3 for generic, _custom in user_row)


def test_a_pages_frame_is_prepared_and_sent_in_one_round_trip(manager_client, manager):
    """The board's frame (funnels, lines, stages with their counters, a manager's hidden fields):
    four prepared statements in one round trip (raw.prepared_batch), logged as one query of them
    with their values merged."""
    deal = DealFactory(client=ClientFactory(responsible=manager), responsible=manager)
    url = deal.stage.line.funnel.get_absolute_url()
    for _ in range(3):
        assert manager_client.get(url).status_code == 200
    plans = prepared_statements()
    for marker in ("FROM deals_funnel t", "FROM deals_line t", "FROM deals_stage t", "FROM clients_cardfield f"):
        ours = [counts for text, counts in plans.items() if marker in text]
        assert ours and all(generic >= 3 and custom == 0 for generic, custom in ours), (marker, plans)
    with CaptureQueriesContext(connection) as queries:
        manager_client.get(url)
    frame = [q["sql"] for q in queries if "FROM deals_funnel t" in q["sql"]]
    assert len(frame) == 1 and frame[0].count("SELECT ") >= 4 and "$1" not in frame[0]
    assert f"t.funnel_id = {deal.stage.line.funnel_id}" in frame[0]


def test_a_batch_answers_each_statement_in_order_and_fails_as_a_database_error():
    from django.db import DatabaseError

    person = ClientFactory(name="Пётр")
    assert raw.prepared_batch([("SELECT name FROM clients_client WHERE id = %s", [person.pk]),
                               ("SELECT %s::int + 1", [41]), ("SELECT 1 WHERE false", [])]) == [[("Пётр",)], [(42,)], []]
    with pytest.raises(DatabaseError):
        raw.prepared_batch([("SELECT 1", []), ("SELECT * FROM no_such_table", [])])


@pytest.mark.django_db(transaction=True)
def test_a_batch_and_a_prepared_cursor_replace_a_connection_the_server_dropped():
    """With CONN_HEALTH_CHECKS (production's settings), a kept connection that the server closed
    is replaced before the first statement of a request, as Django's own cursors do."""
    import psycopg

    for use in (lambda: raw.prepared_batch([("SELECT %s::int", [7])]), lambda: _one_prepared(7)):
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        params = connection.get_connection_params()
        with psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")},
                             autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])
        connection.health_check_enabled, connection.health_check_done = True, False
        try:
            assert use() in ([[(7,)]], [(7,)])
            assert connection.connection.info.backend_pid != pid
        finally:
            connection.health_check_enabled = False


def _one_prepared(value: int):
    with raw.prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int", [value])
        return cursor.fetchall()
