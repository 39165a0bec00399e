from django.core.management.base import BaseCommand

from crm.demo import load_demo


class Command(BaseCommand):
    help = "Load demo users and clients (once; running it again changes nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=2000)

    def handle(self, *args, clients, **options):
        logins = load_demo(clients=clients)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in at http://127.0.0.1:8000 with:"))
        for username, password in logins:
            self.stdout.write(f"  {username} / {password}")
