from django.urls import path

from . import views

app_name = "partners"

urlpatterns = [
    path("", views.partner_list, name="list"),
    path("new/", views.partner_edit, name="create"),
    path("<int:pk>/", views.partner_edit, name="edit"),
    path("<int:pk>/token/", views.partner_token, name="token"),
    path("<int:pk>/toggle/", views.partner_toggle, name="toggle"),
    path("<int:pk>/console/", views.console, name="console"),
    path("postbacks/", views.postback_log, name="log"),
    path("postbacks/<int:pk>/replay/", views.replay, name="replay"),
    path("links/<int:deal_pk>/", views.link_create, name="link-create"),
]
