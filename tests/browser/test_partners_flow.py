"""Registration links and postbacks as their users see them (issue 17, point 8): the manager makes
the deal's link on the card and copies it; the client opens it and lands on the partner's page (a
server of our own on 127.0.0.1) with the click id; the admin sends "registered" and "purchase" from
the partner's test console; the manager's card shows the registration date, the Player ID and the
sale, and the bell lights up without a reload."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import formats, translation
from playwright.sync_api import expect

from partners.models import Click, Conversion, Partner
from tests.factories import ClientFactory, DealFactory, UserFactory, role

from .conftest import shot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def partner_site():
    """The partner's registration page: records the query strings it was opened with."""
    opened = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            opened.append(self.path)
            page = b"<!doctype html><title>Partner</title><h1>Partner registration</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url, server.opened = f"http://127.0.0.1:{server.server_address[1]}", opened
    yield server
    server.shutdown()
    server.server_close()


def test_link_click_console_postbacks_and_the_card_and_bell(new_page, live_server, partner_site, boss, stages):
    mila = UserFactory(username="mila", first_name="Mila", last_name="Orlova", language="en", role=role("Manager"))
    partner = Partner.objects.create(name="Keitaro", slug="keitaro", currency="USD",
                                     url_template=partner_site.url + "/reg?click={click_id}&sub1={deal_id}")
    client = ClientFactory(name="Анна Петрова", responsible=mila, external_id="")
    deal = DealFactory(stage=stages[0], responsible=mila, client=client)

    page = new_page(mila)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=page.base)
    page.goto(page.base + reverse("clients:detail", args=[client.pk]))
    block = page.locator("#registration-links")
    block.get_by_role("button", name="Create link").click()
    field = block.get_by_role("textbox", name="Registration link to Keitaro")
    expect(field).to_be_visible()
    block.get_by_role("button", name="Copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == field.input_value() and "/go/" in copied
    expect(page.locator("#bell-count")).not_to_have_class("has-unread")
    registered = page.locator('#block-contact dd[data-field="registration_date"]')
    sales_count = page.locator(".indicator", has_text="Sales count").locator(".indicator-value")
    sales_sum = page.locator(".indicator", has_text="Sales sum").locator(".indicator-value")
    expect(registered).to_have_text("—")
    expect(sales_count).to_have_text("0")
    expect(sales_sum).to_have_text("0")

    visitor = new_page()
    visitor.goto(copied)
    expect(visitor.get_by_role("heading", name="Partner registration")).to_be_visible()
    click = Click.objects.get()
    assert parse_qs(urlsplit(partner_site.opened[0]).query) == {"click": [click.key], "sub1": [str(deal.pk)]}

    admin = new_page(boss)
    admin.goto(admin.base + reverse("partners:edit", args=[partner.pk]))
    console = admin.locator("#console")
    console.get_by_label("Click", exact=True).select_option(index=1)
    console.get_by_label("Event").select_option(label="Registered")
    console.get_by_label("Player id").fill("P-77")
    console.get_by_role("button", name="Send").click()
    expect(admin.locator(".console-answer")).to_contain_text("200")
    console = admin.locator("#console")
    console.get_by_label("Click", exact=True).select_option(index=1)
    console.get_by_label("Event").select_option(label="Purchase")
    console.get_by_label("Amount").fill("49.90")
    console.get_by_label("Transaction id").fill("T-1")
    console.get_by_role("button", name="Send").click()
    # the purchase's own answer (the registration's, also "Accepted", is on screen until it arrives)
    expect(admin.locator(".console-answer code.params")).to_contain_text("T-1")
    expect(admin.locator(".console-answer")).to_contain_text("Accepted")
    shot(admin, "partners-console")
    assert list(Conversion.objects.order_by("pk").values_list("event", flat=True)) == ["registered", "purchase"]

    # the manager's bell lights up on its own (it polls); the card, reloaded, has it all
    expect(page.locator("#bell-count.has-unread")).to_be_visible(timeout=15_000)
    page.reload()
    deal.refresh_from_db()
    client.refresh_from_db()
    assert deal.registration_date is not None and client.external_id == "P-77" and deal.sales_count == 1
    with translation.override("en"):  # Mila reads English
        registered_on = formats.date_format(client.registration_date, "SHORT_DATE_FORMAT")
    expect(registered).to_have_text(registered_on)  # the card's registration date, set by the postback
    expect(sales_count).to_have_text("1")
    expect(sales_sum).to_have_text("50")  # 49.90, in whole units as the indicators show sums
    expect(page.get_by_text("P-77").first).to_be_visible()
    expect(page.locator("#registration-links")).to_contain_text("49.90 USD")
    expect(page.locator("#registration-links")).to_contain_text("1 click")
    shot(page, "partners-card")
