import pytest

from .factories import TeamFactory, UserFactory, role


@pytest.fixture
def team(db):
    return TeamFactory()


@pytest.fixture
def admin(db, team):
    return UserFactory(username="boss", role=role("Admin"), team=team)


@pytest.fixture
def manager(db, team):
    return UserFactory(username="mary", role=role("Manager"), team=team)


@pytest.fixture
def other_manager(db):
    return UserFactory(username="otto", role=role("Manager"))


@pytest.fixture
def nobody(db):
    """A signed-in user with no role: no permissions at all."""
    return UserFactory(username="nobody", role=None)


# admin_client and manager_client are the same test client signed in as someone: use one per test.
@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


HX = {"HX-Request": "true"}
