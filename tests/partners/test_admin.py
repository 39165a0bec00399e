"""The partners' admin pages and the card's registration links (issue 17, points 1, 2, 5): what an
admin sees, what a manager is refused (403, database unchanged), the form's validation, the secret
kept encrypted and never shown, replay after fixing the mapping, the test console, the card's block,
and flat query counts."""

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.urls import reverse

from deals.models import Sale
from partners import links, postbacks
from partners.models import Click, Conversion, Link, Partner, Postback
from tests.conftest import HX
from tests.factories import ClientFactory, DealFactory

pytestmark = pytest.mark.django_db

GOOD = {"name": "Keitaro", "slug": "keitaro", "url_template": "https://partner.example/reg?click={click_id}&sub1={deal_id}",
        "signing_secret": "", "ip_allowlist": "", "status_map": "", "param_click": "click_id", "param_status": "status",
        "param_amount": "payout", "param_transaction": "tid", "param_player": "player_id", "currency": "usd",
        "is_active": "on"}


@pytest.fixture
def partner(db):
    return Partner.objects.create(name="Keitaro", slug="keitaro", url_template="https://partner.example/reg?click={click_id}",
                                  params={"click": "subid"}, currency="USD")


@pytest.fixture
def deal(manager):
    return DealFactory(responsible=manager, client=ClientFactory(name="Анна Петрова", responsible=manager), name="Анна: депозит")


@pytest.fixture
def click(partner, deal, manager):
    link = links.link_create(actor=manager, deal=deal, partner=partner)
    where = links.click(link.token, user_agent="Mozilla/5.0", ip="203.0.113.7")
    return Click.objects.get(key=parse_qs(urlsplit(where).query)["click"][0])


def state():
    """What a refused request must leave as it was."""
    return (list(Partner.objects.order_by("pk").values_list("pk", "name", "slug", "token", "secrets", "is_active", "statuses")),
            list(Link.objects.values_list("pk", "token")), list(Postback.objects.values_list("pk", "verdict")),
            list(Conversion.objects.values_list("pk", flat=True)), list(Sale.objects.values_list("pk", flat=True)))


# Pages -------------------------------------------------------------------------------------


def test_the_list_shows_partners_with_their_postback_url_and_counts(admin_client, partner, click):
    postbacks.receive(partner.slug, method="GET", params={"token": partner.token, "subid": click.key, "status": "lead"},
                      query="", body="", headers={}, ip="127.0.0.1")
    postbacks.receive(partner.slug, method="GET", params={"token": "wrong"}, query="", body="", headers={}, ip="127.0.0.1")
    page = admin_client.get(reverse("partners:list")).content.decode()
    assert "Keitaro" in page and f"http://testserver/postback/keitaro/?token={partner.token}" in page
    assert 'data-copy="postback-url-' in page and reverse("partners:log") in page
    assert f'<td class="num"><a href="/settings/partners/postbacks/?partner={partner.pk}&amp;verdict=accepted">1</a></td>' in page
    assert "<strong>1</strong>" in page  # one refused


def test_the_settings_menu_names_partners_for_admins_only(admin_client, manager, client):
    assert reverse("partners:list") in admin_client.get(reverse("clients:list")).content.decode()
    client.force_login(manager)
    assert reverse("partners:list") not in client.get(reverse("clients:list")).content.decode()


def test_create_a_partner(admin_client):
    response = admin_client.post(reverse("partners:create"), {**GOOD, "status_map": "Approved = purchase\nhold=registered",
                                                              "param_click": "subid", "ip_allowlist": "203.0.113.0/24\n2001:db8::1"})
    partner = Partner.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("partners:edit", args=[partner.pk])
    assert partner.statuses == {"approved": "purchase", "hold": "registered"}
    assert partner.params == {"click": "subid"} and partner.currency == "USD"
    assert partner.ip_allowlist == "203.0.113.0/24\n2001:db8::1" and len(partner.token) >= 24
    page = admin_client.get(response["Location"]).content.decode()
    assert "approved = purchase" in page and partner.token in page and "New token" in page
    assert "Test console" in page and "not set" in page


@pytest.mark.parametrize("change,field,message", [
    ({"url_template": "ftp://partner.example/{click_id}"}, "url_template", "must start with http:// or https://"),
    ({"url_template": "javascript:alert(1)//{click_id}"}, "url_template", "Enter a valid URL"),
    ({"url_template": "https://partner.example/reg?sub=1"}, "url_template", "must contain {click_id}"),
    ({"ip_allowlist": "203.0.113.0/24\n300.1.1.1"}, "ip_allowlist", "Not an IP address or network: 300.1.1.1"),
    ({"status_map": "approved purchase"}, "status_map", "Line 1, “approved purchase”"),
    ({"status_map": "ok = registered\napproved = paid"}, "status_map", "Line 2, “approved = paid”"),
    ({"currency": "RU1"}, "currency", "Three latin letters"),
    ({"param_click": "sub id"}, "param_click", "Letters, digits"),
])
def test_the_form_refuses_bad_input_and_saves_nothing(admin_client, change, field, message):
    response = admin_client.post(reverse("partners:create"), {**GOOD, **change})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["form"].errors[field]
    assert not Partner.objects.exists()


def test_the_signing_secret_is_stored_encrypted_and_never_shown(admin_client, partner):
    url = reverse("partners:edit", args=[partner.pk])
    admin_client.post(url, {**GOOD, "signing_secret": "whsec-TOP-SECRET-42"})
    partner.refresh_from_db()
    assert postbacks.signing_secret(partner) == "whsec-TOP-SECRET-42"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM partners_partner WHERE id = %s", [partner.pk])
        raw = cursor.fetchone()[0]
    assert raw and "TOP-SECRET" not in raw
    page = admin_client.get(url).content.decode()
    assert "TOP-SECRET" not in page and ">set<" in page and "Remove the signing secret" in page
    admin_client.post(url, GOOD)  # an empty box keeps it
    partner.refresh_from_db()
    assert postbacks.signing_secret(partner) == "whsec-TOP-SECRET-42"
    admin_client.post(url, {**GOOD, "remove_secret": "on"})
    partner.refresh_from_db()
    assert partner.secrets == "" and postbacks.signing_secret(partner) == ""


def test_a_new_token_replaces_the_old(admin_client, partner):
    old = partner.token
    admin_client.post(reverse("partners:token", args=[partner.pk]))
    partner.refresh_from_db()
    assert partner.token != old and len(partner.token) >= 24


def test_switch_a_partner_off(admin_client, partner):
    admin_client.post(reverse("partners:toggle", args=[partner.pk]), {"on": "0"})
    partner.refresh_from_db()
    assert not partner.is_active


def test_unknown_ids_are_404(admin_client):
    for name in ("partners:edit", "partners:token", "partners:toggle", "partners:console", "partners:replay"):
        method = admin_client.get if name == "partners:edit" else admin_client.post
        assert method(reverse(name, args=[987654])).status_code == 404, name


def _every_admin_url(partner, postback):
    return [("get", reverse("partners:list")), ("get", reverse("partners:create")), ("post", reverse("partners:create")),
            ("get", reverse("partners:edit", args=[partner.pk])), ("post", reverse("partners:edit", args=[partner.pk])),
            ("post", reverse("partners:token", args=[partner.pk])), ("post", reverse("partners:toggle", args=[partner.pk])),
            ("post", reverse("partners:console", args=[partner.pk])), ("get", reverse("partners:log")),
            ("post", reverse("partners:replay", args=[postback.pk]))]


def test_a_manager_is_refused_every_admin_page_and_write(manager_client, partner, click):
    postback = postbacks.receive(partner.slug, method="GET", params={"token": partner.token, "subid": click.key, "status": "odd"},
                                 query="", body="", headers={}, ip="127.0.0.1").postback
    before = state()
    for method, url in _every_admin_url(partner, postback):
        data = {**GOOD, "name": "Hijack", "on": "0", "click_id": click.key, "event": "purchase", "amount": "5"}
        response = getattr(manager_client, method)(url, data) if method == "post" else manager_client.get(url)
        assert response.status_code == 403, url
    assert state() == before


# The log and replay --------------------------------------------------------------------------


def test_the_log_shows_rows_filters_and_pages(admin_client, partner, click, settings):
    from partners import selectors

    postbacks.receive(partner.slug, method="GET", params={"token": partner.token, "subid": click.key, "status": "lead",
                                                          "key": "p4ssw0rd-leak"}, query="", body="", headers={}, ip="203.0.113.9")
    postbacks.receive(partner.slug, method="GET", params={"token": "nope"}, query="", body="", headers={}, ip="203.0.113.9")
    page = admin_client.get(reverse("partners:log")).content.decode()
    assert "Accepted" in page and "Wrong token" in page and "203.0.113.9" in page
    assert "key=***" in page and "token=***" in page and "p4ssw0rd-leak" not in page
    assert click.link.deal.get_absolute_url() in page and "Анна: депозит" in page
    assert ">Replay<" not in page  # neither the accepted one nor a stranger's (wrong token)
    postbacks.receive(partner.slug, method="GET", params={"token": partner.token, "subid": click.key, "status": "odd"},
                      query="", body="", headers={}, ip="203.0.113.9")
    assert admin_client.get(reverse("partners:log")).content.decode().count(">Replay<") == 1  # the unknown status
    only = admin_client.get(reverse("partners:log"), {"verdict": "bad_token"}).content.decode()
    assert "Wrong token" in only and "verdict-accepted" not in only
    Postback.objects.bulk_create(Postback(partner=partner, method="GET", verdict="invalid") for _ in range(selectors.LOG_PAGE + 5))
    first = admin_client.get(reverse("partners:log"))
    assert len(first.context["rows"]) == selectors.LOG_PAGE and first.context["before"]
    second = admin_client.get(reverse("partners:log"), {"before": first.context["before"]})
    assert len(second.context["rows"]) == 8 and second.context["before"] is None  # 55 + 3 in all
    assert {r.pk for r in first.context["rows"]}.isdisjoint({r.pk for r in second.context["rows"]})


def test_replay_after_fixing_the_mapping_is_accepted(admin_client, partner, click, deal):
    refused = postbacks.receive(partner.slug, method="GET", params={"token": partner.token, "subid": click.key, "status": "approved"},
                                query="", body="", headers={}, ip="127.0.0.1")
    assert refused.verdict == Postback.Verdict.UNKNOWN_STATUS
    url = reverse("partners:replay", args=[refused.postback.pk])
    response = admin_client.post(url, {"back": "?verdict=unknown_status"}, follow=True)
    assert "Unknown status" in response.content.decode() and not Conversion.objects.exists()
    admin_client.post(reverse("partners:edit", args=[partner.pk]), {**GOOD, "param_click": "subid", "status_map": "approved = registered"})
    response = admin_client.post(url, follow=True)
    assert "Answer 200: Accepted" in response.content.decode()
    conversion = Conversion.objects.get()
    assert conversion.event == "registered" and conversion.deal == deal
    replayed = Postback.objects.filter(replayed_from=refused.postback).order_by("-pk").first()
    assert replayed.verdict == Postback.Verdict.ACCEPTED


# The test console ----------------------------------------------------------------------------


def test_the_console_lists_recent_clicks_and_sends_a_purchase(admin_client, partner, click, deal):
    page = admin_client.get(reverse("partners:edit", args=[partner.pk])).content.decode()
    assert f'value="{click.key}"' in page and f"#{deal.pk} Анна: депозит" in page
    url = reverse("partners:console", args=[partner.pk])
    response = admin_client.post(url, {"click": click.key, "event": "registered", "player": "P-77"}, headers=HX)
    assert "Answer" in response.content.decode() and "Accepted" in response.content.decode()
    response = admin_client.post(url, {"click": click.key, "event": "purchase", "amount": "49.90", "transaction": "T1",
                                       "player": "P-77"}, headers=HX)
    body = response.content.decode()
    assert "<strong>Answer: 200</strong>" in body and "Accepted" in body and "<html" not in body
    sale = Sale.objects.get()
    assert sale.deal == deal and sale.amount == Decimal("49.90") and sale.player_id == "P-77"
    logged = Postback.objects.order_by("-pk").first()
    assert logged.verdict == "accepted" and logged.ip == "127.0.0.1" and logged.method == "POST"
    assert logged.params["subid"] == click.key and logged.params["payout"] == "49.90"
    again = admin_client.post(url, {"click_id": click.key, "event": "purchase", "amount": "49.90", "transaction": "T1"}, headers=HX)
    assert "Duplicate" in again.content.decode() and Sale.objects.count() == 1


def test_the_console_signs_when_the_partner_has_a_secret(admin_client, partner, click):
    admin_client.post(reverse("partners:edit", args=[partner.pk]), {**GOOD, "param_click": "subid", "signing_secret": "s3cret"})
    response = admin_client.post(reverse("partners:console", args=[partner.pk]), {"click_id": click.key, "event": "registered"},
                                 headers=HX)
    assert "Accepted" in response.content.decode()
    assert Postback.objects.get().verdict == "accepted"


def test_the_console_goes_through_the_endpoint_and_passes_the_partners_address_allowlist(admin_client, client, partner, click):
    """A partner whose server calls from one network: an outside request from anywhere else (here
    127.0.0.1, with the right token, even claiming to be the console) is refused for its address;
    the admin's console, from 127.0.0.1 through the same endpoint view, is not."""
    Partner.objects.filter(pk=partner.pk).update(ip_allowlist="203.0.113.0/24")
    outside = client.post(reverse("partner-postback", args=[partner.slug]) + "?postback_console=1",
                          {"token": partner.token, "subid": click.key, "status": "lead", "postback_console": "1"},
                          headers={"Postback-Console": "1"})
    assert outside.status_code == 403 and outside.json()["result"] == "refused_ip"
    response = admin_client.post(reverse("partners:console", args=[partner.pk]), {"click": click.key, "event": "registered"},
                                 headers=HX)
    assert "<strong>Answer: 200</strong>" in response.content.decode() and "Accepted" in response.content.decode()
    logged = Postback.objects.order_by("-pk").first()
    assert (logged.verdict, logged.method, logged.ip, logged.params["subid"]) == ("accepted", "POST", "127.0.0.1", click.key)
    assert logged.body.startswith(f"subid={click.key}&status=")  # the form body the endpoint parsed


def test_the_console_says_what_is_missing(admin_client, partner, click):
    response = admin_client.post(reverse("partners:console", args=[partner.pk]), {"event": "purchase"}, headers=HX)
    body = response.content.decode()
    assert "Choose a click or type a click id." in body and not Postback.objects.exists()
    response = admin_client.post(reverse("partners:console", args=[partner.pk]), {"click": click.key, "event": "purchase"}, headers=HX)
    assert "A purchase needs an amount." in response.content.decode() and not Postback.objects.exists()


# The card ------------------------------------------------------------------------------------


def test_the_card_offers_a_link_and_then_shows_it_with_a_copy_button(client, manager, partner, deal):
    client.force_login(manager)
    Partner.objects.create(name="Switched off", slug="off", url_template="https://x.example/{click_id}", is_active=False)
    card = client.get(deal.client.get_absolute_url()).content.decode()
    assert "Registration link" in card and "Create link" in card and "Switched off" not in card
    url = reverse("partners:link-create", args=[deal.pk])
    block = client.post(url, {"partner": partner.pk}, headers=HX).content.decode()
    client.post(url, {"partner": partner.pk}, headers=HX)
    link = Link.objects.get()  # twice asked, one link
    assert link.deal == deal and link.created_by == manager
    assert f'value="http://testserver/go/{link.token}"' in block and 'data-copy="reg-link-' in block and "0 clicks" in block
    assert "Create link" not in block
    card = client.get(deal.client.get_absolute_url()).content.decode()
    assert f"/go/{link.token}" in card and "Copy" in card


def test_the_card_lists_the_deals_conversions(client, manager, partner, click, deal):
    postbacks.receive(partner.slug, method="GET", params={"token": partner.token, "subid": click.key, "status": "sale",
                                                          "payout": "100"}, query="", body="", headers={}, ip="127.0.0.1")
    client.force_login(manager)
    card = client.get(deal.client.get_absolute_url()).content.decode()
    assert "Partner events" in card and "Purchase" in card and "100.00 USD" in card and "1 click" in card


def test_no_link_for_a_deal_one_may_not_see(client, other_manager, partner, deal):
    client.force_login(other_manager)
    response = client.post(reverse("partners:link-create", args=[deal.pk]), {"partner": partner.pk})
    assert response.status_code == 404 and not Link.objects.exists()


def test_no_link_for_an_inactive_partner(client, manager, deal):
    off = Partner.objects.create(name="Off", slug="off", url_template="https://x.example/{click_id}", is_active=False)
    client.force_login(manager)
    assert client.post(reverse("partners:link-create", args=[deal.pk]), {"partner": off.pk}).status_code == 404
    assert not Link.objects.exists()


# Query counts --------------------------------------------------------------------------------


def _partners(n):
    made = [Partner.objects.create(name=f"P{i}", slug=f"p{i}", url_template="https://p.example/?c={click_id}") for i in range(n)]
    for p in made:
        Postback.objects.bulk_create([Postback(partner=p, method="GET", verdict="accepted"),
                                      Postback(partner=p, method="GET", verdict="bad_token")])
    return made


@pytest.mark.parametrize("n", [1, 15])
def test_list_query_count(n, admin_client, django_assert_num_queries):
    _partners(n)
    with django_assert_num_queries(2):  # user with perms, partners with counts
        admin_client.get(reverse("partners:list"))


@pytest.mark.parametrize("n", [1, 15])
def test_form_and_console_query_count(n, admin_client, manager, django_assert_num_queries):
    partner = _partners(1)[0]
    for _ in range(n):
        link = links.link_create(actor=manager, deal=DealFactory(responsible=manager), partner=partner)
        links.click(link.token, user_agent="", ip="")
    url = reverse("partners:edit", args=[partner.pk])
    with django_assert_num_queries(3):  # user with perms, partner, recent clicks with deals
        admin_client.get(url)
    with django_assert_num_queries(3):  # user with perms, partner, recent clicks (the form refused: no click chosen)
        admin_client.post(reverse("partners:console", args=[partner.pk]), {"event": "registered"}, headers=HX)
    key = Click.objects.order_by("pk").first().key
    # user with perms, partner, recent clicks; then postbacks.receive's own 11: its partner, the click with its
    # conversion so far, a savepoint, the link locked with what the effects need of deal, client and
    # responsible, the conversion looked up again, the "purchase already?" check, the registration (one
    # statement), the conversion, the notification, the log, the savepoint released
    with django_assert_num_queries(14):
        response = admin_client.post(reverse("partners:console", args=[partner.pk]), {"click_id": key, "event": "registered"},
                                     headers=HX)
    assert "Accepted" in response.content.decode()


@pytest.mark.parametrize("n", [1, 30])
def test_log_query_count(n, admin_client, django_assert_num_queries):
    for p in _partners(n):
        Postback.objects.create(partner=p, method="GET", verdict="unknown_status", params={"a": "b"})
    with django_assert_num_queries(3):  # user with perms, the page of rows with partners and deals, partners for the filter
        admin_client.get(reverse("partners:log"))


@pytest.mark.parametrize("n", [1, 8])
def test_card_block_query_count(n, client, manager, deal, django_assert_num_queries):
    for i in range(n):
        p = Partner.objects.create(name=f"P{i}", slug=f"p{i}", url_template="https://p.example/?c={click_id}")
        link = links.link_create(actor=manager, deal=deal, partner=p)
        links.click(link.token, user_agent="", ip="")
    client.force_login(manager)
    extra = Partner.objects.create(name="New", slug="new", url_template="https://p.example/?c={click_id}")
    client.get(deal.client.get_absolute_url())  # warms the content types and granted funnels caches, as any earlier page does
    # user with perms, a content type (the funnel grant), deal, partner; link_create: existing?, insert and
    # two savepoint pairs; then the block: active partners, the deal's links, conversions
    with django_assert_num_queries(12):
        client.post(reverse("partners:link-create", args=[deal.pk]), {"partner": extra.pk}, headers=HX)


@pytest.mark.parametrize("n", [1, 8])
def test_card_query_count_with_links(n, client, manager, deal, django_assert_num_queries):
    for i in range(n):
        p = Partner.objects.create(name=f"P{i}", slug=f"p{i}", url_template="https://p.example/?c={click_id}")
        link = links.link_create(actor=manager, deal=deal, partner=p)
        where = links.click(link.token, user_agent="", ip="")
        postbacks.receive(p.slug, method="GET", params={"token": p.token, "click_id": parse_qs(urlsplit(where).query)["c"][0],
                                                        "status": "sale", "payout": "5"}, query="", body="", headers={}, ip="")
    assert Conversion.objects.count() == n
    client.force_login(manager)
    client.get(deal.client.get_absolute_url())
    with django_assert_num_queries(21):  # the card's 19 (tests/clients) and the block's 3, whatever the links and events
        page = client.get(deal.client.get_absolute_url()).content.decode()
    assert page.count('data-copy="reg-link-') == n
