"""The default funnel, and the deal permissions for the built-in roles."""

from django.db import migrations

from crm.roles import DEALS_ADMIN, DEALS_MANAGER, add_permissions, create_all_permissions
from deals.defaults import ensure_default_funnel


def forward(apps, schema_editor):
    create_all_permissions(apps)
    Role = apps.get_model("crm", "Role")
    for role in Role.objects.filter(is_builtin=True).select_related("group"):
        add_permissions(apps, role.group, DEALS_ADMIN if role.group.name == "Admin" else DEALS_MANAGER)
    ensure_default_funnel(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("deals", "0001_initial"),
        ("crm", "0002_default_roles"),
        ("guardian", "0003_remove_groupobjectpermission_guardian_gr_content_ae6aec_idx_and_more"),
    ]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
