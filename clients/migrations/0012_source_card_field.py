from django.db import migrations


def add_source(apps, schema_editor):
    """The new "Source" system field joins the contact block, after the admin's own order."""
    Card = apps.get_model("clients", "CardField")
    if not Card.objects.filter(block="contact", system_key="source").exists():
        last = Card.objects.filter(block="contact").order_by("-position").values_list("position", flat=True).first()
        Card.objects.create(block="contact", system_key="source", position=(last or 0) + 1)


class Migration(migrations.Migration):
    dependencies = [("clients", "0011_source_duplicates_import_moved")]
    operations = [migrations.RunPython(add_source, migrations.RunPython.noop)]
