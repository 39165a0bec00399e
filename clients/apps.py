from django.apps import AppConfig
from django.db.models.signals import post_migrate


def default_lead_steps(sender, using="default", **kwargs) -> None:
    """The default lead steps (migration 0016) come back after a flush (transactional tests), as
    the built-in roles do; only when there is no step at all (an admin keeps at least one)."""
    from .models import LeadStep

    if not LeadStep.objects.using(using).exists():
        LeadStep.objects.using(using).bulk_create(
            [LeadStep(system_key=key, position=i) for i, key in enumerate(LeadStep.DEFAULTS, 1)])


class ClientsConfig(AppConfig):
    name = "clients"

    def ready(self):
        post_migrate.connect(default_lead_steps, sender=self, dispatch_uid="clients.default_lead_steps")
