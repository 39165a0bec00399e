from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RobotsConfig(AppConfig):
    name = "robots"
    verbose_name = _("Robots")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from crm import events

        from . import engine

        events.listen(engine.on_events)
