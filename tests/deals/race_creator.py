"""One of the processes of the distribution race (test_distribution_race): says "ready" on its
stdout, blocks reading its stdin until the start signal, then creates its deals, each with
`distribute=True`, as fast as it can.

    python tests/deals/race_creator.py <actor id> <stage id> <client ids,…>
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.test")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from clients.models import Client  # noqa: E402
from deals import services  # noqa: E402
from deals.models import Stage  # noqa: E402


def main(actor_id: str, stage_id: str, client_ids: str) -> None:
    actor = get_user_model().objects.select_related("role").get(pk=int(actor_id))
    stage = Stage.objects.select_related("line__funnel").get(pk=int(stage_id))
    clients = list(Client.objects.filter(pk__in=[int(pk) for pk in client_ids.split(",")]).order_by("pk"))
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":  # the start line: every process is ready before the first deal
        raise SystemExit("no start signal")
    for client in clients:
        services.deal_create(actor=actor, client=client, stage=stage, name=f"Race {client.pk}", distribute=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
