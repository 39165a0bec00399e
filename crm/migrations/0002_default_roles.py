"""The built-in roles: Admin (every permission, all records) and Manager (own records)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ADMIN_PERMISSIONS = [
    "clients.view_client", "clients.add_client", "clients.change_client", "clients.delete_client",
    "clients.restore_client", "clients.change_responsible", "clients.import_clients",
    "clients.export_clients", "clients.change_customfield", "crm.manage_users",
]
MANAGER_PERMISSIONS = [
    "clients.view_client", "clients.add_client", "clients.change_client", "clients.delete_client",
    "clients.export_clients",
]


def _perms(apps, codes):
    Permission = apps.get_model("auth", "Permission")
    found = []
    for code in codes:
        app_label, codename = code.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; the roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Role = apps.get_model("crm", "Role")
    for name, visibility, codes in (("Admin", "all", ADMIN_PERMISSIONS), ("Manager", "own", MANAGER_PERMISSIONS)):
        group, _created = Group.objects.get_or_create(name=name)
        Role.objects.update_or_create(group=group, defaults={"visibility": visibility, "is_builtin": True})
        group.permissions.add(*_perms(apps, codes))


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("clients", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
