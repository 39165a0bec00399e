"""Build the whole list of possible duplicates at once (after a big import, or to start the list on
an existing database): clients.duplicates.rebuild(), set-based, in one transaction. Dismissed pairs
stay dismissed; suggestions that no longer hold are removed."""

import time

from django.core.management.base import BaseCommand

from clients import duplicates
from clients.models import DuplicateSuggestion


class Command(BaseCommand):
    help = "Find possible duplicate clients (same phone, same e-mail, similar name in the same city or company)."

    def handle(self, *args, **options):
        started = time.perf_counter()
        added = duplicates.rebuild()
        open_pairs = DuplicateSuggestion.objects.filter(dismissed_at__isnull=True).count()
        self.stdout.write(f"{added} new pairs, {open_pairs} open, in {time.perf_counter() - started:.1f} s")
