"""Reads for the mass send's pages."""

from datetime import datetime

from django.db.models import Count, Min, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from .models import Delivery, MassSend


def mass_send_of(user, pk) -> MassSend:
    """A send its author follows (with its job); 404 for anyone else's."""
    return get_object_or_404(MassSend.objects.select_related("job"), pk=pk, created_by=user)


def mass_send_summary(send: MassSend, *, now: datetime | None = None) -> dict:
    """The send's numbers for its progress partial, in one query: sent, failed, waiting for a
    retry, and when the next retry is due."""
    now = now or timezone.now()
    waiting = Q(status=Delivery.Status.PENDING, next_attempt_at__gt=now)
    return Delivery.objects.filter(mass_send=send).aggregate(
        sent=Count("pk", filter=Q(status=Delivery.Status.SENT)),
        failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
        retrying=Count("pk", filter=waiting),
        next_retry=Min("next_attempt_at", filter=waiting),
    )
