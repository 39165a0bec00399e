from django.db import migrations

from crm.roles import add_permissions, create_all_permissions

DEFAULT_STEPS = ["new", "contract", "work", "conversion"]  # seed 004; labels in clients.models.LeadStep.DEFAULTS


def forward(apps, schema_editor):
    LeadStep = apps.get_model("clients", "LeadStep")
    if not LeadStep.objects.exists():
        LeadStep.objects.bulk_create([LeadStep(system_key=key, position=i) for i, key in enumerate(DEFAULT_STEPS, 1)])
    create_all_permissions(apps)
    Role = apps.get_model("crm", "Role")
    for role in Role.objects.filter(is_builtin=True, group__name="Admin").select_related("group"):
        add_permissions(apps, role.group, ["clients.merge_clients"])


class Migration(migrations.Migration):
    dependencies = [("clients", "0015_lead_steps_conversions_merges"), ("crm", "0002_default_roles")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
