from django.db import migrations

from crm.roles import add_permissions, create_all_permissions


def forward(apps, schema_editor):
    create_all_permissions(apps)
    Role = apps.get_model("crm", "Role")
    for role in Role.objects.filter(is_builtin=True, group__name="Admin").select_related("group"):
        add_permissions(apps, role.group, ["partners.configure_partners"])


class Migration(migrations.Migration):
    dependencies = [("partners", "0001_initial"), ("crm", "0002_default_roles")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
