from django.urls import path

from . import inbox_views, ingress, settings_views, views

app_name = "messenger"
urlpatterns = [
    path("", inbox_views.inbox_page, name="inbox"),
    path("conversations/", inbox_views.conversation_list, name="list"),
    path("conversations/<int:pk>/", inbox_views.chat, name="chat"),
    path("conversations/<int:pk>/poll/", inbox_views.chat_poll, name="chat-poll"),
    path("conversations/<int:pk>/older/", inbox_views.chat_older, name="chat-older"),
    path("conversations/<int:pk>/read/", inbox_views.mark_read, name="read"),
    path("conversations/<int:pk>/reply/", inbox_views.send, name="reply"),
    path("conversations/<int:pk>/take/", inbox_views.take, name="take"),
    path("conversations/<int:pk>/ignore/", inbox_views.ignore_toggle, name="ignore"),
    path("conversations/<int:pk>/close/", inbox_views.close_toggle, name="close"),
    path("messages/<int:pk>/retry/", inbox_views.retry, name="retry"),
    path("files/<int:pk>/", inbox_views.attachment, name="attachment"),
    path("ignore/", settings_views.ignore_list, name="ignore-list"),
    path("ignore/<int:pk>/end/", settings_views.ignore_end, name="ignore-end"),
    path("channels/", settings_views.channels, name="channels"),
    path("channels/new/", settings_views.channel_edit, name="channel-create"),
    path("channels/<int:pk>/", settings_views.channel_edit, name="channel-edit"),
    path("channels/<int:pk>/simulate/", settings_views.simulate, name="simulate"),
    path("inbound/<int:pk>/retry/", settings_views.inbound_retry, name="inbound-retry"),
    path("quick-replies/", settings_views.quick_replies, name="quick-replies"),
    path("send/", views.mass_send, name="send"),
    path("send/<uuid:pk>/", views.send_progress, name="send-progress"),
]

# Inbound endpoints of the channels (crm/urls.py mounts them at /hooks/): no session, no CSRF, signatures instead.
hook_patterns = [
    path("<slug:kind>/<str:token>/", ingress.hook, name="hook"),
]
