from django.db import migrations

from crm.roles import add_permissions, create_all_permissions


def forward(apps, schema_editor):
    create_all_permissions(apps)
    Role = apps.get_model("crm", "Role")
    for role in Role.objects.filter(is_builtin=True).select_related("group"):
        codes = ["messenger.reply", "messenger.manage_ignore"]
        if role.group.name == "Admin":
            codes.append("messenger.configure_channels")
        add_permissions(apps, role.group, codes)


class Migration(migrations.Migration):
    dependencies = [("messenger", "0005_messenger"), ("crm", "0002_default_roles")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
