from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import activity, selectors, services
from . import permissions as gate
from .forms import LoginForm, ProfileForm, RoleForm, TeamForm, UserForm
from .http import local_url

login = login_not_required(
    auth_views.LoginView.as_view(template_name="crm/login.html", authentication_form=LoginForm, redirect_authenticated_user=True)
)
logout = auth_views.LogoutView.as_view()
password_change = auth_views.PasswordChangeView.as_view(
    template_name="crm/password_change.html", success_url=reverse_lazy("crm:password-done")
)


@require_GET
def password_done(request):
    messages.success(request, _("Your password has been changed."))
    return redirect("crm:profile")


@require_GET
def home(request):
    return redirect("clients:list")


@require_http_methods(["GET", "POST"])
def profile(request):
    form = ProfileForm(request.POST if request.method == "POST" else None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        services.profile_save(actor=request.user, form=form)
        messages.success(request, _("Settings saved."))
        return redirect("crm:profile")
    return render(request, "crm/profile.html", {"form": form})


@require_GET
def user_list(request):
    gate.require(request.user, gate.MANAGE_USERS)
    ctx = {"users": selectors.users_for_admin(), "teams": selectors.teams_all(), "team_form": TeamForm()}
    return render(request, "crm/users.html", ctx)


@require_http_methods(["GET", "POST"])
def user_edit(request, pk=None):
    gate.require(request.user, gate.MANAGE_USERS)
    instance = selectors.user_or_404(pk) if pk else None
    form = UserForm(request.POST if request.method == "POST" else None, instance=instance)
    if request.method == "POST" and form.is_valid():
        user = services.user_save(actor=request.user, form=form)
        messages.success(request, _("User “%(name)s” saved.") % {"name": user})
        return redirect("crm:users")
    return render(request, "crm/user_form.html", {"form": form, "edited": instance})


@require_http_methods(["POST"])
def team_create(request):
    gate.require(request.user, gate.MANAGE_USERS)
    form = TeamForm(request.POST)
    if form.is_valid():
        services.team_create(actor=request.user, name=form.cleaned_data["name"])
        messages.success(request, _("Team created."))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect("crm:users")


@require_GET
def role_list(request):
    gate.require(request.user, gate.MANAGE_USERS)
    return render(request, "crm/roles.html", {"roles": selectors.roles_all()})


@require_http_methods(["GET", "POST"])
def role_edit(request, pk=None):
    gate.require(request.user, gate.MANAGE_USERS)
    role = selectors.role_or_404(pk) if pk else None
    initial = {}
    if role:
        codes = selectors.role_permission_codes(role)
        initial = {"name": role.name, "visibility": role.visibility}
        form = RoleForm(role=role, initial=initial)
        for index in range(len(form.permission_fields())):
            initial[f"perms_{index}"] = [c for c, _label in form.fields[f"perms_{index}"].choices if c in codes]
    form = RoleForm(request.POST if request.method == "POST" else None, role=role, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.role_save(
            actor=request.user,
            role=role,
            name=form.cleaned_data["name"],
            visibility=form.cleaned_data["visibility"],
            permissions=form.chosen_permissions(),
        )
        messages.success(request, _("Role saved."))
        return redirect("crm:roles")
    return render(request, "crm/role_form.html", {"form": form, "role": role})


@require_GET
def notification_bell(request):
    """The bell's unread count: loaded after the page and polled, so it costs pages nothing."""
    return render(request, "crm/notifications.html#bell", {"unread": selectors.unread_count(request.user)})


@require_GET
def notification_list(request):
    ctx = {"notifications": selectors.notifications_of(request.user), "unread": selectors.unread_count(request.user)}
    return render(request, "crm/notifications.html", ctx)


@require_POST
def notification_read(request, pk=None):
    activity.notifications_mark_read(user=request.user, pk=pk)
    return redirect(local_url(request, request.POST.get("next"), reverse("crm:notifications")))


# Jobs (issue 12): the list, one job's progress (polled while it runs), its result file -------


@require_GET
def job_list(request):
    jobs = list(gate.visible_jobs(request.user)[:100])
    return render(request, "crm/jobs.html", {"jobs": jobs, "everyone": gate.can(request.user, gate.MANAGE_USERS)})


@require_GET
def job_detail(request, pk):
    job = gate.job_or_404(request.user, pk)
    template = "crm/jobs.html#job-progress" if request.htmx else "crm/job.html"
    return render(request, template, {"job": job, **selectors.job_status(job)})


@require_GET
def job_download(request, pk):
    job = gate.job_or_404(request.user, pk)
    if not job.result:  # not ready (or nothing to download): the job's page says where it is
        return redirect(job)
    return FileResponse(job.result.open("rb"), as_attachment=True, filename=job.result_name or job.result.name)
