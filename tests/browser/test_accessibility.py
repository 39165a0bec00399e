"""axe-core (the copy shipped in axe-playwright-python) finds no serious or critical violation."""

import pytest

from deals.models import Deal, Stage
from tests.factories import ClientFactory, UserFactory, role

pytestmark = pytest.mark.django_db(transaction=True)


def violations(page):
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"] if v["impact"] in ("serious", "critical")
    ]


def test_main_pages_have_no_serious_violations(new_page):
    boss = UserFactory(username="boss", language="en", role=role("Admin"))
    client = ClientFactory(name="Доступный", responsible=boss)
    stage = Stage.objects.filter(line__funnel__name="Sales").first()
    deal = Deal.objects.create(client=client, stage=stage, name="Сделка", responsible=boss, position=1)
    from messenger.channels import Incoming
    from messenger.models import Channel
    from messenger.receive import receive

    chat = Channel.objects.create(kind=Channel.Kind.CONSOLE, name="Site chat")
    said = receive(chat, Incoming(external_id="1", chat_id="guest-1", text="Hello!", name="Guest", phone="+79161234567"))
    from robots.models import Robot

    robot = Robot.objects.create(stage=stage, name="Greeting", actions=[{"kind": "message", "text": "Hello, {name}!"}])
    from partners import links, postbacks
    from partners.models import Partner

    partner = Partner.objects.create(name="Network", slug="net", url_template="https://p.example/?c={click_id}")
    links.link_create(actor=boss, deal=deal, partner=partner)
    postbacks.receive("net", method="GET", params={"token": "wrong"}, query="", body="", headers={}, ip="127.0.0.1")
    page = new_page()
    page.goto(page.base + "/login/")
    found = {"login": violations(page)}
    from .conftest import sign_in

    sign_in(page, "boss")
    for name, path in [("clients", "/clients/"), ("card", f"/clients/{client.pk}/"), ("board", f"/deals/{stage.line.funnel_id}/"),
                       ("tasks", "/tasks/?view=all"), ("import", "/clients/import/"), ("settings", f"/deals/settings/{stage.line.funnel_id}/"),
                       ("roles", "/settings/roles/1/"), ("shifts", "/deals/shifts/"), ("shift-log", "/deals/shifts/log/"),
                       ("inbox", f"/messenger/?f=all&c={said.conversation_id}"), ("ignore", "/messenger/ignore/"),
                       ("channels", "/messenger/channels/"), ("channel", f"/messenger/channels/{chat.pk}/"),
                       ("robots", f"/robots/{stage.line.funnel_id}/"), ("robot", f"/robots/{stage.line.funnel_id}/{robot.pk}/"),
                       ("robot-log", f"/robots/{stage.line.funnel_id}/{robot.pk}/test/?deal={deal.pk}"),
                       ("partners", "/settings/partners/"), ("partner", f"/settings/partners/{partner.pk}/"),
                       ("postbacks", "/settings/partners/postbacks/"),
                       ("lead-steps", "/settings/fields/steps/"), ("today-actions", "/clients/actions/today/"),
                       ("convert", f"/clients/{client.pk}/convert/"), ("link", f"/clients/{client.pk}/link/?q=Дос")]:
        page.goto(page.base + path)
        page.wait_for_load_state("networkidle")
        found[name] = violations(page)
    assert not any(found.values()), found
