from django.urls import path

from . import card_views as card
from . import duplicate_views as dups
from . import lead_views as leads
from . import merge_views, views

app_name = "clients"
urlpatterns = [
    path("", views.client_list, name="list"),
    path("count/", views.client_count, name="count"),
    path("export/", views.client_export, name="export"),
    path("templates/", views.document_templates, name="templates"),
    path("documents/", views.documents_download, name="documents"),
    path("filters/", views.filter_panel, name="filters"),
    path("filters/save/", views.saved_filter_create, name="filter-save"),
    path("filters/<int:pk>/delete/", views.saved_filter_delete, name="filter-delete"),
    path("search/", views.advanced_search, name="search"),
    path("duplicates/", dups.duplicate_list, name="duplicates"),
    path("duplicates/<int:pk>/dismiss/", dups.duplicate_dismiss, name="duplicate-dismiss"),
    path("columns/", views.table_columns, name="columns"),
    path("new/", views.client_create, name="create"),
    path("bulk/confirm/", views.bulk_confirm, name="bulk-confirm"),
    path("bulk/run/", views.bulk_run, name="bulk-run"),
    path("<int:pk>/", card.client_card, name="detail"),
    path("<int:pk>/panel/", card.client_panel, name="panel"),
    path("<int:pk>/feed/", card.feed, name="feed"),
    path("<int:pk>/comment/", card.comment_add, name="comment"),
    path("<int:pk>/comment/mentions/", card.mention_options, name="mention-options"),
    path("<int:pk>/note/", card.note_edit, name="note"),
    path("layout/<str:block>/", card.layout_editor, name="layout"),
    path("layout/<str:block>/save/", card.layout_save, name="layout-save"),
    path("layout/<str:block>/add/", card.layout_add, name="layout-add"),
    path("<int:pk>/edit/", views.client_edit, name="edit"),
    path("<int:pk>/delete/", views.client_delete, name="delete"),
    path("<int:pk>/restore/", views.client_restore, name="restore"),
    path("<int:pk>/merge/", merge_views.merge_page, name="merge"),
    path("merges/<int:pk>/undo/", merge_views.merge_undo, name="merge-undo"),
    # Leads (seed 004): the card's progress bar and steps' history, conversion, today's actions
    path("<int:pk>/lead/", leads.lead_block, name="lead"),
    path("<int:pk>/step/", leads.step_set, name="step"),
    path("<int:pk>/convert/", leads.convert, name="convert"),
    path("<int:pk>/link/", leads.link_customer, name="link"),
    path("<int:pk>/conversion/undo/", leads.conversion_undo, name="conversion-undo"),
    path("actions/today/", leads.todays_actions, name="today-actions"),
]
