import pytest

from deals.models import Funnel, Stage


@pytest.fixture
def sales_funnel(db):
    return Funnel.objects.get(name="Sales")


@pytest.fixture
def stages(sales_funnel):
    """The 1st line's stages of the default funnel, in board order."""
    return list(Stage.objects.filter(line__funnel=sales_funnel, line__position=1).order_by("position"))
