"""Small HTTP helpers every app's views share: HTMX redirects, return URLs, table query strings,
URLs for many rows of a page."""

from collections.abc import Callable

from django.http import QueryDict
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

PAGING_PARAMS = ("after", "before")


def hx_redirect(url: str) -> HttpResponseClientRedirect:
    """After an HTMX write: a full navigation, so the page shows the new state and any message."""
    return HttpResponseClientRedirect(url)


def local_url(request, url: str | None, fallback: str) -> str:
    """`url` when it is a path on this site, else `fallback`: a `next` or return address from the
    request never sends the user elsewhere (`//evil`, `/\\evil`, `https://evil` are refused)."""
    if url and url.startswith("/") and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return fallback


def table_query(params: QueryDict, *, drop=PAGING_PARAMS) -> str:
    """A table's query string without the paging cursor (what filters and mass actions carry)."""
    kept = params.copy()
    for key in drop:
        kept.pop(key, None)
    return kept.urlencode()


def url_maker(name: str, *fixed) -> Callable[[int], str]:
    """reverse() once per page: a function from a pk to the URL (the pattern's last argument,
    after the `fixed` ones)."""
    marker = 987654321
    return reverse(name, args=[*fixed, marker]).replace(str(marker), "{}").format
