import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clients', '0014_drop_unused_indexes'),
        ('crm', '0012_messenger'),
        ('deals', '0010_robots'),
    ]

    operations = [
        migrations.AlterField(
            model_name='activity',
            name='kind',
            field=models.CharField(choices=[('created', 'Created'), ('change', 'Change'), ('comment', 'Comment'), ('note', 'Note'), ('sale', 'Sale'), ('deal', 'Deal'), ('stage', 'Stage move'), ('deleted', 'Deleted'), ('restored', 'Restored'), ('task', 'Task'), ('message', 'Message'), ('assigned', 'Assignment'), ('ignore', 'Ignore list'), ('robot', 'Robot')], max_length=10),
        ),
        migrations.AlterField(
            model_name='notification',
            name='kind',
            field=models.CharField(choices=[('mention', 'Mention'), ('assigned', 'Made responsible'), ('reminder', 'Reminder'), ('job', 'Job finished'), ('shift', 'Shift'), ('message', 'Message'), ('robot', 'Robot')], max_length=10),
        ),
        migrations.CreateModel(
            name='Event',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('kind', models.CharField(choices=[('stage', 'Entered a stage'), ('message_in', 'Inbound message'), ('message_out', 'Outbound message'), ('comment', 'Comment'), ('sale', 'Sale'), ('registration', 'Registration')], max_length=12)),
                ('stage_id', models.IntegerField(null=True)),
                ('depth', models.PositiveSmallIntegerField(default=0)),
                ('at', models.DateTimeField()),
                ('processed_at', models.DateTimeField(null=True)),
                ('client', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='clients.client')),
                ('deal', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='deals.deal')),
            ],
            options={
                'indexes': [models.Index(condition=models.Q(('processed_at__isnull', True)), fields=['id'], name='event_new_idx'), models.Index(condition=models.Q(('processed_at__isnull', True)), fields=['client'], name='event_new_client_idx'), models.Index(condition=models.Q(('processed_at__isnull', False)), fields=['processed_at'], name='event_done_idx')],
            },
        ),
    ]
