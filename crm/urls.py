from django.urls import include, path

from messenger.urls import hook_patterns
from partners import endpoint_views as partner_endpoints

from . import views

crm_patterns = (
    [
        path("", views.home, name="home"),
        path("login/", views.login, name="login"),
        path("logout/", views.logout, name="logout"),
        path("account/", views.profile, name="profile"),
        path("account/password/", views.password_change, name="password"),
        path("account/password/done/", views.password_done, name="password-done"),
        path("notifications/", views.notification_list, name="notifications"),
        path("notifications/bell/", views.notification_bell, name="bell"),
        path("notifications/read/", views.notification_read, name="notifications-read"),
        path("notifications/<int:pk>/read/", views.notification_read, name="notification-read"),
        path("jobs/", views.job_list, name="jobs"),
        path("jobs/<uuid:pk>/", views.job_detail, name="job"),
        path("jobs/<uuid:pk>/download/", views.job_download, name="job-download"),
        path("settings/users/", views.user_list, name="users"),
        path("settings/users/new/", views.user_edit, name="user-create"),
        path("settings/users/<int:pk>/", views.user_edit, name="user-edit"),
        path("settings/teams/new/", views.team_create, name="team-create"),
        path("settings/roles/", views.role_list, name="roles"),
        path("settings/roles/new/", views.role_edit, name="role-create"),
        path("settings/roles/<int:pk>/", views.role_edit, name="role-edit"),
    ],
    "crm",
)

urlpatterns = [
    path("", include(crm_patterns)),
    path("clients/import/", include("imports.urls")),
    path("clients/", include("clients.urls")),
    path("deals/", include("deals.urls")),
    path("robots/", include("robots.urls")),
    path("tasks/", include("tasks.urls")),
    path("messenger/", include("messenger.urls")),
    path("hooks/", include((hook_patterns, "hooks"))),
    path("go/<str:token>", partner_endpoints.go, name="partner-go"),
    path("postback/<slug:slug>/", partner_endpoints.postback, name="partner-postback"),
    path("settings/fields/", include("clients.fields_urls")),
    path("settings/partners/", include("partners.urls")),
]
