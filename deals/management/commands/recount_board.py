"""manage.py recount_board: the board's counters counted afresh from the deals (deals.services)."""

from django.core.management.base import BaseCommand

from deals.services import board_counters_rebuild


class Command(BaseCommand):
    help = "Count the board's column totals and change counters afresh from the deals (PostgreSQL)."

    def handle(self, *args, **options):
        groups = board_counters_rebuild()
        self.stdout.write(f"{groups} counter rows")
