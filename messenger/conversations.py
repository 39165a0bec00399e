"""What a user does to a conversation besides writing in it (issue 15): reading it, taking it,
closing and reopening it. Each change bumps the conversation's version, the chat's poll token."""

from django.core.exceptions import PermissionDenied
from django.db.models import F

from crm import permissions as gate

from .models import Conversation, Unread


def read(*, user, conversation: Conversation) -> None:
    """Opening a chat reads it: the user's unread count goes, and the conversation's when they are
    its assignee (or it has none)."""
    Unread.objects.filter(user=user, conversation=conversation).delete()
    if conversation.unread and conversation.assignee_id in (None, user.pk):
        Conversation.objects.filter(pk=conversation.pk).update(unread=0, version=F("version") + 1)


def take(*, user, conversation: Conversation) -> None:
    """"Take it": the conversation is the user's; the unread count moves to them."""
    gate.require(user, gate.REPLY)
    Conversation.objects.filter(pk=conversation.pk).update(assignee=user, version=F("version") + 1)
    Unread.objects.filter(conversation=conversation).exclude(user=user).delete()  # the old assignee's count goes
    if conversation.unread:
        Unread.objects.update_or_create(user=user, conversation=conversation, defaults={"count": conversation.unread})


def toggle_closed(*, user, conversation: Conversation) -> None:
    """Close a conversation that needs nothing more (a new message opens it again), or reopen it;
    an ignored one stays as it is."""
    if not gate.can(user, gate.REPLY):
        raise PermissionDenied
    closed, opened = Conversation.Status.CLOSED, Conversation.Status.OPEN
    status = opened if conversation.status == closed else closed
    Conversation.objects.filter(pk=conversation.pk).exclude(status=Conversation.Status.IGNORED).update(
        status=status, version=F("version") + 1, **({"unread": 0} if status == closed else {}))
