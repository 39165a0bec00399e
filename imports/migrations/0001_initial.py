"""The import moved out of clients/ into its own app. Its tables already exist (clients 0009):
this migration only takes them into this app's state; 0002 renames them."""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('clients', '0010_document_templates'),
        ('deals', '0003_postgres_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='ImportJob',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('file', models.FileField(upload_to='imports/')),
                        ('filename', models.CharField(max_length=255)),
                        ('sheet', models.CharField(blank=True, max_length=100)),
                        ('mapping', models.JSONField(blank=True, default=dict)),
                        ('duplicates', models.CharField(choices=[('skip', 'Skip the row'), ('update', 'Update the client'), ('create', 'Create a new client')], default='skip', max_length=10)),
                        ('status', models.CharField(choices=[('uploaded', 'Uploaded'), ('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed'), ('undone', 'Undone')], default='uploaded', max_length=10)),
                        ('total', models.PositiveIntegerField(default=0)),
                        ('processed', models.PositiveIntegerField(default=0)),
                        ('created', models.PositiveIntegerField(default=0)),
                        ('updated', models.PositiveIntegerField(default=0)),
                        ('skipped', models.PositiveIntegerField(default=0)),
                        ('failed', models.PositiveIntegerField(default=0)),
                        ('error', models.CharField(blank=True, max_length=300)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('deal_stage', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='deals.stage')),
                    ],
                    options={'db_table': 'clients_importjob'},
                ),
                migrations.CreateModel(
                    name='ImportMappingMemory',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('headers_key', models.CharField(max_length=64)),
                        ('mapping', models.JSONField(default=dict)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'clients_importmappingmemory',
                        'constraints': [models.UniqueConstraint(fields=('user', 'headers_key'), name='import_mapping_once')],
                    },
                ),
                migrations.CreateModel(
                    name='ImportRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('row', models.PositiveIntegerField()),
                        ('outcome', models.CharField(choices=[('created', 'Created'), ('updated', 'Updated'), ('skipped', 'Skipped'), ('failed', 'Failed')], max_length=10)),
                        ('reason', models.CharField(blank=True, max_length=500)),
                        ('previous', models.JSONField(blank=True, default=dict)),
                        ('client', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='clients.client')),
                        ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='records', to='imports.importjob')),
                    ],
                    options={
                        'db_table': 'clients_importrecord',
                        'constraints': [models.UniqueConstraint(fields=('job', 'row'), name='import_row_once')],
                    },
                ),
            ],
        ),
    ]
