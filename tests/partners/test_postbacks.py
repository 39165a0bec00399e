"""Registration links and partner postbacks (issue 17, points 2–6): a click recorded and sent only to
the partner's URL; postbacks authenticated (token, IP allowlist, signature within 5 minutes),
idempotent (replays and concurrent duplicates change nothing), following the state machine, with
their effects in one transaction; every request in the log; bad input a 4xx, never a 500."""

import threading
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Event, Notification
from deals.models import Sale
from messenger import secrets
from partners import links, postbacks
from partners.models import Click, Conversion, Partner, Postback
from tests.factories import ClientFactory, DealFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner(db):
    return Partner.objects.create(name="Keitaro", slug="keitaro", url_template="https://partner.example/reg?click={click_id}&sub1={deal_id}",
                                  params={"click": "subid", "amount": "payout", "transaction": "tid"}, currency="USD")


@pytest.fixture
def deal(manager):
    return DealFactory(responsible=manager, client=ClientFactory(name="Анна Петрова", external_id="", responsible=manager))


@pytest.fixture
def click(partner, deal, manager):
    link = links.link_create(actor=manager, deal=deal, partner=partner)
    where = links.click(link.token, user_agent="Mozilla/5.0", ip="203.0.113.7")
    return Click.objects.get(key=parse_qs(urlsplit(where).query)["click"][0])


def post(client, partner, **params):
    return client.get(reverse("partner-postback", args=[partner.slug]), {"token": partner.token, **params})


def test_a_click_is_recorded_and_goes_only_to_the_partners_url(client, partner, deal, manager):
    link = links.link_create(actor=manager, deal=deal, partner=partner)
    assert links.link_create(actor=manager, deal=deal, partner=partner) == link  # one link per deal and partner
    assert len(link.token) >= 16 and link.token != str(deal.pk)
    answer = client.get(f"/go/{link.token}", headers={"User-Agent": "Mozilla/5.0"}, REMOTE_ADDR="203.0.113.7")
    assert answer.status_code == 302
    click = Click.objects.get()
    assert answer["Location"] == f"https://partner.example/reg?click={click.key}&sub1={deal.pk}"
    assert click.user_agent == "Mozilla/5.0" and click.ip_hash and "203.0.113.7" not in click.ip_hash
    link.refresh_from_db()
    assert link.clicks == 1
    # an unknown token: 404, nothing recorded; nothing in the URL can choose where it goes
    assert client.get("/go/nope").status_code == 404
    assert client.get(f"/go/{link.token}?next=https://evil.example/").headers["Location"].startswith("https://partner.example/")
    assert Click.objects.count() == 2


def test_registered_then_purchase_fill_the_card_and_tell_the_manager(client, partner, deal, click, manager):
    answer = post(client, partner, subid=click.key, status="lead", player_id="P-77")
    assert (answer.status_code, answer.json()["result"]) == (200, "accepted")
    deal.refresh_from_db()
    deal.client.refresh_from_db()
    today = timezone.localdate()
    assert deal.registration_date == today and deal.client.registration_date == today
    assert deal.client.external_id == "P-77"
    assert Event.objects.filter(kind="registration", deal_id=deal.pk).count() == 1

    answer = post(client, partner, subid=click.key, status="sale", payout="49.90", tid="T-1", player_id="P-77")
    assert answer.json()["result"] == "accepted"
    deal.refresh_from_db()
    deal.client.refresh_from_db()
    assert (deal.sales_count, deal.sales_sum, deal.client.sales_count, deal.client.sales_sum) == (1, Decimal("49.90"), 1, Decimal("49.90"))
    assert deal.last_sale_at is not None and Sale.objects.get().player_id == "P-77"
    assert Sale.objects.get().currency == "USD"  # the partner's currency, kept with the sale
    assert Event.objects.filter(kind="sale", deal_id=deal.pk).count() == 1
    notes = Notification.objects.filter(user=manager, kind=Notification.Kind.PARTNER).order_by("pk")
    assert notes.count() == 2
    from crm.activity import notification_text_for

    manager.language = "en"
    assert notification_text_for(manager, notes[1]) == f"Анна Петрова bought for 49.90 USD with Keitaro (deal #{deal.pk} {deal.name})"
    manager.language = "ru"
    with translation.override("ru"):
        assert notification_text_for(manager, notes[0]) == f"Анна Петрова зарегистрировался у партнёра Keitaro (сделка #{deal.pk} {deal.name})"
        assert notification_text_for(manager, notes[1]).startswith("Анна Петрова купил на 49,90 USD у партнёра Keitaro")


def test_replays_and_a_rebill_and_a_rejection(client, partner, deal, click, admin):
    for _ in range(3):
        answer = post(client, partner, subid=click.key, status="sale", payout="100", tid="T-1")
    assert (answer.status_code, answer.json()) == (200, {"result": "duplicate", "detail": "", "duplicate": True})
    post(client, partner, subid=click.key, status="rebill", payout="30", tid="T-2")  # another transaction: another sale
    deal.refresh_from_db()
    assert (deal.sales_count, deal.sales_sum) == (2, Decimal("130"))
    assert post(client, partner, subid=click.key, status="rejected", tid="T-1").json()["result"] == "accepted"
    deal.refresh_from_db()
    assert (deal.sales_count, deal.sales_sum) == (1, Decimal("30"))
    assert Sale.objects.filter(reversed_at__isnull=False).get().amount == Decimal("100")
    reader = HttpClient()
    reader.force_login(admin)
    feed = reader.get(reverse("clients:feed", args=[deal.client_id])).content.decode()
    assert f"a sale of 100 on deal #{deal.pk} was reversed (Keitaro)" in feed
    assert post(client, partner, subid=click.key, status="rejected", tid="T-1").json()["result"] == "duplicate"
    # no downgrade: a registration after a purchase changes nothing
    assert post(client, partner, subid=click.key, status="lead").json()["result"] == "ignored"
    assert Conversion.objects.count() == 3
    verdicts = list(Postback.objects.order_by("pk").values_list("verdict", flat=True))
    assert verdicts == ["accepted", "duplicate", "duplicate", "accepted", "accepted", "duplicate", "ignored"]


def test_a_rejection_takes_back_the_last_sale_date_and_one_with_nothing_to_reverse_is_ignored(client, partner, deal, click, manager):
    assert post(client, partner, subid=click.key, status="rejected", tid="T-0").json()["result"] == "ignored"
    assert not Notification.objects.filter(user=manager).exists()  # no reversal to tell of
    assert post(client, partner, subid=click.key, status="sale", payout="100", tid="T-1").json()["result"] == "accepted"
    first = Sale.objects.get().created_at
    assert post(client, partner, subid=click.key, status="rebill", payout="30", tid="T-2").json()["result"] == "accepted"
    post(client, partner, subid=click.key, status="rejected", tid="T-2")  # the newest sale goes
    deal.refresh_from_db()
    deal.client.refresh_from_db()
    assert deal.last_sale_at == first and deal.client.last_sale_at == first
    post(client, partner, subid=click.key, status="rejected", tid="T-1")  # and the only one left
    deal.refresh_from_db()
    deal.client.refresh_from_db()
    assert (deal.sales_count, deal.last_sale_at, deal.client.sales_count, deal.client.last_sale_at) == (0, None, 0, None)
    assert list(Postback.objects.order_by("pk").values_list("detail", flat=True))[0] == "no purchase to reverse"


def test_an_effect_that_fails_takes_every_other_effect_back_with_it(partner, deal, click, monkeypatch):
    """Registration, sale, sums, feed, event and conversion are one transaction: when the last step
    (telling the manager) fails, none of them is left behind, and the partner's retry applies them."""
    from crm.models import Activity

    def broken(*args, **kwargs):
        raise RuntimeError("the notification failed")

    monkeypatch.setattr(postbacks, "_tell", broken)
    params = {"token": partner.token, "subid": click.key, "status": "sale", "payout": "49.90", "tid": "T-1"}
    with pytest.raises(RuntimeError):
        postbacks.receive(partner.slug, method="GET", params=params, query=urlencode(params), body="", headers={}, ip="203.0.113.9")
    deal.refresh_from_db()
    deal.client.refresh_from_db()
    assert (deal.sales_count, deal.sales_sum, deal.registration_date, deal.client.registration_date) == (0, 0, None, None)
    assert not Sale.objects.exists() and not Conversion.objects.exists()
    assert not Event.objects.filter(deal_id=deal.pk).exists() and not Activity.objects.filter(deal_id=deal.pk).exists()
    monkeypatch.undo()
    again = postbacks.receive(partner.slug, method="GET", params=params, query=urlencode(params), body="", headers={}, ip="203.0.113.9")
    assert again.verdict == "accepted" and Sale.objects.count() == 1


def test_refusals_each_say_why_and_are_logged(client, partner, click, settings):
    url = reverse("partner-postback", args=[partner.slug])
    cases = [
        (client.get(url, {"token": "wrong", "subid": click.key, "status": "lead"}), 403, "bad_token"),
        (client.get(url, {"token": partner.token, "status": "lead"}), 400, "invalid"),
        (client.get(url, {"token": partner.token, "subid": "nope", "status": "lead"}), 404, "unknown_click"),
        (client.get(url, {"token": partner.token, "subid": click.key, "status": "weird"}), 422, "unknown_status"),
        (client.get(url, {"token": partner.token, "subid": click.key, "status": "sale"}), 400, "invalid"),
        (client.get(url, {"token": partner.token, "subid": click.key, "status": "sale", "payout": "abc"}), 400, "invalid"),
    ]
    for answer, status, verdict in cases:
        assert (answer.status_code, answer.json()["result"]) == (status, verdict)
    assert client.get(reverse("partner-postback", args=["nobody"]), {"token": "x"}).status_code == 404
    logged = list(Postback.objects.order_by("pk").values_list("verdict", flat=True))
    assert logged == [c[2] for c in cases]
    assert Postback.objects.first().params["token"] == "***"  # secrets masked in the log
    Partner.objects.filter(pk=partner.pk).update(ip_allowlist="198.51.100.0/24\n2001:db8::/32")
    answer = client.get(url, {"token": partner.token, "subid": click.key, "status": "lead"}, REMOTE_ADDR="203.0.113.9")
    assert (answer.status_code, answer.json()["result"]) == (403, "refused_ip")
    answer = client.get(url, {"token": partner.token, "subid": click.key, "status": "lead"}, REMOTE_ADDR="198.51.100.20")
    assert answer.json()["result"] == "accepted"
    assert not Conversion.objects.exclude(event="registered").exists()


def test_a_refused_status_is_replayed_once_the_mapping_knows_it(client, partner, click, admin, deal):
    post(client, partner, subid=click.key, status="dep", payout="10", tid="X")
    refused = Postback.objects.get()
    assert refused.verdict == "unknown_status"
    Partner.objects.filter(pk=partner.pk).update(statuses={"dep": "purchase"})
    refused.partner.refresh_from_db()
    answer = postbacks.replay(actor=admin, postback=refused)
    assert answer.verdict == "accepted" and answer.postback.replayed_from == refused
    deal.refresh_from_db()
    assert deal.sales_sum == Decimal("10")


def test_a_signed_partner_needs_a_fresh_signature(client, partner, click):
    secrets.write(partner, {"signing_secret": "s3cret"})
    partner.save()
    url = reverse("partner-postback", args=[partner.slug])
    body = urlencode({"subid": click.key, "status": "lead"})

    def send(stamp, sign=None):
        sign = sign or postbacks.signature("s3cret", str(stamp), body)
        return client.post(f"{url}?token={partner.token}", body, content_type="application/x-www-form-urlencoded",
                           headers={"X-Postback-Timestamp": str(stamp), "X-Postback-Signature": sign})

    now = int(time.time())
    assert send(now, sign="0" * 64).json()["result"] == "bad_signature"
    assert send(now - 301).json()["result"] == "expired"
    assert send(now).json()["result"] == "accepted"
    assert send(now).json()["result"] == "duplicate"  # a replay inside the window: the same event
    assert "s3cret" not in Partner.objects.values_list("secrets", flat=True).get()


def test_a_tracker_that_can_only_call_a_url_signs_a_get_in_its_query(client, partner, click):
    """GET with `timestamp` and `signature` parameters: the signature covers the query without the
    token and the signature, within the same 5-minute window."""
    secrets.write(partner, {"signing_secret": "s3cret"})
    partner.save()
    url = reverse("partner-postback", args=[partner.slug])

    def send(stamp, sign=None, **extra):
        signed = urlencode({"subid": click.key, "status": "lead", "timestamp": str(stamp), **extra})
        sign = sign or postbacks.signature("s3cret", str(stamp), signed)
        return client.get(f"{url}?token={partner.token}&{signed}&signature={sign}")

    now = int(time.time())
    assert send(now, sign="0" * 64).json()["result"] == "bad_signature"
    assert send(now - 301).json()["result"] == "expired"
    assert send(now).json()["result"] == "accepted"
    assert send(now).json()["result"] == "duplicate"
    logged = Postback.objects.order_by("-pk").first()
    assert logged.params["signature"] == "***" and logged.params["token"] == "***"


def test_too_many_requests_from_one_partner_are_refused(client, partner, click, settings):
    settings.POSTBACK_RATE_PER_MINUTE = 3
    answers = [post(client, partner, subid=click.key, status="lead").status_code for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]


def test_an_unchanged_replay_costs_the_same_whatever_the_history(client, partner, click, django_assert_max_num_queries):
    for i in range(20):
        post(client, partner, subid=click.key, status="sale", payout="1", tid=f"T-{i}")
    with django_assert_max_num_queries(3):  # the partner, the click with its conversion, the log: no lock taken
        assert post(client, partner, subid=click.key, status="sale", payout="1", tid="T-3").json()["result"] == "duplicate"


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_make_one_sale(partner, manager):
    deal = DealFactory(responsible=manager)
    link = links.link_create(actor=manager, deal=deal, partner=partner)
    key = parse_qs(urlsplit(links.click(link.token, user_agent="", ip="")).query)["click"][0]
    results, barrier = [], threading.Barrier(6)

    def send():
        try:
            barrier.wait(10)
            answer = HttpClient().get(reverse("partner-postback", args=[partner.slug]),
                                      {"token": partner.token, "subid": key, "status": "sale", "payout": "5", "tid": "T"})
            results.append(answer.json()["result"])
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["accepted"] + ["duplicate"] * 5
    deal.refresh_from_db()
    assert (deal.sales_count, Sale.objects.count(), Conversion.objects.count()) == (1, 1, 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["token", "subid", "status", "payout", "tid", "player_id", "x"]),
                              st.text(max_size=40), max_size=7),
       post_it=st.booleans(), raw=st.binary(max_size=200))
def test_random_input_is_a_4xx_or_a_200_never_a_500(client, partner, click, params, post_it, raw):
    url = reverse("partner-postback", args=[partner.slug])
    if post_it:
        answer = client.post(url + "?" + urlencode({k: v for k, v in params.items() if k == "token"}), raw,
                             content_type="application/json")
    else:
        answer = client.get(url, params)
    assert answer.status_code in (200, 400, 401, 403, 404, 422, 429), answer.content
    assert set(answer.json()) == {"result", "detail", "duplicate"}


def test_strangers_cannot_use_up_the_partners_allowance(client, partner, click, settings):
    settings.POSTBACK_RATE_PER_MINUTE = 2
    url = reverse("partner-postback", args=[partner.slug])
    strangers = [client.get(url, {"token": "guess", "subid": "x", "status": "lead"}, REMOTE_ADDR="198.51.100.66").status_code
                 for _ in range(4)]
    assert strangers == [403, 403, 429, 429]
    assert Postback.objects.count() == 2  # past their limit, strangers are not even logged
    assert post(client, partner, subid=click.key, status="lead").status_code == 200


def test_a_second_purchase_writes_no_second_registration(client, partner, deal, click):
    post(client, partner, subid=click.key, status="sale", payout="5", tid="A")
    post(client, partner, subid=click.key, status="sale", payout="5", tid="B")
    from crm.models import Activity

    assert Activity.objects.filter(deal=deal, field="registration_date").count() == 1
    assert Event.objects.filter(kind="registration", deal_id=deal.pk).count() == 1
    deal.client.refresh_from_db()
    assert deal.client.registration_date == timezone.localdate()


def test_a_strangers_refused_postback_cannot_be_replayed(client, partner, click, admin):
    client.get(reverse("partner-postback", args=[partner.slug]), {"token": "guess", "subid": click.key, "status": "sale",
                                                                  "payout": "1000", "tid": "Z"})
    refused = Postback.objects.get()
    assert refused.verdict == "bad_token"
    assert postbacks.replay(actor=admin, postback=refused).status == 400
    assert not Conversion.objects.exists() and not Sale.objects.exists()
