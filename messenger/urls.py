from django.urls import path

from . import inbox_views, ingress, views

app_name = "messenger"
urlpatterns = [
    path("", inbox_views.inbox, name="inbox"),
    path("send/", views.mass_send, name="send"),
    path("send/<uuid:pk>/", views.send_progress, name="send-progress"),
]

# Inbound endpoints of the channels (crm/urls.py mounts them at /hooks/): no session, no CSRF, signatures instead.
hook_patterns = [
    path("<slug:kind>/<str:token>/", ingress.hook, name="hook"),
]
