"""One of the processes of the distribution race (test_distribution_race): waits for the start
signal (a file), then creates its deals, each with `distribute=True`, as fast as it can.

    python tests/deals/race_creator.py <ready file> <go file> <actor id> <stage id> <client ids,…>
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.test")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from clients.models import Client  # noqa: E402
from deals import services  # noqa: E402
from deals.models import Stage  # noqa: E402


def main(ready: str, go: str, actor_id: str, stage_id: str, client_ids: str) -> None:
    actor = get_user_model().objects.select_related("role").get(pk=int(actor_id))
    stage = Stage.objects.select_related("line__funnel").get(pk=int(stage_id))
    clients = list(Client.objects.filter(pk__in=[int(pk) for pk in client_ids.split(",")]).order_by("pk"))
    Path(ready).touch()
    deadline = time.monotonic() + 60
    while not Path(go).exists():  # the start line: every process is ready before the first deal
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.01)
    for client in clients:
        services.deal_create(actor=actor, client=client, stage=stage, name=f"Race {client.pk}", distribute=True)


if __name__ == "__main__":
    main(*sys.argv[1:6])
