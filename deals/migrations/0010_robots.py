import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deals', '0009_shift_end_labels'),
    ]

    operations = [
        # Empty for the deals there are (robots count their entry from their creation), then the
        # default for new ones (a Python default: no rewrite of the table).
        migrations.AddField(
            model_name='deal',
            name='entered_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='in the stage since'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='entered_at',
            field=models.DateTimeField(blank=True, default=django.utils.timezone.now, null=True, verbose_name='in the stage since'),
        ),
        migrations.AddField(
            model_name='funnel',
            name='time_zone',
            field=models.CharField(default='Europe/Moscow', max_length=60, verbose_name='time zone'),
        ),
    ]
