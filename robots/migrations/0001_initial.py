import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('deals', '0010_robots'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Robot',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=80, verbose_name='name')),
                ('trigger', models.CharField(choices=[('entered', 'The deal enters the stage'), ('idle', 'Minutes in the stage without activity'), ('message_in', 'An inbound message'), ('sale', 'A sale'), ('registration', 'A registration')], default='entered', max_length=12, verbose_name='when')),
                ('idle_minutes', models.PositiveIntegerField(blank=True, null=True, verbose_name='minutes without activity')),
                ('conditions', models.JSONField(blank=True, default=dict)),
                ('actions', models.JSONField(default=list)),
                ('is_active', models.BooleanField(default=True, verbose_name='on')),
                ('position', models.PositiveIntegerField(default=0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('modified_at', models.DateTimeField(auto_now=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('stage', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='robots', to='deals.stage', verbose_name='stage')),
            ],
            options={
                'verbose_name': 'robot',
                'verbose_name_plural': 'robots',
                'ordering': ['position', 'pk'],
                'permissions': [('configure_robots', 'Can configure robots')],
            },
        ),
        migrations.CreateModel(
            name='Run',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('entry', models.DateTimeField()),
                ('state', models.CharField(choices=[('waiting', 'Waiting'), ('queued', 'Queued'), ('running', 'Running'), ('done', 'Fired'), ('skipped', 'Skipped'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('suspended', 'Suspended'), ('loop', 'Stopped: loop')], max_length=10)),
                ('depth', models.PositiveSmallIntegerField(default=0)),
                ('due_at', models.DateTimeField(blank=True, null=True)),
                ('claimed_at', models.DateTimeField(blank=True, null=True)),
                ('step', models.PositiveSmallIntegerField(default=0)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('detail', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('deal', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='robot_runs', to='deals.deal')),
                ('robot', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='runs', to='robots.robot')),
            ],
        ),
        migrations.CreateModel(
            name='Suspension',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('deal', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='deals.deal')),
                ('robot', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='suspensions', to='robots.robot')),
            ],
        ),
        migrations.AddIndex(
            model_name='robot',
            index=models.Index(condition=models.Q(('is_active', True)), fields=['stage', 'trigger'], name='robot_stage_idx'),
        ),
        migrations.AddConstraint(
            model_name='robot',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('trigger', 'idle'), _negated=True), ('idle_minutes__gte', 1), _connector='OR'), name='robot_idle_minutes'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(condition=models.Q(('state', 'waiting')), fields=['due_at'], name='run_due_idx'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(condition=models.Q(('state', 'queued')), fields=['id'], name='run_queued_idx'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(condition=models.Q(('state', 'running')), fields=['claimed_at'], name='run_running_idx'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['deal', 'state'], name='run_deal_idx'),
        ),
        migrations.AddIndex(
            model_name='run',
            index=models.Index(fields=['robot', '-id'], name='run_log_idx'),
        ),
        migrations.AddConstraint(
            model_name='run',
            constraint=models.UniqueConstraint(fields=('robot', 'deal', 'entry'), name='run_once_per_entry'),
        ),
        migrations.AddConstraint(
            model_name='suspension',
            constraint=models.UniqueConstraint(fields=('robot', 'deal'), name='suspension_once'),
        ),
    ]
