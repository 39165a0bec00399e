import factory
from django.contrib.auth import get_user_model

from clients.models import Client, CustomField, Tag
from clients.phones import phone_digits
from crm.models import Role, Team
from deals.models import Deal, Funnel, Line, Stage


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    language = "en"
    password = factory.PostGenerationMethodCall("set_password", "pass-12345")

    @factory.post_generation
    def sync_groups(self, create, extracted, **kwargs):
        if create:
            self.save()
            self.groups.set([self.role.group] if self.role else [])


def role(name: str) -> Role:
    return Role.objects.select_related("group").get(group__name=name)


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"tag{n}")
    color = "blue"


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Client {n}")
    phone = factory.Sequence(lambda n: f"+7916{n:07d}")
    phone_digits = factory.LazyAttribute(lambda c: phone_digits([c.phone]))
    email = factory.Sequence(lambda n: f"client{n}@example.com")

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.set(extracted)


class CustomFieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomField

    label = factory.Sequence(lambda n: f"Field {n}")
    kind = CustomField.Kind.TEXT
    position = factory.Sequence(lambda n: n)


class FunnelFactory(factory.django.DjangoModelFactory):
    """A funnel with one line and three stages; opened to nobody unless granted."""

    class Meta:
        model = Funnel
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Funnel {n}")
    position = factory.Sequence(lambda n: n + 10)

    @factory.post_generation
    def stages(self, create, extracted, **kwargs):
        if not create:
            return
        line = Line.objects.create(funnel=self, name="Line A", position=1)
        for index, name in enumerate(extracted or ["New", "Talking", "Won"], 1):
            Stage.objects.create(line=line, name=name, position=index, color="blue")


class DealFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deal
        skip_postgeneration_save = True

    client = factory.SubFactory(ClientFactory)
    stage = factory.LazyFunction(lambda: Stage.objects.filter(line__funnel__name="Sales").order_by("line__position", "position").first())
    name = factory.Sequence(lambda n: f"Deal {n}")
    budget = 1000
    position = factory.Sequence(lambda n: float(n))

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.set(extracted)
