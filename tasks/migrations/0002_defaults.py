"""The seed's task types, and the task permissions for the built-in roles."""

from django.db import migrations

from crm.roles import TASKS_ADMIN, TASKS_MANAGER, add_permissions, create_all_permissions
from tasks.defaults import ensure_task_types


def forward(apps, schema_editor):
    create_all_permissions(apps)
    Role = apps.get_model("crm", "Role")
    for role in Role.objects.filter(is_builtin=True).select_related("group"):
        add_permissions(apps, role.group, TASKS_ADMIN if role.group.name == "Admin" else TASKS_MANAGER)
    ensure_task_types(apps)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0001_initial"), ("crm", "0004_user_email_reminders_user_time_zone")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
