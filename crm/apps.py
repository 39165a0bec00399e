from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("CRM")

    def ready(self):
        from django.db.backends.signals import connection_created

        from . import sqlite
        from .roles import on_post_migrate

        connection_created.connect(sqlite.install, dispatch_uid="crm.sqlite_unicode_like")
        # After a flush (transactional tests) the built-in roles come back with the permissions.
        post_migrate.connect(on_post_migrate, dispatch_uid="crm.builtin_roles")
        # Each app's jobs.py registers the handlers of its job kinds (crm.jobs.handler).
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")
