"""The application's URLs plus one for the benches only: /_bench/floor/, the framework floor
(DESIGN §12), a trivial authenticated view through the same middleware as every page.

The floor answers a plain-text "ok" without a template. It is what no page can go below: the
middleware stack, the session and the user read from the database (LoginRequiredMiddleware asks
whether the user is signed in, so a signed-out request is sent to the login page as any page's
is), the language and time zone activated, the security headers set. The page's own work — its
view, its queries, its template with base.html and the context processors — is what the floor
ratio puts over this; a floor rendering base.html would hide that work in the denominator.
"""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from crm.urls import urlpatterns as crm_urlpatterns


@require_GET
def floor(request):
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


urlpatterns = [path("_bench/floor/", floor, name="bench-floor"), *crm_urlpatterns]
