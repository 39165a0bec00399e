from django.db import migrations
from django.db.models import F


def forward(apps, schema_editor):
    """The card's contact block shows the other e-mails a merge kept, right after the e-mail."""
    Card = apps.get_model("clients", "CardField")
    if Card.objects.filter(block="contact", system_key="extra_emails").exists():
        return
    email = Card.objects.filter(block="contact", system_key="email").first()
    position = (email.position if email else 0) + 1
    Card.objects.filter(block="contact", position__gte=position).update(position=F("position") + 1)
    Card.objects.create(block="contact", system_key="extra_emails", position=position)


class Migration(migrations.Migration):
    dependencies = [("clients", "0017_client_extra_emails")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
