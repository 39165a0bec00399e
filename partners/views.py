"""The partners' pages (issue 17), for those who configure partners: the list, the form with the
test console, the postback log with replay; and the card's registration-link block (for those who
see the deal).

Every admin view asks the gate first (403 before any lookup), then finds the record (404)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import permissions as gate
from crm.http import hx_redirect

from . import links, postbacks, selectors, services
from .forms import ConsoleForm, PartnerForm
from .models import Partner, Postback

# Refusals a replay can cure (the mapping, the parameter names, a click): those that passed the token,
# the address and the signature. A request refused for those (a stranger's) is never offered a replay,
# since postbacks.replay does not authenticate again.
REPLAYABLE = set(postbacks.REPLAYABLE)  # one rule: partners.postbacks decides what may be replayed


def _configure(request) -> None:
    gate.require(request.user, gate.CONFIGURE_PARTNERS)


def postback_url(request, partner: Partner) -> str:
    """The address to give the partner: absolute, with its token."""
    return request.build_absolute_uri(reverse("partner-postback", kwargs={"slug": partner.slug})) + f"?token={partner.token}"


@require_GET
def partner_list(request):
    _configure(request)
    rows = selectors.partners_with_counts()
    for partner in rows:
        partner.postback_url = postback_url(request, partner)
    return render(request, "partners/list.html", {"partners": rows})


def _answer_text(answer: postbacks.Answer) -> str:
    label = Postback.Verdict(answer.verdict).label if answer.verdict in Postback.Verdict.values else answer.verdict
    text = _("Answer %(status)s: %(verdict)s") % {"status": answer.status, "verdict": label}
    return f"{text} ({answer.detail})" if answer.detail else text


def _form_context(request, partner, form, console=None, console_answer=None) -> dict:
    ctx = {"partner": partner, "form": form, "has_secret": bool(form.has_secret)}
    if partner is not None and partner.pk:
        ctx.update(postback_url=postback_url(request, partner),
                   console=console or ConsoleForm(clicks=selectors.recent_clicks(partner)),
                   console_answer=console_answer)
    return ctx


@require_http_methods(["GET", "POST"])
def partner_edit(request, pk=None):
    _configure(request)
    partner = get_object_or_404(Partner, pk=pk) if pk else None
    has_secret = bool(partner and postbacks.signing_secret(partner))
    form = PartnerForm(request.POST or None, instance=partner, has_secret=has_secret)
    if request.method == "POST":
        if form.is_valid():
            saved = services.partner_save(actor=request.user, partner=partner, data=form.partner_data())
            messages.success(request, _("Partner “%(name)s” saved.") % {"name": saved.name})
            return redirect("partners:edit", pk=saved.pk)
        messages.error(request, _("The partner was not saved: check the marked fields."))
        if partner is not None:
            partner.refresh_from_db()  # the form's invalid values must not show as the partner's
    return render(request, "partners/form.html", _form_context(request, partner, form))


@require_POST
def partner_token(request, pk):
    _configure(request)
    partner = get_object_or_404(Partner, pk=pk)
    services.partner_rotate_token(actor=request.user, partner=partner)
    messages.success(request, _("A new postback token is set: give the partner the new postback URL; the old one no longer works."))
    return redirect("partners:edit", pk=partner.pk)


@require_POST
def partner_toggle(request, pk):
    _configure(request)
    partner = get_object_or_404(Partner, pk=pk)
    on = request.POST.get("on") == "1"
    services.partner_toggle(actor=request.user, partner=partner, on=on)
    text = _("Partner “%(name)s” switched on.") if on else _("Partner “%(name)s” switched off.")
    messages.success(request, text % {"name": partner.name})
    return redirect("partners:list")


@require_POST
def console(request, pk):
    """The test console: a sample postback received in-process; the answer and its log line."""
    _configure(request)
    partner = get_object_or_404(Partner, pk=pk)
    form = ConsoleForm(request.POST, clicks=selectors.recent_clicks(partner))
    answer = None
    if form.is_valid():
        data = form.cleaned_data
        answer = services.console_send(actor=request.user, partner=partner, key=data["key"], event=data["event"],
                                       amount=data.get("amount"), transaction_id=data.get("transaction", ""),
                                       player_id=data.get("player", ""))
    ctx = {"partner": partner, "console": form, "console_answer": answer}
    if request.htmx:
        return render(request, "partners/form.html#console", ctx)
    has_secret = bool(postbacks.signing_secret(partner))
    page = _form_context(request, partner, PartnerForm(instance=partner, has_secret=has_secret), form, answer)
    return render(request, "partners/form.html", page)


@require_GET
def postback_log(request):
    _configure(request)
    partner_id = request.GET.get("partner", "")
    verdict = request.GET.get("verdict", "")
    if verdict not in Postback.Verdict.values:
        verdict = ""
    rows, before = selectors.log_page(partner_id=int(partner_id) if partner_id.isdigit() else None, verdict=verdict,
                                      before=request.GET.get("before"))
    filters = {k: v for k, v in (("partner", partner_id if partner_id.isdigit() else ""), ("verdict", verdict)) if v}
    from django.http import QueryDict

    query = QueryDict(mutable=True)
    query.update(filters)
    ctx = {"rows": rows, "before": before, "older": bool(request.GET.get("before")), "partner_id": partner_id,
           "verdict": verdict, "partners": Partner.objects.only("pk", "name"), "verdicts": Postback.Verdict.choices,
           "filter_query": query.urlencode(), "refused": REPLAYABLE}
    return render(request, "partners/log.html", ctx)


@require_POST
def replay(request, pk):
    _configure(request)
    postback = get_object_or_404(Postback.objects.select_related("partner"), pk=pk)
    answer = postbacks.replay(actor=request.user, postback=postback)
    text = _("Replayed postback #%(id)s. %(answer)s") % {"id": postback.pk, "answer": _answer_text(answer)}
    if answer.verdict == Postback.Verdict.ACCEPTED:
        messages.success(request, text)
    else:
        messages.error(request, text)
    url = reverse("partners:log")
    query = request.POST.get("back", "")
    if query.startswith("?"):
        url += query
    return hx_redirect(url) if request.htmx else redirect(url)


# The card's registration links --------------------------------------------------------------


def registration_context(request, deal) -> dict:
    """The card's “Registration link” block for the deal (three queries; none without a deal)."""
    marker = "TOKEN"
    go = request.build_absolute_uri(reverse("partner-go", kwargs={"token": marker}))
    return {**selectors.registration_block(deal), "link_base": go[: -len(marker)]}


@require_POST
def link_create(request, deal_pk):
    """Create the deal's link to a partner (once); answers with the card's block (htmx) or the card."""
    deal = gate.deal_or_404(request.user, deal_pk)
    gate.require(request.user, gate.CHANGE_DEAL)
    partner_id = request.POST.get("partner", "")
    partner = get_object_or_404(Partner, pk=int(partner_id) if partner_id.isdigit() else 0, is_active=True)
    links.link_create(actor=request.user, deal=deal, partner=partner)
    if request.htmx:
        return render(request, "partners/registration_block.html", registration_context(request, deal))
    return redirect(f"{deal.client.get_absolute_url()}?deal={deal.pk}")
