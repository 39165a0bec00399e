from django import template
from django.utils.safestring import SafeString

from crm import fragments

register = template.Library()


@register.simple_tag
def client_rows(rows, *, view: str, with_deals: bool) -> SafeString:
    """The clients table's rows (clients.selectors.TableRow), drawn by fragments/clients/rows.html:
    a tick box for mass actions (not in the deleted clients' view), the deals button when the
    user may see deals."""
    return fragments.render("clients/rows.html", {"rows": rows, "selectable": view != "deleted", "with_deals": bool(with_deals)})
