"""Realistic demo data: an admin, two managers, tags, custom fields and clients."""

import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from faker import Faker

from clients.models import Channel, Client, CustomField, Lifecycle, Priority, Tag
from clients.phones import phone_digits
from crm.models import Role, Team

DEMO_PASSWORD = "voronka-demo"
DEMO_USERS = [
    # username, first name, last name, email, role, language
    ("admin", "Анна", "Соколова", "admin@voronka.local", Role.ADMIN, "ru"),
    ("manager1", "Иван", "Петров", "ivan@voronka.local", Role.MANAGER, "ru"),
    ("manager2", "Emily", "Clark", "emily@voronka.local", Role.MANAGER, "en"),
]
TAGS = [("VIP", "purple"), ("Новый", "green"), ("Повторный", "blue"), ("Холодный", "grey"), ("Проблемный", "red"), ("Partner", "orange")]
COUNTRIES = ["RU", "RU", "RU", "KZ", "BY", "UZ", "AM", "GE", "TR", "AE", "DE", "GB", "US"]


def _short(name: str, limit: int = 30) -> str:
    return name if len(name) <= limit else name[:limit].rstrip()


@transaction.atomic
def load_demo(*, clients: int = 2000, seed: int = 7) -> list[tuple[str, str]]:
    """Create demo users and data once; return (username, password) pairs. Safe to run twice."""
    User = get_user_model()
    team, _ = Team.objects.get_or_create(name="Отдел продаж")
    users = []
    for username, first, last, email, role_name, language in DEMO_USERS:
        role = Role.objects.get(group__name=role_name)
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": email, "role": role, "language": language, "team": team},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
            user.groups.set([role.group])
        users.append(user)
    logins = [(u.username, DEMO_PASSWORD) for u in users]
    if Client.objects.exists():
        return logins

    rnd = random.Random(seed)
    tags = [Tag.objects.get_or_create(name=n, defaults={"color": c})[0] for n, c in TAGS]
    CustomField.objects.get_or_create(label="Источник лида", defaults={"kind": "select", "choices": ["Лендинг", "Партнёр", "Выставка"], "position": 1})
    CustomField.objects.get_or_create(label="Дата рождения", defaults={"kind": "date", "position": 2})
    source, birthday = CustomField.objects.order_by("position")[:2]
    fakers = [Faker("ru_RU"), Faker("en_US")]
    for f in fakers:
        f.seed_instance(seed)
    now = timezone.now()
    batch = []
    for i in range(clients):
        fake = fakers[0] if rnd.random() < 0.7 else fakers[1]
        russian = fake is fakers[0]
        phone = f"+79{rnd.randint(10, 99)}{rnd.randint(1000000, 9999999)}" if russian else f"+1{rnd.randint(201, 989)}555{rnd.randint(1000, 9999)}"
        created = now - timedelta(days=rnd.randint(0, 720), minutes=rnd.randint(0, 1440))
        custom = {}
        if rnd.random() < 0.5:
            custom[source.key] = rnd.choice(source.choices)
        if rnd.random() < 0.3:
            custom[birthday.key] = (now - timedelta(days=rnd.randint(7000, 20000))).date().isoformat()
        owner = rnd.choice(users)
        batch.append(
            Client(
                name=_short(f"{fake.last_name()} {fake.first_name()}"),
                responsible=owner,
                phone=phone,
                phone_digits=phone_digits([phone]),
                email=fake.email() if rnd.random() < 0.8 else "",
                country="RU" if russian and rnd.random() < 0.8 else rnd.choice(COUNTRIES),
                city=_short(fake.city(), 60),
                company=_short(fake.company(), 100) if rnd.random() < 0.4 else "",
                channel=rnd.choice(Channel.values),
                priority=rnd.choice(Priority.values),
                lifecycle=Lifecycle.CONVERTED if rnd.random() < 0.35 else Lifecycle.POTENTIAL,
                external_id=str(100000 + i) if rnd.random() < 0.4 else "",
                custom=custom,
                created_by=owner,
                modified_by=owner,
            )
        )
    created_clients = Client.objects.bulk_create(batch, batch_size=500)
    # auto_now fields take "now" on insert: spread them so the table looks lived-in.
    for client in created_clients:
        client.created_at = now - timedelta(minutes=rnd.randint(0, 720 * 24 * 60))
        client.modified_at = client.created_at + (now - client.created_at) * rnd.random() ** 3
    Client.objects.bulk_update(created_clients, ["created_at", "modified_at"], batch_size=500)
    through = Client.tags.through
    links = [
        through(client_id=c.pk, tag_id=t.pk)
        for c in created_clients
        for t in rnd.sample(tags, k=rnd.choice([0, 0, 1, 1, 2]))
    ]
    through.objects.bulk_create(links, batch_size=1000)
    _demo_deals(rnd, created_clients, now)
    return logins


def _demo_deals(rnd, clients, now):
    """About 700 open deals over the default funnel, some with sales (the board and the card)."""
    from decimal import Decimal

    from deals.models import Deal, Sale, Stage

    stages = list(Stage.objects.filter(line__funnel__name="Sales").order_by("line__position", "position"))
    if not stages:
        return
    deals, sales = [], []
    for index, client in enumerate(rnd.sample(clients, k=min(700, len(clients)))):
        stage = rnd.choice(stages)
        count = rnd.choice([0, 0, 0, 1, 1, 2, 3])
        amounts = [Decimal(rnd.randrange(500, 20000, 100)) for _ in range(count)]
        deals.append(Deal(
            client=client, stage=stage, name=f"{client.name.split()[0]} — {rnd.choice(['подписка', 'пакет', 'депозит', 'premium'])}"[:100],
            budget=Decimal(rnd.randrange(1000, 100000, 500)), responsible=client.responsible, channel=client.channel,
            sales_count=count, sales_sum=sum(amounts, Decimal(0)), position=float(index),
            last_sale_at=now - timedelta(days=rnd.randint(0, 60)) if count else None, created_by=client.responsible,
        ))
        sales.append(amounts)
    deals = Deal.objects.bulk_create(deals, batch_size=500)
    Sale.objects.bulk_create(
        [Sale(deal=deal, client_id=deal.client_id, player_id=deal.client.external_id or str(deal.client_id), amount=amount,
              created_by=deal.responsible) for deal, amounts in zip(deals, sales) for amount in amounts],
        batch_size=1000,
    )
    for deal in deals:
        if deal.sales_count:
            client = deal.client
            client.sales_count += deal.sales_count
            client.sales_sum += deal.sales_sum
            client.last_sale_at = max(filter(None, [client.last_sale_at, deal.last_sale_at]))
    Client.objects.bulk_update([d.client for d in deals if d.sales_count], ["sales_count", "sales_sum", "last_sale_at"], batch_size=500)
