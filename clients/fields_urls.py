from django.urls import path

from . import lead_views, views

app_name = "fields"
urlpatterns = [
    path("", views.field_list, name="list"),
    path("new/", views.field_edit, name="create"),
    path("<int:pk>/", views.field_edit, name="edit"),
    path("<int:pk>/toggle/", views.field_toggle, name="toggle"),
    # The lead steps (seed 004), configured beside the client fields
    path("steps/", lead_views.steps, name="steps"),
    path("steps/order/", lead_views.steps_reorder, name="steps-order"),
    path("steps/<int:pk>/rename/", lead_views.step_rename, name="step-rename"),
    path("steps/<int:pk>/move/", lead_views.step_move, name="step-move"),
    path("steps/<int:pk>/delete/", lead_views.step_delete, name="step-delete"),
]
