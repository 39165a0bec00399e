"""Possible duplicates (DESIGN §2 "Merge", issue 18 point 5): two live clients with the same E.164
phone (main or extra), the same e-mail (trimmed, case-insensitive), or a similar name (pg_trgm
similarity ≥ NAME_SIMILARITY, so word order does not matter) with the same city or the same company
(non-empty, case-insensitive). Suggested, never merged.

A pair is stored once, DuplicateSuggestion(client = the newer, i.e. the larger id, other = the older),
with the strongest kind (phone, then e-mail, then name). "Not a duplicate" sets dismissed_at: the row
stays, so the pair is never suggested again in either order.

- `suggest_for(ids)`: the incremental lookup for a batch of clients (a create, an edit, an import
  chunk, a client the messenger made): one statement for any number of clients, each client an
  index probe per phone (client_phone_idx, client_extra_phones_gin), e-mail (client_email_lower_idx)
  and name (client_name_upper_trgm; an import chunk: the same words, client_name_key_idx), never a
  scan of the table. Suggestions of these clients that no longer hold (a phone was changed) and are
  not dismissed are removed in the same statement.
- `rebuild()`: the whole list at once (`manage.py find_duplicates`, after a big import; the bench's
  `duplicates_scan_1m_s`), set-based: clients grouped by phone, by e-mail, and for names by blocks
  of (city or company, the beginnings of two words of the name); a block
  shared by more than BIG_GROUP clients says nothing about any two of them and is skipped. So a pair
  of similar names whose every shared block is bigger (two namesakes "Иванов Иван" among a hundred in
  one city) is left to the incremental lookup, which compares every candidate the trigram index gives.

On SQLite (the embedded demo) the same rules run in Python over the live clients.
"""

import re
from collections.abc import Iterable

from django.db import connection, transaction

from .models import Client, DuplicateSuggestion
from .names import name_key

NAME_SIMILARITY = 0.6  # pg_trgm similarity: "Иванов Иван" ~ "Иван Иванов" 1.0, "Кузнецов Иван Петрович" ~ "Кузнецоф …" 0.84
# …and each word of the name with fewer words found in the other (pg_trgm word_similarity, ё as е):
# "Пономарёва Маргарита" ~ "Пономарёва Маргарита Олеговна" (1.0) is one, "Котов Константин Иванович" ~
# "Новиков Константин Иванович" (similarity 0.72, "котов" 0.50) and "Кузнецова Ирина" ~ "Кузнецова Алина" are not.
WORD_SIMILARITY = 0.55
# The trigram index is on the names as written: "Пономарёва" and "Пономарева" differ there, so it is
# asked for a little less and alike_sql (ё as е) decides.
PROBE_SIMILARITY = 0.5
CANDIDATES = 20  # per client, phone and kind: beyond that a value is shared too widely to be one person's
BIG_GROUP = 30  # rebuild: a phone, e-mail or name block shared by more clients is skipped
COMPARED_FIELDS = {"name", "phone", "extra_phones", "email", "city", "company"}  # an edit of one of these looks again
KIND_RANK = {DuplicateSuggestion.Kind.PHONE: 1, DuplicateSuggestion.Kind.EMAIL: 2, DuplicateSuggestion.Kind.NAME: 3}


def _words(name: str) -> str:
    return f"array_length(regexp_split_to_array(btrim({name}), '\\s+'), 1)"


def alike_sql(a: str, b: str) -> str:
    """SQL: the names (expressions a and b) are alike (NAME_SIMILARITY and WORD_SIMILARITY above)."""
    fewer, more = (f"translate(lower(CASE WHEN {_words(a)} <= {_words(b)} THEN {x} ELSE {y} END), 'ё', 'е')"
                   for x, y in ((a, b), (b, a)))
    return (f"(similarity(translate({a}, 'ёЁ', 'еЕ'), translate({b}, 'ёЁ', 'еЕ')) >= {NAME_SIMILARITY} AND NOT EXISTS (SELECT 1 FROM "
            f"regexp_split_to_table({fewer}, '[^[:alnum:]]+') AS w(word) "
            f"WHERE length(w.word) >= 2 AND word_similarity(w.word, {more}) < {WORD_SIMILARITY}))")


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _tables() -> dict[str, str]:
    return {"clients": Client._meta.db_table, "dups": DuplicateSuggestion._meta.db_table}


# The statement of suggest_for: the batch's clients (src), each one's phones, the candidates per kind
# (LATERAL index probes, CANDIDATES at most each), one row per pair with its strongest kind, the
# batch's stale suggestions removed, the new ones inserted.
SIMILAR_NAMES = """    SELECT s.id, m.id, 3 FROM src s CROSS JOIN LATERAL (
        SELECT c.id FROM {clients} c WHERE upper(c.name::text) %% s.uname AND c.deleted_at IS NULL AND c.id <> s.id
        AND ((s.city <> '' AND lower(btrim(c.city)) = s.city) OR (s.company <> '' AND lower(btrim(c.company)) = s.company))
        AND {alike}
        ORDER BY similarity(upper(c.name::text), s.uname) DESC, c.id LIMIT {limit}) m
    WHERE s.city <> '' OR s.company <> ''"""
# The same words in any order, case and ё aside (Client.name_key, client_name_key_idx): what an import chunk asks.
SAME_NAMES = """    SELECT s.id, m.id, 3 FROM src s CROSS JOIN LATERAL (
        SELECT c.id FROM {clients} c WHERE c.name_key = s.name_key AND c.name_key <> '' AND c.deleted_at IS NULL
        AND c.id <> s.id
        AND ((s.city <> '' AND lower(btrim(c.city)) = s.city) OR (s.company <> '' AND lower(btrim(c.company)) = s.company))
        LIMIT {limit}) m
    WHERE s.city <> '' OR s.company <> ''"""
SUGGEST_SQL = """
WITH src AS (
    SELECT c.id, c.phone, c.extra_phones, lower(btrim(c.email)) AS email, c.name::text AS name, c.name_key, upper(c.name::text) AS uname,
           lower(btrim(c.city)) AS city, lower(btrim(c.company)) AS company
    FROM {clients} c WHERE c.id = ANY(%(ids)s::bigint[]) AND c.deleted_at IS NULL
), src_phones AS (
    SELECT id, phone AS p FROM src WHERE phone <> ''
    UNION
    SELECT src.id, e.p FROM src CROSS JOIN LATERAL jsonb_array_elements_text(src.extra_phones) AS e(p) WHERE e.p <> ''
), found AS (
    SELECT s.id AS a, m.id AS b, 1 AS rank FROM src_phones s CROSS JOIN LATERAL (
        SELECT c.id FROM {clients} c WHERE c.phone = s.p AND c.deleted_at IS NULL AND c.phone <> '' AND c.id <> s.id
        LIMIT {limit}) m
    UNION ALL
    SELECT s.id, m.id, 1 FROM src_phones s CROSS JOIN LATERAL (
        SELECT c.id FROM {clients} c WHERE c.extra_phones @> jsonb_build_array(s.p) AND c.deleted_at IS NULL
        AND c.extra_phones <> '[]'::jsonb AND c.id <> s.id LIMIT {limit}) m
    UNION ALL
    SELECT s.id, m.id, 2 FROM src s CROSS JOIN LATERAL (
        SELECT c.id FROM {clients} c WHERE lower(c.email) = s.email AND c.deleted_at IS NULL AND c.email <> ''
        AND c.id <> s.id LIMIT {limit}) m
    WHERE s.email <> ''
    UNION ALL
{names}
), pairs AS (
    SELECT DISTINCT ON (greatest(a, b), least(a, b)) greatest(a, b) AS hi, least(a, b) AS lo, rank
    FROM found ORDER BY greatest(a, b), least(a, b), rank
), stale AS (
    DELETE FROM {dups} d WHERE d.dismissed_at IS NULL AND (d.client_id = ANY(%(ids)s::bigint[]) OR d.other_id = ANY(%(ids)s::bigint[]))
    AND (%(similar_names)s OR d.kind <> 'name')  -- names compared by their words only: a similar-name pair is not judged
    AND NOT EXISTS (SELECT 1 FROM pairs p WHERE p.hi = greatest(d.client_id, d.other_id) AND p.lo = least(d.client_id, d.other_id))
    RETURNING d.id  -- a data-modifying WITH runs once whether or not it is read
)
INSERT INTO {dups} (client_id, other_id, kind, reason, created_at)
SELECT p.hi, p.lo, CASE p.rank WHEN 1 THEN 'phone' WHEN 2 THEN 'email' ELSE 'name' END, '', now()
FROM pairs p
WHERE NOT EXISTS (SELECT 1 FROM {dups} d WHERE d.client_id = p.lo AND d.other_id = p.hi)
ON CONFLICT (client_id, other_id) DO NOTHING
"""


def suggest_for(ids: Iterable[int], *, similar_names: bool = True) -> int:
    """Find and store the possible duplicates of these clients (created or edited just now); remove
    their suggestions that no longer hold, unless dismissed. Returns how many pairs were added. A
    few statements on PostgreSQL whatever the number of clients or the size of the table.

    similar_names=False (an import chunk): names are compared by their words (any order, any case,
    ё as е) through client_name_key_idx, a b-tree probe, instead of the trigram similarity a single
    save affords (tens of milliseconds per client at a million clients); `manage.py find_duplicates`
    after a big import finds the similar ones too."""
    ids = sorted({int(pk) for pk in ids if pk})
    if not ids:
        return 0
    if not is_postgres():
        return _suggest_python(ids, similar_names=similar_names)
    names = (SIMILAR_NAMES if similar_names else SAME_NAMES).format(
        limit=CANDIDATES, alike=alike_sql("c.name::text", "s.name").replace("%", "%%"), **_tables())
    with transaction.atomic(), connection.cursor() as cursor:
        # The trigram threshold of the name probe; no JIT: the plan's estimates (a million-row table)
        # would have PostgreSQL compile it for half a second, to run a few milliseconds of index probes.
        cursor.execute("SELECT current_setting('jit'), current_setting('pg_trgm.similarity_threshold', true), "
                       "set_config('jit', 'off', true), set_config('pg_trgm.similarity_threshold', %s, true)",
                       [str(PROBE_SIMILARITY)])
        jit, threshold, _off, _set = cursor.fetchone()
        cursor.execute(SUGGEST_SQL.format(limit=CANDIDATES, names=names, **_tables()), {"ids": ids, "similar_names": similar_names})
        added = cursor.rowcount
        # set_config(..., true) lasts to the end of the transaction: what follows in it gets the settings back
        cursor.execute("SELECT set_config('jit', %s, true), set_config('pg_trgm.similarity_threshold', %s, true)",
                       [jit, threshold or "0.3"])
    return max(added, 0)


IMPORT_BATCH = 2000


def suggest_for_import(import_id, *, progress=None, start: int = 0) -> int:
    """After an import (a crm.Job of kind "duplicates", clients.jobs, started when it is done): the
    possible duplicates of the clients it created and updated, against the table and each other (the
    file's rows are all in the table by then), in batches of IMPORT_BATCH clients, names by their
    words as for a chunk. Not in the import's chunks: at a million clients the lookup was 40 % of a
    100,000-row import. `start`: clients already done (a resumed job); each batch is idempotent."""
    from imports.models import ImportRecord

    ids = list(ImportRecord.objects.filter(job_id=import_id, client__isnull=False,
                                           outcome__in=[ImportRecord.Outcome.CREATED, ImportRecord.Outcome.UPDATED])
               .order_by("client_id").values_list("client_id", flat=True).distinct())
    if not start:
        settle_after_bulk_write(len(ids))
    if progress is not None:
        progress(total=len(ids))
    added = 0
    for first in range(start, len(ids), IMPORT_BATCH):
        batch = ids[first:first + IMPORT_BATCH]
        added += suggest_for(batch, similar_names=False)
        if progress is not None:
            progress(first + len(batch))
    return added


def settle_after_bulk_write(written: int) -> bool:
    """What PostgreSQL's documentation asks after a bulk load ("Populating a Database": run ANALYZE
    afterwards), done by the worker once an import is done, before its duplicates are looked for:
    the GIN pending lists merged (merge_pending_index_entries) and, when the import wrote more rows
    than autovacuum's own default threshold (50 + 10 % of the table), the table's statistics taken
    again at once rather than within autovacuum's next minutes. Until then the planner takes the
    200,000 clients just written for a handful and a common-name search walks past all of them.
    ~0.3 s at a million clients. True when the table was analyzed."""
    merge_pending_index_entries()
    if connection.vendor != "postgresql":
        return False
    table = Client._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass", [table])
        if written <= 50 + 0.1 * cursor.fetchone()[0]:
            return False
        cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    return True


def merge_pending_index_entries() -> int:
    """Move the clients table's GIN entries waiting in their indexes' pending lists (PostgreSQL's
    fastupdate) into the indexes proper, as autovacuum would later: a search reads a pending list
    whole, each time (after a 200,000-row import, ~10 ms a name search). Once an import is done,
    in the worker, before its duplicates are looked for: ~0.1 s for 200,000 rows. The pages merged."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(gin_clean_pending_list(i.indexrelid::regclass)), 0) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
            " WHERE i.indrelid = %s::regclass AND am.amname = 'gin'", [Client._meta.db_table])
        return int(cursor.fetchone()[0])


# The whole list. Phones and e-mails: clients grouped by the value. Names: each client's words, with
# the scope (its city, its company); a block is the scope with the first four letters of two words of
# the name (a one-word name: that word); pairs within a block whose names are alike. Blocks of
# 2..BIG_GROUP clients only.
REBUILD_SQL = [
    "SET LOCAL work_mem = '1GB'",  # the blocks are grouped in memory (an admin's command, once in a while)
    """CREATE TEMP TABLE dup_pairs ON COMMIT DROP AS
    WITH blocks AS (
        SELECT rank, array_agg(id) AS ids FROM (
            SELECT 1 AS rank, c.phone AS key, c.id FROM {clients} c WHERE c.deleted_at IS NULL AND c.phone <> ''
            UNION
            SELECT 1, e.p, c.id FROM {clients} c CROSS JOIN LATERAL jsonb_array_elements_text(c.extra_phones) AS e(p)
            WHERE c.deleted_at IS NULL AND c.extra_phones <> '[]'::jsonb AND e.p <> ''
            UNION ALL
            SELECT 2, lower(btrim(c.email)), c.id FROM {clients} c WHERE c.deleted_at IS NULL AND c.email <> ''
        ) k GROUP BY rank, key HAVING count(*) BETWEEN 2 AND {big}
    )
    SELECT greatest(x.id, y.id) AS hi, least(x.id, y.id) AS lo, min(b.rank) AS rank
    FROM blocks b, unnest(b.ids) WITH ORDINALITY AS x(id, i), unnest(b.ids) WITH ORDINALITY AS y(id, j)
    WHERE x.i < y.j GROUP BY 1, 2""",
    """CREATE TEMP TABLE dup_words ON COMMIT DROP AS
    SELECT c.id, s.scope, upper(c.name::text) AS uname,
           regexp_split_to_array(translate(lower(c.name::text), 'ё', 'е'), '[^[:alnum:]]+') AS words
    FROM {clients} c CROSS JOIN LATERAL (VALUES ('c' || lower(btrim(c.city))), ('o' || lower(btrim(c.company)))) AS s(scope)
    WHERE c.deleted_at IS NULL AND (c.city <> '' OR c.company <> '') AND length(s.scope) > 1""",
    """INSERT INTO dup_pairs
    WITH blocks AS (
        SELECT array_agg(id) AS ids, array_agg(uname) AS names FROM (
            SELECT d.scope || ' ' || d.words[1] AS key, d.id, d.uname FROM dup_words d WHERE cardinality(d.words) = 1
            UNION ALL
            -- two words' beginnings: the same two words, and "Петров Иван" ~ "Петрова Иван" (a typo at a word's end)
            SELECT d.scope || ' ' || least(left(d.words[i], 4), left(d.words[j], 4)) || ' ' || greatest(left(d.words[i], 4), left(d.words[j], 4)),
                   d.id, d.uname
            FROM dup_words d, generate_subscripts(d.words, 1) AS i, generate_subscripts(d.words, 1) AS j
            WHERE i < j AND length(d.words[i]) >= 2 AND length(d.words[j]) >= 2
        ) k GROUP BY hashtextextended(key, 0) HAVING count(*) BETWEEN 2 AND {big}  -- a rare collision only adds candidates
    )
    , candidates AS (  -- a pair meets in several blocks (several words, city and company): compared once
        SELECT DISTINCT ON (greatest(b.ids[i], b.ids[j]), least(b.ids[i], b.ids[j]))
               greatest(b.ids[i], b.ids[j]) AS hi, least(b.ids[i], b.ids[j]) AS lo, b.names[i] AS a, b.names[j] AS b
        FROM blocks b, generate_series(1, cardinality(b.ids)) AS i, generate_series(i + 1, cardinality(b.ids)) AS j
        WHERE b.ids[i] <> b.ids[j]
        ORDER BY greatest(b.ids[i], b.ids[j]), least(b.ids[i], b.ids[j])
    )
    SELECT hi, lo, 3 FROM candidates WHERE {alike}""",
    # One row per pair, the strongest kind.
    """CREATE TEMP TABLE dup_best ON COMMIT DROP AS
    SELECT hi, lo, min(rank) AS rank FROM dup_pairs GROUP BY hi, lo""",
    "CREATE INDEX ON dup_best (hi, lo)",
    """DELETE FROM {dups} d WHERE d.dismissed_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM dup_best p WHERE p.hi = d.client_id AND p.lo = d.other_id)""",
    """INSERT INTO {dups} (client_id, other_id, kind, reason, created_at)
    SELECT p.hi, p.lo, CASE p.rank WHEN 1 THEN 'phone' WHEN 2 THEN 'email' ELSE 'name' END, '', now()
    FROM dup_best p
    WHERE NOT EXISTS (SELECT 1 FROM {dups} d WHERE d.client_id = p.lo AND d.other_id = p.hi)
    ON CONFLICT (client_id, other_id) DO NOTHING""",
]


def rebuild() -> int:
    """Build the whole suggestion list (set-based, one transaction): add every pair found, remove
    the undismissed ones that no longer hold, keep dismissed ones. Returns how many pairs were added."""
    if not is_postgres():
        return _suggest_python(list(Client.objects.alive().values_list("pk", flat=True)), whole=True)
    added = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in REBUILD_SQL:
            cursor.execute(statement.format(big=BIG_GROUP, alike=alike_sql("a", "b"), **_tables()))
            added = cursor.rowcount
    return max(added, 0)


# SQLite (the embedded demo): the same rules in Python ----------------------------------------------

WORD = re.compile(r"[^\w]+")


def trigrams(text: str) -> set[str]:
    """pg_trgm's trigrams of a text: each word (letters and digits) lower-cased, padded with two
    spaces before and one after."""
    grams: set[str] = set()
    for word in WORD.split(text.lower()):
        if word:
            padded = f"  {word} "
            grams.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return grams


def similarity(a: str, b: str) -> float:
    first, second = trigrams(a), trigrams(b)
    union = first | second
    return len(first & second) / len(union) if union else 0.0


def alike(a: str, b: str) -> bool:
    """alike_sql in Python (a word's best match among the other name's words stands for word_similarity)."""
    if similarity(a.replace("ё", "е").replace("Ё", "Е"), b.replace("ё", "е").replace("Ё", "Е")) < NAME_SIMILARITY:
        return False
    words_a, words_b = (WORD.split(x.lower().replace("ё", "е")) for x in (a, b))
    fewer, more = (words_a, words_b) if len([w for w in words_a if w]) <= len([w for w in words_b if w]) else (words_b, words_a)
    return all(max((len(trigrams(w) & trigrams(v)) / len(trigrams(w)) for v in more if v), default=0) >= WORD_SIMILARITY
               for w in fewer if len(w) >= 2)


def _likeness(a: dict, b: dict, similar_names: bool = True) -> int | None:
    """The kind rank of two clients' likeness (1 phone, 2 e-mail, 3 name), or None."""
    if a["phones"] & b["phones"]:
        return 1
    if a["email"] and a["email"] == b["email"]:
        return 2
    same_place = (a["city"] and a["city"] == b["city"]) or (a["company"] and a["company"] == b["company"])
    if same_place and (alike(a["name"], b["name"]) if similar_names
                       else name_key(a["name"]) == name_key(b["name"])):
        return 3
    return None


def _suggest_python(ids: list[int], *, whole: bool = False, similar_names: bool = True) -> int:
    rows = {
        pk: {"phones": {p for p in [phone, *(extra or [])] if p}, "email": (email or "").strip().lower(), "name": name,
             "city": (city or "").strip().lower(), "company": (company or "").strip().lower()}
        for pk, name, phone, extra, email, city, company in Client.objects.alive().values_list(
            "pk", "name", "phone", "extra_phones", "email", "city", "company")
    }
    kinds = {rank: kind for kind, rank in KIND_RANK.items()}
    found: dict[tuple[int, int], int] = {}
    for pk in ids:
        if pk not in rows:
            continue
        for other, data in rows.items():
            if other != pk and (rank := _likeness(rows[pk], data, similar_names)) is not None:
                found[(max(pk, other), min(pk, other))] = rank
    with transaction.atomic():
        stale = DuplicateSuggestion.objects.filter(dismissed_at__isnull=True)
        if not whole:
            stale = stale.filter(client_id__in=ids) | stale.filter(other_id__in=ids)
        for suggestion in stale:
            key = (max(suggestion.client_id, suggestion.other_id), min(suggestion.client_id, suggestion.other_id))
            if key not in found and (similar_names or suggestion.kind != DuplicateSuggestion.Kind.NAME):
                suggestion.delete()
        known = set(DuplicateSuggestion.objects.filter(client_id__in={lo for _hi, lo in found}).values_list("client_id", "other_id"))
        new = [DuplicateSuggestion(client_id=hi, other_id=lo, kind=kinds[rank]) for (hi, lo), rank in found.items()
               if (lo, hi) not in known]
        return len(DuplicateSuggestion.objects.bulk_create(new, ignore_conflicts=True))
