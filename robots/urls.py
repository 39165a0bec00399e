from django.urls import path

from . import views

app_name = "robots"
urlpatterns = [
    path("<int:funnel_pk>/", views.board, name="board"),
    path("<int:funnel_pk>/stages/<int:stage_pk>/new/", views.create, name="create"),
    path("<int:funnel_pk>/stages/<int:stage_pk>/order/", views.reorder, name="reorder"),
    path("<int:funnel_pk>/<int:pk>/", views.edit, name="edit"),
    path("<int:funnel_pk>/<int:pk>/toggle/", views.toggle, name="toggle"),
    path("<int:funnel_pk>/<int:pk>/move/", views.move, name="move"),
    path("<int:funnel_pk>/<int:pk>/copy/", views.copy, name="copy"),
    path("<int:funnel_pk>/<int:pk>/delete/", views.delete, name="delete"),
    path("<int:funnel_pk>/<int:pk>/log/", views.log, name="log"),
    path("<int:funnel_pk>/<int:pk>/test/", views.dry_run, name="dry-run"),
    path("<int:funnel_pk>/<int:pk>/resume/<int:deal_pk>/", views.resume, name="resume"),
]
