"""The two addresses the outside world calls: a client's click (`/go/<token>`) and a partner's
server (`/postback/<slug>/`). Neither needs a session; the postback is exempt from CSRF (it is
authenticated by the partner's token and signature instead)."""

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import links, postbacks


def _ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


@login_not_required
@require_GET
def go(request, token):
    where = links.click(token[:40], user_agent=request.headers.get("User-Agent", ""), ip=_ip(request))
    if where is None:
        raise Http404
    response = HttpResponseRedirect(where)  # only the partner's configured URL (validated when saved)
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


@login_not_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def postback(request, slug):
    body = request.body.decode("utf-8", "replace") if request.method == "POST" else ""
    params = {k: v for k, v in request.GET.items()}
    if request.method == "POST":
        if request.content_type == "application/json":
            import json

            try:
                data = json.loads(body or "{}")
            except ValueError:
                data = None
            if not isinstance(data, dict):
                return JsonResponse({"result": "invalid", "detail": "the body is not a JSON object", "duplicate": False},
                                    status=400)
            params.update({str(k): "" if v is None else str(v) for k, v in data.items() if not isinstance(v, (dict, list))})
        else:
            params.update({k: v for k, v in request.POST.items()})
    # `postback_console`: set only by partners.services.console_send, never from the request itself
    answer = postbacks.receive(slug, method=request.method, params=params, query=request.META.get("QUERY_STRING", ""),
                               body=body, headers=request.headers, ip=_ip(request),
                               console=getattr(request, "postback_console", False))
    response = JsonResponse(answer.json(), status=answer.status)
    response.postback_answer = answer  # for the test console (its log row)
    return response
