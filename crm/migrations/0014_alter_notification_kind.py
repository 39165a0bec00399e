from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0013_events'),
    ]

    operations = [
        migrations.AlterField(
            model_name='notification',
            name='kind',
            field=models.CharField(choices=[('mention', 'Mention'), ('assigned', 'Made responsible'), ('reminder', 'Reminder'), ('job', 'Job finished'), ('shift', 'Shift'), ('message', 'Message'), ('robot', 'Robot'), ('partner', 'Partner')], max_length=10),
        ),
    ]
