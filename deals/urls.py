from django.urls import path

from . import views

app_name = "deals"
urlpatterns = [
    path("", views.home, name="home"),
    path("<int:funnel_pk>/", views.board, name="board"),
    path("<int:funnel_pk>/changes/", views.board_changes, name="changes"),
    path("<int:funnel_pk>/totals/", views.board_totals, name="totals"),
    path("<int:funnel_pk>/filters/", views.filter_panel, name="filters"),
    path("<int:funnel_pk>/table/", views.deals_table, name="table"),
    path("<int:funnel_pk>/export/", views.deals_export, name="export"),
    path("<int:funnel_pk>/stages/<int:stage_pk>/more/", views.column_more, name="more"),
    path("deal/<int:pk>/", views.deal_detail, name="detail"),
    path("deal/<int:pk>/edit/", views.deal_edit, name="edit"),
    path("deal/<int:pk>/move/", views.deal_move, name="move"),
    path("deal/<int:pk>/sale/", views.sale_add, name="sale"),
    path("deal/<int:pk>/delete/", views.deal_delete, name="delete"),
    path("deal/<int:pk>/restore/", views.deal_restore, name="restore"),
    path("client/<int:client_pk>/quick/", views.quick_deal, name="quick"),
    path("client/<int:client_pk>/row/", views.client_deals_row, name="client-row"),
    path("settings/", views.funnel_list, name="funnels"),
    path("settings/<int:funnel_pk>/", views.funnel_settings, name="settings"),
    path("settings/<int:funnel_pk>/rename/", views.funnel_rename, name="funnel-rename"),
    path("settings/<int:funnel_pk>/delete/", views.funnel_delete, name="funnel-delete"),
    path("settings/<int:funnel_pk>/access/", views.funnel_access, name="funnel-access"),
    path("settings/<int:funnel_pk>/lines/new/", views.line_create, name="line-create"),
    path("settings/<int:funnel_pk>/lines/order/", views.lines_reorder, name="lines-order"),
    path("settings/<int:funnel_pk>/lines/<int:line_pk>/rename/", views.line_rename, name="line-rename"),
    path("settings/<int:funnel_pk>/lines/<int:line_pk>/delete/", views.line_delete, name="line-delete"),
    path("settings/<int:funnel_pk>/lines/<int:line_pk>/stages/new/", views.stage_create, name="stage-create"),
    path("settings/<int:funnel_pk>/lines/<int:line_pk>/stages/order/", views.stages_reorder, name="stages-order"),
    path("settings/<int:funnel_pk>/stages/<int:stage_pk>/", views.stage_update, name="stage-update"),
    path("settings/<int:funnel_pk>/stages/<int:stage_pk>/delete/", views.stage_delete, name="stage-delete"),
]
