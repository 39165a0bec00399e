"""Write a chunk: validated rows → clients, tags, deals, row records and feed entries, in the
caller's transaction (a chunk commits whole or not at all, with the job's counters).

Duplicates are found by E.164 phone or case-insensitive e-mail, among the clients the importer
may see (and those this import created), and among the rows earlier in the same file:
- skip: the row is skipped, naming the client it matches (and the earlier row of the file);
- update: the filled cells overwrite that client's values, the empty ones leave them alone;
- create: a new client, and the pair is marked as a suggested duplicate.
A row that matches two different clients (its phone one, its e-mail another) is never applied in
update mode: it is reported with both, and both stay as they were.
"""

from collections import deque
from collections.abc import Callable
from copy import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import Client, Tag
from clients.names import name_key
from clients.phones import phone_digits
from crm import activity, events
from crm import permissions as gate
from crm.bulk import copy_insert, copy_rows, copy_update, instance_factory, is_postgres, reserve_ids
from crm.models import Activity, Event, Role

from .models import ImportJob, ImportRecord
from .readers import cell_text
from .rows import Row, RowValidator

if TYPE_CHECKING:
    from deals.models import Deal

UPDATABLE = ["name", "phone", "extra_phones", "email", "extra_emails", "company", "country", "city", "address", "channel", "source",
             "priority", "external_id", "registration_date"]
Outcome = ImportRecord.Outcome


@dataclass
class Target:
    """A client a row can land on: one in the database, or one an earlier row of this chunk creates."""

    client: Client
    row: int | None = None  # the row of this file that created or last updated it
    new: bool = False
    in_flight: bool = False  # as a chunk still being written left it (it may not be committed yet)


@dataclass
class Result:
    row: Row
    outcome: str
    reason: "str | Lazy" = ""
    column: str = ""
    target: Target | None = None
    previous: dict = field(default_factory=dict)
    deal: "Deal | None" = None
    values: list = field(default_factory=list)

    @property
    def landed(self) -> Target:
        """The client a created or updated row landed on: such a row always has one."""
        assert self.target is not None, f"row {self.row.number} ({self.outcome}) has no client"
        return self.target


@dataclass
class Plan:
    """A prepared chunk: what each row becomes, waiting to be written."""

    results: list[Result]
    fresh: list[Result]
    rows: int
    counts: dict[str, int]
    # it updates a client a chunk still being written created or updated: its updates wait for it
    updates_in_flight: bool = False


class Lazy:
    """A text made when it is first needed (see ChunkWriter._who)."""

    def __init__(self, make):
        self.make = make

    def __str__(self) -> str:
        return self.make()


def emails_of(client: Client) -> list[str]:
    return [e.lower() for e in (client.email, *client.extra_emails) if e]


def describe(client: Client) -> str:
    quoted = _("“%(name)s”") % {"name": client.name}  # «…» in Russian
    return f"#{client.pk} {quoted}" if client.pk else quoted


# Chunks written at once on PostgreSQL, each by a thread and a connection of its own, committed in
# order (services._write_all): the database's work on one chunk (its indexes, the foreign-key checks
# at its commit) runs on one core while the next chunk's new clients go in on the other.
WRITERS = 2


class ChunkWriter:
    def __init__(self, job: ImportJob, validator: RowValidator, *, stages=()):
        self.job = job
        self.actor = job.created_by
        self.validator = validator
        self.mode = job.duplicates
        self.first_stage = stages[0] if stages else None
        # Rows without a responsible get their deal from the line's distribution (issue 14), if it has one.
        from deals.models import Line

        self.distributes = job.deal_line_id is not None and Line.objects.filter(pk=job.deal_line_id).exclude(
            distribution=Line.Distribution.OFF).exists()
        self.new_client = instance_factory(Client)
        # the last chunks prepared (perhaps not yet committed: WRITERS are written at once)
        self.inflight: deque[Plan] = deque(maxlen=WRITERS)

    # Duplicates ---------------------------------------------------------------------------------

    def _existing(self, rows: list[Row]) -> tuple[dict, dict]:
        """Live clients with one of the rows' phones or e-mails (each of theirs and each of the
        client's: main or other), keyed both ways."""
        phones = {p for r in rows for p in r.phones}
        emails = {e for r in rows for e in r.emails}
        by_phone: dict[str, list[Target]] = {}
        by_email: dict[str, list[Target]] = {}
        found = {c.pk: c for c in Client.objects.filter(pk__in=self._matching_ids(phones, emails))} if phones or emails else {}
        targets: dict[int, Target] = {}
        if found:
            # Clients this import already wrote (perhaps for another responsible), with the last row that did.
            mine = dict(
                ImportRecord.objects.filter(job=self.job, client_id__in=list(found), outcome__in=[Outcome.CREATED, Outcome.UPDATED])
                .order_by("row").values_list("client_id", "row")
            )
            if gate.visibility(self.actor) != Role.Visibility.ALL:  # only clients the importer may see (or wrote)
                visible = set(gate.scope_to_user(self.actor, Client.objects.filter(pk__in=list(found))).values_list("pk", flat=True))
                found = {pk: c for pk, c in found.items() if pk in visible or pk in mine}
            targets = {pk: Target(client=client, row=mine.get(pk)) for pk, client in found.items()}
        for plan in self.inflight:  # the chunks being written meanwhile, oldest first: their clients as they left them
            for result in plan.results:
                if result.target is None or result.outcome not in (Outcome.CREATED, Outcome.UPDATED):
                    continue
                client = result.target.client
                if not phones.isdisjoint(client.all_phones) or not emails.isdisjoint(emails_of(client)):
                    # a copy (of the few this chunk matches): the writer may be reading the original right now
                    targets[client.pk] = Target(client=copy(client), row=result.target.row, in_flight=True)
        for pk in sorted(targets):
            target = targets[pk]
            for phone in target.client.all_phones:
                if phone in phones:
                    self._index(by_phone, phone, target)
            for email in emails_of(target.client):
                if email in emails:
                    self._index(by_email, email, target)
        return by_phone, by_email

    @staticmethod
    def _matching_ids(phones: set[str], emails: set[str]) -> list[int]:
        """Ids of live clients with one of the phones or (any case) e-mails, as their phone or
        e-mail or among their other ones. On PostgreSQL the main ones by one index probe per key: a
        LATERAL subquery with a LIMIT is never flattened into a join, so no statistics (lagging
        behind a growing table, or missing for lower(email) under a partial index) can turn it into
        a scan of every client, as they did "IN (2,000 keys)": 0.47 s a chunk on 1,000,000 clients,
        5 ms this way. Ten matches a key are enough to tell a duplicate. The other ones by one scan
        of their GIN index for all the keys at once (`?|`; few clients have any)."""
        alive = Client.objects.alive()
        if not is_postgres():
            by_phone = alive.filter(phone__in=phones).exclude(phone="").values_list("pk", flat=True)
            by_email = alive.exclude(email="").alias(low=Lower("email")).filter(low__in=emails).values_list("pk", flat=True)
            others = [
                pk for pk, extra_phones, extra_emails in alive.exclude(extra_phones=[], extra_emails=[])
                .values_list("pk", "extra_phones", "extra_emails")
                if not phones.isdisjoint(extra_phones) or not emails.isdisjoint(e.lower() for e in extra_emails)
            ]
            return [*by_phone, *by_email, *others]
        from django.db import connection

        table = connection.ops.quote_name(Client._meta.db_table)
        probe = ("SELECT m.id FROM unnest(%s::text[]) AS k(v) CROSS JOIN LATERAL (SELECT c.id FROM {table} c "
                 "WHERE {key} = k.v AND c.deleted_at IS NULL AND c.{column} <> '' LIMIT 10) m")
        among = ("SELECT c.id FROM {table} c WHERE {key} ?| %s::text[] AND c.deleted_at IS NULL "
                 "AND c.{column} <> '[]'::jsonb")
        ids: list[int] = []
        with connection.cursor() as cursor:
            for keys, key, column in ((phones, "c.phone", "phone"), (emails, "lower(c.email)", "email")):
                if keys:
                    cursor.execute(probe.format(table=table, key=key, column=column), [sorted(keys)])
                    ids.extend(row[0] for row in cursor.fetchall())
            for keys, key, column in ((phones, "c.extra_phones", "extra_phones"),
                                      (emails, "(lower(c.extra_emails::text)::jsonb)", "extra_emails")):
                if keys:
                    cursor.execute(among.format(table=table, key=key, column=column), [sorted(keys)])
                    ids.extend(row[0] for row in cursor.fetchall())
        return ids

    # The chunk ----------------------------------------------------------------------------------

    def prepare(self, chunk: list[tuple[int, list]], *, dry: bool = False) -> "Plan":
        """Validate a chunk and decide each row's fate (reading, never writing, the database). The
        chunk before it may still be being written: its clients are looked up in memory. `dry`: for
        the preview, a plan that is never written (no ids reserved, nothing remembered)."""
        validated = [(self.validator.validate(number, cells), cells) for number, cells in chunk]
        good = [row for row, _cells in validated if row.ok]
        by_phone, by_email = self._existing(good)
        results: list[Result] = []
        fresh: list[Result] = []
        now = timezone.now()
        for row, cells in validated:
            if row.empty:  # a blank line between blocks of a list is not a row of data: no record, no count
                continue
            if row.problems:
                column, _message = row.problems[0]
                results.append(Result(row, Outcome.FAILED, row.reason(), column=column, values=[cell_text(c) for c in cells]))
                continue
            matches = self._matches(row, by_phone, by_email)
            result = self._decide(row, matches, now)
            results.append(result)
            if result.outcome == Outcome.CREATED:
                fresh.append(result)
            if result.target is not None and result.outcome in (Outcome.CREATED, Outcome.UPDATED):
                target = result.target
                target.row = row.number
                for phone in target.client.all_phones:
                    self._index(by_phone, phone, target)
                for email in emails_of(target.client):
                    self._index(by_email, email, target)
        if is_postgres() and not dry:  # ids now, so that the next chunk (prepared while this one is written) can name them
            for result, pk in zip(fresh, reserve_ids(Client, len(fresh)), strict=True):
                result.landed.client.pk = pk
        counts = {o: 0 for o in Outcome.values}
        for result in results:
            counts[result.outcome] += 1
        plan = Plan(results=results, fresh=fresh, rows=len(chunk), counts=counts, updates_in_flight=any(
            r.outcome == Outcome.UPDATED and r.target is not None and r.target.in_flight for r in results))
        if not dry:
            self.inflight.append(plan)
        return plan

    def apply(self, plan: "Plan", *, after_previous: Callable[[], object] = lambda: None) -> None:
        """Write a prepared chunk and count it on the job: the caller's transaction holds both.

        `after_previous` returns once the chunk before this one is committed (and raises if it
        failed), when the two are written at once (services._write_all). Written before it: this
        chunk's new clients and their feed entries, rows nobody else can see or lock; and its
        updates, unless one is of a client a chunk still being written created or updated (which
        this transaction could not see, or would lock before that chunk does). What may touch the
        chunk before's rows or the rows it locks (new tags, tag links, deals and their counters,
        the job's count) waits for it: no two chunks wait for each other, and the chunks commit
        in order, so the job's count is always a prefix of the file."""
        results, fresh = plan.results, plan.fresh
        self._insert_clients(fresh)
        if plan.updates_in_flight:
            after_previous()
        self._save_updates([r for r in results if r.outcome == Outcome.UPDATED and not r.landed.new])
        after_previous()
        self._tags([r for r in results if r.outcome in (Outcome.CREATED, Outcome.UPDATED)])
        self._deals([r for r in results if r.outcome in (Outcome.CREATED, Outcome.UPDATED)])
        self._records(results)
        bump(self.job, plan.counts, plan.rows)

    def write(self, chunk: list[tuple[int, list]]) -> dict[str, int]:
        """Prepare and write one chunk (in the caller's transaction)."""
        plan = self.prepare(chunk)
        self.apply(plan)
        return plan.counts

    @staticmethod
    def _index(table: dict, key: str, target: Target) -> None:
        entries = table.get(key)
        if entries is None:
            table[key] = [target]
        elif all(t.client is not target.client for t in entries):
            entries.append(target)

    @staticmethod
    def _matches(row: Row, by_phone, by_email) -> list[Target]:
        matches: list[Target] = []
        found = [t for phone in row.phones for t in by_phone.get(phone, ())] + [t for email in row.emails for t in by_email.get(email, ())]
        for target in found:
            if all(m.client is not target.client for m in matches):
                matches.append(target)
        return matches

    def _decide(self, row: Row, matches: list[Target], now) -> Result:
        if matches and self.mode != ImportJob.Duplicates.CREATE:
            if len(matches) > 1:
                names = [self._who(m) for m in matches]
                refusal = Lazy(lambda: _("Matches clients %(names)s: nothing changed.") % {"names": _(" and ").join(map(str, names))})
                outcome = Outcome.FAILED if self.mode == ImportJob.Duplicates.UPDATE else Outcome.SKIPPED
                return Result(row, outcome, refusal)
            target = matches[0]
            if self.mode == ImportJob.Duplicates.SKIP:
                who = self._who(target)
                return Result(row, Outcome.SKIPPED, Lazy(lambda: _("Already there: client %(who)s.") % {"who": who}), target=target)
            return self._update(row, target, now)
        client = self.new_client(created_by_id=self.actor.pk, modified_by_id=self.actor.pk,
                                 responsible_id=row.responsible_id or self.actor.pk, created_at=now, modified_at=now)
        self._fill(client, row)
        # A contact known only by a work phone (or a second e-mail column) still has a phone (an e-mail).
        if not client.phone and client.extra_phones:
            client.phone, client.extra_phones = client.extra_phones[0], client.extra_phones[1:]
        if not client.email and client.extra_emails:
            client.email, client.extra_emails = client.extra_emails[0], client.extra_emails[1:]
        reason: str | Lazy = ""
        if matches:
            names = [self._who(m) for m in matches]
            reason = Lazy(lambda: _("Possible duplicate of %(names)s.") % {"names": _(" and ").join(map(str, names))})
        return Result(row, Outcome.CREATED, reason, target=Target(client=client, new=True))

    @staticmethod
    def _who(target: Target) -> "Lazy":
        """How a reason names a client: its id is known only once the chunk's new clients are
        inserted, so the text is made then; the row is the one that wrote it so far."""
        client, row = target.client, target.row

        def text() -> str:
            who = describe(client)
            return who + " " + _("(row %(n)s of this file)") % {"n": row} if row else who

        return Lazy(text)

    def _update(self, row: Row, target: Target, now) -> Result:
        client = target.client
        previous = {}
        if not target.new and target.row is None:  # a client this import did not write: keep what it had, for undo
            previous = {f: _stored(getattr(client, f)) for f in UPDATABLE if f in row.client}
            previous["custom"] = dict(client.custom)
            previous["responsible_id"] = client.responsible_id
        if row.responsible_id and row.responsible_id != client.responsible_id and not gate.can(self.actor, gate.CHANGE_RESPONSIBLE):
            return Result(row, Outcome.FAILED, _("You may not change the responsible of client %(who)s.") % {"who": describe(client)})
        self._fill(client, row)
        if row.responsible_id:
            client.responsible_id = row.responsible_id
        client.modified_by = self.actor
        client.modified_at = now
        reason = _("The same client as row %(n)s.") % {"n": target.row} if target.row else ""
        return Result(row, Outcome.UPDATED, reason, target=target, previous=previous)

    @staticmethod
    def _fill(client: Client, row: Row) -> None:
        for name, value in row.client.items():
            if name == "extra_phones":
                known = set(client.all_phones)
                client.extra_phones = list(client.extra_phones) + [p for p in value if p not in known and p != row.phone]
            elif name == "extra_emails":  # added to those the client has, as other phones are
                known = {e.lower() for e in (client.email, *client.extra_emails)}
                client.extra_emails = list(client.extra_emails) + [e for e in value if e not in known and e != row.email]
            else:
                setattr(client, name, value)
        if client.phone in client.extra_phones:
            client.extra_phones = [p for p in client.extra_phones if p != client.phone]
        if client.email and client.extra_emails:
            client.extra_emails = [e for e in client.extra_emails if e.lower() != client.email.lower()]
        if row.custom:
            client.custom = {**(client.custom or {}), **row.custom}
        client.phone_digits = phone_digits(client.all_phones)
        client.name_key = name_key(client.name)

    # Writes ---------------------------------------------------------------------------------------

    def _insert_clients(self, fresh: list[Result]) -> None:
        clients = [r.landed.client for r in fresh]
        if not clients:
            return
        if is_postgres():
            copy_insert(Client, clients, with_ids=True)  # ids reserved in prepare
        else:
            Client.objects.bulk_create(clients, batch_size=500)
        activity.record_bulk(rows=[(c.pk, None, self.job.filename) for c in clients], actor=self.actor,
                             kind=Activity.Kind.CREATED)

    def _save_updates(self, updated: list[Result]) -> None:
        seen, clients = set(), []
        for result in updated:
            if id(result.landed.client) not in seen:
                seen.add(id(result.landed.client))
                clients.append(result.landed.client)
        if not clients:
            return
        copy_update(Client, clients, [*UPDATABLE, "name_key", "custom", "responsible_id", "phone_digits", "modified_by_id", "modified_at"])
        activity.record_bulk(rows=[(c.pk, None, self.job.filename) for c in clients], actor=self.actor,
                             kind=Activity.Kind.CHANGE, field="import", field_label=_("Import"))

    def _tags(self, results: list[Result]) -> None:
        wanted: dict[str, str] = {}
        for result in results:  # the first spelling met names a new tag
            for name in result.row.tags:
                wanted.setdefault(name.lower(), name)
        if not wanted:
            return
        tags: dict[str, Tag] = {t.name.lower(): t for t in Tag.objects.alias(lower=Lower("name")).filter(lower__in=list(wanted))}
        for key, name in wanted.items():
            if key not in tags:
                tags[key] = Tag.objects.get_or_create(name=name)[0]
        through = Client.tags.through
        links = {(r.landed.client.pk, tags[name.lower()].pk) for r in results for name in r.row.tags}
        # Clients this chunk creates have no links yet: theirs go by COPY. Others may have the tag already.
        fresh = {r.landed.client.pk for r in results if r.landed.new}
        copy_rows(through, ["client_id", "tag_id"], [link for link in links if link[0] in fresh])
        through.objects.bulk_create([through(client_id=c, tag_id=t) for c, t in links if c not in fresh],
                                    ignore_conflicts=True, batch_size=1000)

    def _deals(self, results: list[Result]) -> None:
        """A deal per created row (and per updated row whose deal cells are filled), in the chosen line."""
        if not self.job.deal_line_id or self.first_stage is None:
            return
        from deals import distribution
        from deals.models import Deal, Line
        from deals.services import new_position

        deals, given, fresh = [], [], set()
        now = timezone.now()
        for result in results:
            row = result.row
            if result.outcome == Outcome.UPDATED and not row.deal:
                continue
            client = result.landed.client
            # A client this import created is the importer's only until its deal finds a manager.
            responsible = row.responsible_id or (None if result.landed.new else client.responsible_id)
            if responsible is None and not self.distributes:
                responsible = client.responsible_id or self.actor.pk
            result.deal = Deal(client_id=client.pk, stage=row.deal.get("stage") or self.first_stage,
                               name=row.deal.get("name") or client.name, budget=row.deal.get("budget") or 0,
                               responsible_id=responsible, created_by=self.actor, position=new_position(), entered_at=now)
            deals.append(result.deal)
            if responsible is None:
                given.append(result.deal)
                if result.landed.new:
                    fresh.add(client.pk)
        if given:
            distribution.assign_many(given, Line(pk=self.job.deal_line_id), actor=self.actor)
        Deal.objects.bulk_create(deals, batch_size=1000)
        activity.record_bulk(rows=[(d.client_id, d.pk, f"#{d.pk} {d.name} · {d.stage}") for d in deals], actor=self.actor,
                             kind=Activity.Kind.DEAL)
        events.emit_many(Event.Kind.STAGE, [(d.client_id, d.pk, d.stage_id) for d in deals], at=now)
        if given:
            distribution.after_insert(given, actor=self.actor,
                                      previous={d.pk: self.actor.pk for d in given if d.client_id in fresh})
            waiting = {d.client_id for d in given if d.responsible_id is None} & fresh
            Client.objects.filter(pk__in=waiting, responsible_id=self.actor.pk).update(responsible_id=None)

    def _records(self, results: list[Result]) -> None:
        columns = ["job_id", "row", "outcome", "column", "reason", "client_id", "deal_id", "previous", "values"]
        copy_rows(ImportRecord, columns, [
            (self.job.pk, r.row.number, r.outcome, r.column[:100], str(r.reason)[:500], r.target.client.pk if r.target else None,
             r.deal.pk if r.deal else None, r.previous, r.values)
            for r in results
        ])


def _stored(value):
    """A field's value as undo keeps it in JSON."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list):
        return list(value)
    return value if value is not None else ""


def bump(job: ImportJob, counts: dict[str, int], rows: int) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        processed=F("processed") + rows, created=F("created") + counts["created"], updated=F("updated") + counts["updated"],
        skipped=F("skipped") + counts["skipped"], failed=F("failed") + counts["failed"], heartbeat_at=timezone.now(),
    )
