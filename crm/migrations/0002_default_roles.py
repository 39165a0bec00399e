"""The built-in roles: Admin (every permission, all records) and Manager (own records)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from crm.roles import ensure_builtin_roles


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; the roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_builtin_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("clients", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
