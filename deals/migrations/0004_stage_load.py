"""The board's counters (deals.StageLoad); 0005 adds the triggers that keep them exact."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deals', '0003_postgres_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='StageLoad',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('deals', models.IntegerField(default=0)),
                ('budget', models.DecimalField(decimal_places=2, default=0, max_digits=20)),
                ('sales', models.DecimalField(decimal_places=2, default=0, max_digits=20)),
                ('changes', models.BigIntegerField(default=0)),
                ('responsible', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('stage', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='deals.stage')),
            ],
            options={
                'required_db_vendor': 'postgresql',
                'constraints': [models.UniqueConstraint(fields=('stage', 'responsible'), name='stageload_unique', nulls_distinct=False)],
            },
        ),
    ]
