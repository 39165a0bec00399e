from urllib.parse import quote

from django import template
from django.utils import formats
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm import fragments
from crm import permissions as gate
from crm.templatetags.chrome import page_context
from crm.templatetags.urls import kept_addresses

register = template.Library()

ABILITIES = ("send_messages", "export_clients", "add_tasks_bulk", "change_responsible", "delete_client", "view_deals")
ADDRESSES = {"count": "clients:count", "send": "messenger:send", "documents": "clients:documents", "tasks": "tasks:bulk",
             "bulk": "clients:bulk-confirm"}


@fragments.words
def _words() -> dict[str, str]:
    return {
        "selected": _("Selected"), "all_selected": _("Every client matching the filter is selected"), "counting": _("Counting…"),
        "select_every": _("Select every client matching the filter"), "send_email": _("Send email"), "send_sms": _("Send SMS"),
        "documents": _("Documents"), "add_task": _("Add task"), "change_responsible": _("Change responsible"), "delete": _("Delete"),
        "select_page": _("Select all on this page"), "deals": _("Deals"),
        "no_clients": _("No clients match. Change the search or the filters."), "pages": _("Pages"), "newer": _("Newer"),
        "older": _("Older"),
    }


def count_text(total: int) -> str:
    """What the count partial (list.html#clients-count) says of a total that is not capped."""
    return ngettext("%(n)s client", "%(n)s clients", total) % {"n": formats.localize(total)}


@register.simple_tag(takes_context=True)
def clients_table(context) -> SafeString:
    """The clients table (clients.selectors.TablePage) with its count, bulk bar and pager, drawn by
    fragments/clients/table.html and its rows by fragments/clients/rows.html: a tick box for mass
    actions (not in the deleted clients' view), the deals button when the user may see deals.
    Django's template engine took 0.4 ms to draw this frame around the rows."""
    page, query, user = context["page"], context["query"], context["user"]
    may = gate.abilities(user, ABILITIES)
    link = f"?{query}&" if query else "?"
    selectable, with_deals = context["view"] != "deleted", may["view_deals"]
    return fragments.render("clients/table.html", {
        "rows": page.drawn(selectable=selectable, with_deals=with_deals),
        "columns": [(col.key, str(col.label)) for col in page.columns], "query": query,
        "total": page.total, "total_text": count_text(page.total) if page.total is not None else "",
        "selectable": selectable, "with_deals": with_deals, "may": may,
        "paged": bool(page.next_cursor or page.prev_cursor),
        "newer": f"{link}before={quote(page.prev_cursor, safe='/')}" if page.prev_cursor else "",
        "older": f"{link}after={quote(page.next_cursor, safe='/')}" if page.next_cursor else "",
        "url": kept_addresses(tuple(ADDRESSES.items())), "t": _words(),
    })


PAGE_ABILITIES = ("configure_fields", "import_clients", "export_clients", "add_client", "view_deals", "view_tasks", "restore_client")
PAGE_ADDRESSES = {"search": "clients:search", "duplicates": "clients:duplicates", "templates": "clients:templates",
                  "import": "imports:upload", "export": "clients:export", "columns": "clients:columns", "create": "clients:create",
                  "list": "clients:list", "filters": "clients:filters"}


@fragments.words
def _page_words() -> dict[str, str]:
    return {
        "clients": _("Clients"), "advanced_search": _("Advanced search"), "duplicates": _("Possible duplicates"),
        "document_templates": _("Document templates"), "import": _("Import"), "export_excel": _("Export to Excel"),
        "export_csv": _("Export to CSV"), "table_settings": _("Table settings"), "add_client": _("Add client"),
        "system_filters": _("System filters"), "client_status": _("Client status"), "filter_and_search": _("Filter and search"),
        "search_placeholder": _("Filter and search: name or phone"), "filters": _("Filters"), "on": _("on"), "loading": _("Loading…"),
    }


@register.simple_tag(takes_context=True)
def clients_page_head(context) -> SafeString:
    """The clients list page above its table (actions, system filters and status tabs the user may
    use, the search box, the filters panel), drawn by fragments/clients/page.html: Django's
    template engine took 0.4 ms to draw it."""
    user = context["user"]
    may = gate.abilities(user, PAGE_ABILITIES)
    views = [("all", _("All records")), ("mine", _("Only mine"))]
    if may["view_deals"]:
        views.append(("no_deals", _("Without deals")))
    if may["view_tasks"]:
        views += [("no_tasks", _("Without tasks")), ("overdue", _("Overdue"))]
    if may["restore_client"]:
        views.append(("deleted", _("Deleted")))
    return fragments.render("clients/page.html", {
        "may": may, "views": views, "view": context["view"], "links": context["view_links"],
        "tabs": [("", _("All")), ("potential", _("Potential")), ("converted", _("Converted"))], "tab": context["tab"],
        "query": context["query"], "keep_params": context["keep_params"], "q": context["q"],
        "filters_active": context["filters_active"], "url": kept_addresses(tuple(PAGE_ADDRESSES.items())),
        "t": _page_words(),
    })


@register.simple_tag(takes_context=True)
def clients_page(context) -> SafeString:
    """The clients list's whole page, shell included (fragments/clients/list.html in crm/page.html):
    the head and the table drawn by the tags above, the shell from chrome.page_context."""
    return fragments.render("clients/list.html", {
        "page": page_context(context), "title": _page_words()["clients"],
        "head": clients_page_head(context), "table": clients_table(context),
    })
