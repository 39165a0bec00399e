from django.urls import path

from . import views

app_name = "imports"
urlpatterns = [
    path("", views.upload, name="upload"),
    path("<uuid:pk>/sheet/", views.sheet, name="sheet"),
    path("<uuid:pk>/columns/", views.mapping, name="map"),
    path("<uuid:pk>/preview/", views.preview, name="preview"),
    path("<uuid:pk>/", views.job_view, name="job"),
    path("<uuid:pk>/report/", views.report, name="report"),
    path("<uuid:pk>/undo/", views.undo, name="undo"),
]
