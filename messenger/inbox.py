"""Reads of the inbox (issue 15): the conversations a user may see, one page of them, a chat's
messages, and the change tokens the page polls. Every read here has a fixed number of queries
whatever the volume; the list reads one index range per part (unread first, then the rest)."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from clients.filters import phone_q
from clients.models import Client
from clients.phones import digits_of
from crm import permissions as gate

from .models import Conversation, Message, Unread

PAGE = 40
CHAT_PAGE = 60
FILTERS = ("mine", "unassigned", "all")


def visible_conversations(user) -> QuerySet:
    """Conversations of live clients the user may see (own / team / all, by the client's responsible)."""
    if not gate.can(user, gate.VIEW_CLIENTS):
        return Conversation.objects.none()
    qs = Conversation.objects.filter(client__deleted_at__isnull=True)
    return gate.scope_to_user(user, qs, field="client__responsible")


def conversation_or_404(user, pk) -> Conversation:
    conversation = (visible_conversations(user).select_related("client", "client__responsible", "channel", "assignee")
                    .filter(pk=pk).first())
    if conversation is None:
        raise Http404
    return conversation


@dataclass
class ListPage:
    rows: list
    more: str | None  # the keyset cursor of the next page of read conversations


SEARCH_CAP = 2000  # matches the index-driven search collects before it leaves the search to the newest-first walk


def _filtered(user, which: str, query: str) -> QuerySet:
    qs = visible_conversations(user)
    if which == "mine":
        qs = qs.filter(assignee=user)
    elif which == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    query = " ".join(query.split())[:100]
    if query:
        qs = qs.filter(_search(user, query))
    return qs


def _search(user, query: str) -> Q:
    """Conversations whose client's name (phone, e-mail) or any message matches. A rare word is
    found from the trigram indexes (the matching clients and messages, at most SEARCH_CAP of each);
    a common one, which they would return by the thousand, by walking the newest conversations
    and testing each, which stops as soon as the page is full."""
    contact = Q()  # the phone and e-mail parts: few matches by nature
    if len(digits_of(query)) >= 3 and "phone" not in gate.hidden_fields(user):
        contact |= phone_q(query)
    if "@" in query and "email" not in gate.hidden_fields(user):
        contact |= Q(email__icontains=query)
    client_ids = list(Client.objects.filter(Q(name__icontains=query) | contact).values_list("pk", flat=True)[: SEARCH_CAP + 1])
    chat_ids = list(Message.objects.filter(text__icontains=query).values_list("conversation_id", flat=True)[: SEARCH_CAP + 1])
    if len(client_ids) <= SEARCH_CAP and len(chat_ids) <= SEARCH_CAP:
        return Q(client_id__in=client_ids) | Q(pk__in=set(chat_ids))
    walk = Q(client__name__icontains=query) | Q(Exists(Message.objects.filter(conversation=OuterRef("pk"), text__icontains=query)))
    return walk | Q(client__in=Client.objects.filter(contact)) if contact else walk


def conversation_page(user, *, which: str = "mine", query: str = "", after: str = "") -> ListPage:
    """Unread conversations first (newest first), then the others, newest first; `after` continues
    the others from a cursor ("<iso time>|<id>")."""
    qs = _filtered(user, which, query).select_related("client", "channel", "assignee")
    rows: list = []
    if not after:
        rows = list(qs.filter(unread__gt=0).order_by("-last_message_at", "-id")[:PAGE])
    rest = qs.filter(unread=0).exclude(last_message_at__isnull=True)
    if after:
        when, _sep, pk = after.partition("|")
        rest = rest.filter(Q(last_message_at__lt=when) | Q(last_message_at=when, id__lt=int(pk or 0)))
    room = max(PAGE - len(rows), 10)
    others = list(rest.order_by("-last_message_at", "-id")[: room + 1])
    more = None
    if len(others) > room:
        others = others[:room]
        last = others[-1]
        more = f"{last.last_message_at.isoformat()}|{last.pk}"
    rows += others
    mine = dict(Unread.objects.filter(user=user, conversation__in=[c.pk for c in rows]).values_list("conversation_id", "count"))
    for row in rows:
        row.my_unread = mine.get(row.pk, 0)
    return ListPage(rows=rows, more=more)


def chat_messages(conversation: Conversation, *, before: int | None = None) -> tuple[list, int | None]:
    """The newest CHAT_PAGE messages (oldest first on screen) with their attachments; the id to load older ones from."""
    qs = Message.objects.filter(conversation=conversation).select_related("author").prefetch_related("attachments")
    if before:
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-id")[: CHAT_PAGE + 1])
    older = rows[CHAT_PAGE - 1].pk if len(rows) > CHAT_PAGE else None
    rows = rows[:CHAT_PAGE]
    rows.reverse()
    return rows, older


def inbox_token() -> str:
    """The list's change token: the newest message's id, read from the primary key's index (O(1))."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(id) FROM {Message._meta.db_table}")
        newest = cursor.fetchone()[0]
    return str(newest or 0)


def chat_token(user, pk) -> str | None:
    """A chat's change token (its version), or None when the user may not see it: the gate's rule
    (clients.view_client through the role, then own / team / all) asked inside the token's one
    query, so an unchanged poll costs no permission query."""
    from django.contrib.auth.models import Permission

    qs = gate.scope_to_user(user, Conversation.objects.filter(client__deleted_at__isnull=True), field="client__responsible")
    if not user.is_superuser:
        app_label, codename = gate.VIEW_CLIENTS.split(".")
        qs = qs.filter(Exists(Permission.objects.filter(group__role__id=user.role_id, content_type__app_label=app_label,
                                                        codename=codename)))
    row = qs.filter(pk=pk).values_list("version", flat=True).first()
    return None if row is None else str(row)


# The address a channel knows a client by is their phone (SMS) or e-mail (mail): hidden with that field.
ADDRESS_FIELD = {"sms": "phone", "email": "email"}


def hidden_address(channel_kind: str, hidden: set[str]) -> bool:
    """Whether the conversation's address is hidden, given the contact fields hidden from the reader."""
    field = ADDRESS_FIELD.get(channel_kind)
    return bool(field) and field in hidden
