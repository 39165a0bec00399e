from django.urls import path

from . import views

app_name = "fields"
urlpatterns = [
    path("", views.field_list, name="list"),
    path("new/", views.field_edit, name="create"),
    path("<int:pk>/", views.field_edit, name="edit"),
    path("<int:pk>/toggle/", views.field_toggle, name="toggle"),
]
