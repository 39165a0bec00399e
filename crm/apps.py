import gc

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("CRM")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.backends.signals import connection_created
        from django.db.models.signals import m2m_changed, post_delete, post_save
        from guardian.models import GroupObjectPermission, UserObjectPermission

        from . import sqlite
        from .permissions import grants_changed
        from .roles import on_post_migrate

        connection_created.connect(sqlite.install, dispatch_uid="crm.sqlite_unicode_like")
        # After a flush (transactional tests) the built-in roles come back with the permissions.
        post_migrate.connect(on_post_migrate, dispatch_uid="crm.builtin_roles")
        # The poll's cached answer to "may this user open the funnel" (gate.may_open_funnel) ends
        # with any change of an object grant or of a user's groups.
        for model in (UserObjectPermission, GroupObjectPermission):
            post_save.connect(grants_changed, sender=model, dispatch_uid=f"crm.grants.save.{model.__name__}")
            post_delete.connect(grants_changed, sender=model, dispatch_uid=f"crm.grants.delete.{model.__name__}")
        m2m_changed.connect(grants_changed, sender=get_user_model().groups.through, dispatch_uid="crm.grants.groups")
        # Each app's jobs.py registers the handlers of its job kinds (crm.jobs.handler).
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")

        # The cyclic garbage collector's first threshold: 10,000 new container objects (CPython's
        # default is 2,000). The board builds ~30,000 (its 120 cards' rows, dicts and pieces of
        # text), almost all freed by reference counting when the page is sent; at 2,000 a young
        # collection ran every few cards and each tenth swept the middle generation too. Measured
        # interleaved, the board was 15 % faster (1.5-2 ms), other pages and the framework's floor
        # unchanged. The older generations keep their defaults. Every process of the application
        # (web, worker, tests, benches) sets it here.
        young, middle, old = gc.get_threshold()
        gc.set_threshold(max(young, 10_000), middle, old)
