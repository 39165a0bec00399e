"""The built-in roles: Admin (every permission, all records) and Manager (own records).

Created by migration crm.0002 and again after any flush (post_migrate), only when missing:
an admin's later changes to a role are never overwritten.
"""

TASKS_MANAGER = ["tasks.view_task", "tasks.add_task", "tasks.change_task"]
TASKS_ADMIN = [*TASKS_MANAGER, "tasks.add_task_bulk", "tasks.change_tasktype"]
DEALS_MANAGER = ["deals.view_deal", "deals.add_deal", "deals.change_deal", "deals.move_deal", "deals.add_sale"]
DEALS_ADMIN = [*DEALS_MANAGER, "deals.delete_deal", "deals.restore_deal", "deals.change_funnel"]
ADMIN_PERMISSIONS = [
    "clients.view_client", "clients.add_client", "clients.change_client", "clients.delete_client",
    "clients.restore_client", "clients.change_responsible", "clients.import_clients",
    "clients.export_clients", "clients.change_customfield", "clients.merge_clients", "crm.manage_users", *DEALS_ADMIN, *TASKS_ADMIN,
    "messenger.send_messages", "messenger.reply", "messenger.manage_ignore", "messenger.configure_channels",
    "robots.configure_robots", "partners.configure_partners",
]
MANAGER_PERMISSIONS = [
    "clients.view_client", "clients.add_client", "clients.change_client", "clients.delete_client",
    "clients.export_clients", *DEALS_MANAGER, *TASKS_MANAGER, "messenger.reply", "messenger.manage_ignore",
]
BUILTIN = [("Admin", "all", ADMIN_PERMISSIONS), ("Manager", "own", MANAGER_PERMISSIONS)]


def create_all_permissions(apps) -> None:
    """Permissions are normally created after all migrations; data migrations need them now."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def add_permissions(apps, group, codes) -> None:
    Permission = apps.get_model("auth", "Permission")
    for code in codes:
        app_label, codename = code.split(".")
        perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if perm:
            group.permissions.add(perm)


def ensure_builtin_roles(apps) -> None:
    Group = apps.get_model("auth", "Group")
    Role = apps.get_model("crm", "Role")
    for name, visibility, codes in BUILTIN:
        group, _created = Group.objects.get_or_create(name=name)
        role, created = Role.objects.get_or_create(group=group, defaults={"visibility": visibility, "is_builtin": True})
        if created:
            add_permissions(apps, group, codes)


def on_post_migrate(sender, apps=None, **kwargs):
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    if sender.name != "crm":
        return
    apps = apps or global_apps  # flush sends no migration state
    try:
        apps.get_model("crm", "Role")
    except LookupError:
        return

    # Other apps' post_migrate may not have run yet: make every permission exist first.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, apps=apps)
    ensure_builtin_roles(apps)
    try:
        apps.get_model("deals", "Funnel")
    except LookupError:
        return
    from clients.layout import ensure_default_layout
    from deals.defaults import ensure_default_funnel

    ensure_default_funnel(apps)
    ensure_default_layout(apps)
    from tasks.defaults import ensure_task_types

    ensure_task_types(apps)
