"""The inbox (issue 15): conversations, the chat, the client card beside it."""

from django.http import HttpResponse
from django.views.decorators.http import require_GET


@require_GET
def inbox(request):
    return HttpResponse("inbox")
