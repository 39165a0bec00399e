from django.urls import path

from . import views

app_name = "tasks"
urlpatterns = [
    path("", views.task_list, name="list"),
    path("counts/", views.task_counts, name="counts"),
    path("types/", views.task_types, name="types"),
    path("new/<int:client_pk>/", views.task_create, name="create"),
    path("<int:pk>/done/", views.task_complete, name="complete"),
    path("bulk/", views.bulk_add, name="bulk"),
]
