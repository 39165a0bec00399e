"""On PostgreSQL, the triggers that keep the board's counters (deals.StageLoad) exact.

Statement-level AFTER triggers with transition tables: one grouped upsert per statement, whatever
the number of rows it wrote (a card move is one row; an import's COPY or a bulk change of
responsible is thousands, still one upsert). Groups are upserted in (stage, responsible) order so
two concurrent statements lock counter rows in the same order and cannot deadlock on them.
"""

from django.db import migrations

COUNTS = """
    INSERT INTO deals_stageload AS t (stage_id, responsible_id, deals, budget, sales, changes)
    SELECT stage_id, responsible_id, sum(deals), sum(budget), sum(sales), sum(changes) FROM ({rows}) AS d
    GROUP BY stage_id, responsible_id ORDER BY stage_id, responsible_id NULLS FIRST
    ON CONFLICT (stage_id, responsible_id) DO UPDATE SET
        deals = t.deals + excluded.deals, budget = t.budget + excluded.budget,
        sales = t.sales + excluded.sales, changes = t.changes + excluded.changes;
"""


def rows_of(table: str, sign: str) -> str:
    """Each written deal's contribution: live deals count, every row written is a change."""
    return (
        f"SELECT stage_id, responsible_id, {sign}(deleted_at IS NULL)::int AS deals,"
        f" CASE WHEN deleted_at IS NULL THEN {sign}budget ELSE 0 END AS budget,"
        f" CASE WHEN deleted_at IS NULL THEN {sign}sales_sum ELSE 0 END AS sales, 1 AS changes FROM {table}"
    )


FORWARD = f"""
LOCK TABLE deals_deal IN SHARE MODE;

CREATE FUNCTION deals_stageload_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {COUNTS.format(rows=rows_of("new_deals", "+"))}
    ELSIF TG_OP = 'DELETE' THEN
        {COUNTS.format(rows=rows_of("old_deals", "-"))}
    ELSE
        {COUNTS.format(rows=rows_of("old_deals", "-") + " UNION ALL " + rows_of("new_deals", "+"))}
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER deals_stageload_insert AFTER INSERT ON deals_deal
    REFERENCING NEW TABLE AS new_deals FOR EACH STATEMENT EXECUTE FUNCTION deals_stageload_sync();
CREATE TRIGGER deals_stageload_update AFTER UPDATE ON deals_deal
    REFERENCING OLD TABLE AS old_deals NEW TABLE AS new_deals FOR EACH STATEMENT EXECUTE FUNCTION deals_stageload_sync();
CREATE TRIGGER deals_stageload_delete AFTER DELETE ON deals_deal
    REFERENCING OLD TABLE AS old_deals FOR EACH STATEMENT EXECUTE FUNCTION deals_stageload_sync();

CREATE FUNCTION deals_stageload_stage_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM deals_stageload WHERE stage_id IN (SELECT id FROM old_stages);
    RETURN NULL;
END $$;

CREATE TRIGGER deals_stageload_stage_delete AFTER DELETE ON deals_stage
    REFERENCING OLD TABLE AS old_stages FOR EACH STATEMENT EXECUTE FUNCTION deals_stageload_stage_gone();

{COUNTS.format(rows=rows_of("deals_deal", "+"))}
"""

BACKWARD = """
DROP TRIGGER IF EXISTS deals_stageload_stage_delete ON deals_stage;
DROP FUNCTION IF EXISTS deals_stageload_stage_gone();
DROP TRIGGER IF EXISTS deals_stageload_insert ON deals_deal;
DROP TRIGGER IF EXISTS deals_stageload_update ON deals_deal;
DROP TRIGGER IF EXISTS deals_stageload_delete ON deals_deal;
DROP FUNCTION IF EXISTS deals_stageload_sync();
"""


def run(sql: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("deals", "0004_stage_load")]
    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
