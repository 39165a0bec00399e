import django.db.models.deletion
import partners.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('deals', '0011_sale_reversed_at'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Partner',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=80, verbose_name='name')),
                ('slug', models.SlugField(help_text='The postback address is /postback/<this name>/.', max_length=40, unique=True, verbose_name='address name')),
                ('url_template', models.URLField(help_text='Where a click goes: {click_id} and {deal_id} are filled in.', max_length=500, verbose_name='target URL')),
                ('token', models.CharField(default=partners.models.new_token, max_length=64, unique=True, verbose_name='postback token')),
                ('secrets', models.TextField(blank=True, editable=False)),
                ('ip_allowlist', models.TextField(blank=True, help_text='One address or network per line (203.0.113.0/24). Empty: any.', verbose_name='allowed IP addresses')),
                ('statuses', models.JSONField(blank=True, default=dict, verbose_name='status values')),
                ('params', models.JSONField(blank=True, default=dict, verbose_name='parameter names')),
                ('currency', models.CharField(default='RUB', max_length=3, verbose_name='currency')),
                ('is_active', models.BooleanField(default=True, verbose_name='active')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'verbose_name': 'partner',
                'verbose_name_plural': 'partners',
                'ordering': ['name', 'pk'],
                'permissions': [('configure_partners', 'Can configure partners')],
            },
        ),
        migrations.CreateModel(
            name='Link',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('token', models.CharField(default=partners.models.new_link_token, max_length=32, unique=True)),
                ('clicks', models.PositiveIntegerField(default=0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('deal', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='partner_links', to='deals.deal')),
                ('partner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='links', to='partners.partner')),
            ],
        ),
        migrations.CreateModel(
            name='Click',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(default=partners.models.new_click_key, max_length=32, unique=True)),
                ('at', models.DateTimeField(auto_now_add=True)),
                ('user_agent', models.CharField(blank=True, max_length=300)),
                ('ip_hash', models.CharField(blank=True, max_length=64)),
                ('link', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='click_rows', to='partners.link')),
            ],
        ),
        migrations.CreateModel(
            name='Conversion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(choices=[('registered', 'Registered'), ('purchase', 'Purchase'), ('rejected', 'Rejected')], max_length=12)),
                ('transaction', models.CharField(blank=True, max_length=100)),
                ('amount', models.DecimalField(blank=True, decimal_places=2, max_digits=14, null=True)),
                ('currency', models.CharField(blank=True, max_length=3)),
                ('player_id', models.CharField(blank=True, max_length=64)),
                ('reversed_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('click', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='conversions', to='partners.click')),
                ('deal', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='conversions', to='deals.deal')),
                ('sale', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='deals.sale')),
                ('partner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='conversions', to='partners.partner')),
            ],
        ),
        migrations.CreateModel(
            name='Postback',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('received_at', models.DateTimeField(auto_now_add=True)),
                ('method', models.CharField(max_length=6)),
                ('params', models.JSONField(default=dict)),
                ('body', models.TextField(blank=True)),
                ('ip', models.GenericIPAddressField(blank=True, null=True)),
                ('verdict', models.CharField(choices=[('accepted', 'Accepted'), ('duplicate', 'Duplicate'), ('ignored', 'Ignored: no downgrade'), ('bad_token', 'Wrong token'), ('bad_signature', 'Bad signature'), ('expired', 'Outside the time window'), ('refused_ip', 'Address not allowed'), ('unknown_click', 'Unknown click'), ('unknown_status', 'Unknown status'), ('invalid', 'Invalid parameters'), ('rate_limited', 'Too many requests')], max_length=14)),
                ('detail', models.CharField(blank=True, max_length=300)),
                ('conversion', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='partners.conversion')),
                ('partner', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='postbacks', to='partners.partner')),
                ('replayed_from', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='partners.postback')),
            ],
        ),
        migrations.AddConstraint(
            model_name='link',
            constraint=models.UniqueConstraint(fields=('deal', 'partner'), name='link_once_per_partner'),
        ),
        migrations.AddIndex(
            model_name='conversion',
            index=models.Index(fields=['deal', '-created_at'], name='conversion_deal_idx'),
        ),
        migrations.AddConstraint(
            model_name='conversion',
            constraint=models.UniqueConstraint(fields=('partner', 'click', 'event', 'transaction'), name='conversion_once'),
        ),
        migrations.AddIndex(
            model_name='postback',
            index=models.Index(fields=['partner', '-id'], name='postback_log_idx'),
        ),
        migrations.AddIndex(
            model_name='postback',
            index=models.Index(condition=models.Q(('verdict', 'accepted'), _negated=True), fields=['verdict', '-id'], name='postback_verdict_idx'),
        ),
    ]
