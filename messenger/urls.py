from django.urls import path

from . import views

app_name = "messenger"
urlpatterns = [
    path("send/", views.mass_send, name="send"),
    path("send/<uuid:pk>/", views.send_progress, name="send-progress"),
]
