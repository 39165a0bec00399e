"""The built-in roles: Admin (every permission, all records) and Manager (own records)."""

from django.db import migrations

from crm.roles import create_all_permissions, ensure_builtin_roles


def create_roles(apps, schema_editor):
    create_all_permissions(apps)
    ensure_builtin_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("clients", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
