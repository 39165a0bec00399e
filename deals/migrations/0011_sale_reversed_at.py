from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deals', '0010_robots'),
    ]

    operations = [
        migrations.AddField(
            model_name='sale',
            name='reversed_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='reversed'),
        ),
    ]
