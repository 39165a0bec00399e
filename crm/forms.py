from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, SetPasswordMixin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from .models import Role, Team
from .permissions import ROLE_PERMISSIONS
from .timezones import time_zone_choices

# Every select's empty choice (Django 6.1's BLANK_CHOICE_LABEL) has no Russian in Django's own catalogue
# yet: ours gives it one (LOCALE_PATHS take precedence over it), and makemessages finds it here.
gettext_noop("- Select an option -")


class LoginForm(AuthenticationForm):
    username = forms.CharField(label=_("Username or email"), max_length=254, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)  # worded when shown

    class Meta:
        model = get_user_model()
        fields = ["first_name", "last_name", "email", "language", "time_zone", "email_reminders", "notification_sound"]


class UserForm(SetPasswordMixin, forms.ModelForm):
    """An admin creates or edits a user; the password is set only when typed."""

    password1, password2 = SetPasswordMixin.create_password_fields(label1=_("Password"), label2=_("Password again"))

    class Meta:
        model = get_user_model()
        fields = ["username", "first_name", "last_name", "email", "role", "team", "language", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].required = True
        self.fields["role"].queryset = Role.objects.select_related("group")
        creating = not self.instance.pk
        self.fields["password1"].required = creating
        self.fields["password2"].required = creating
        if not creating:
            self.fields["password1"].help_text = _("Leave empty to keep the current password.")

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        if "@" in username:
            raise forms.ValidationError(_("A username cannot contain “@”: people sign in with their email too."))
        User = get_user_model()
        if User.objects.filter(username__iexact=username).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("A user with this username already exists."))
        return username

    def clean_email(self):
        email = self.cleaned_data.get("email", "").strip()
        User = get_user_model()
        if email and User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("Another user already has this email."))
        return email

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") or cleaned.get("password2"):
            self.validate_passwords()
            self.validate_password_for_user(self.instance)
        return cleaned


class RoleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)
    visibility = forms.ChoiceField(label=_("Record visibility"), choices=Role.Visibility.choices)

    def __init__(self, *args, role=None, **kwargs):
        self.role = role
        super().__init__(*args, **kwargs)
        for index, (group_label, perms) in enumerate(ROLE_PERMISSIONS):
            self.fields[f"perms_{index}"] = forms.MultipleChoiceField(
                label=group_label, choices=perms, required=False, widget=forms.CheckboxSelectMultiple
            )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = Group.objects.filter(name__iexact=name)
        if self.role:
            taken = taken.exclude(pk=self.role.group_id)
        if taken.exists():
            raise forms.ValidationError(_("A role with this name already exists."))
        return name

    def permission_fields(self):
        return [self[f"perms_{i}"] for i in range(len(ROLE_PERMISSIONS))]

    def chosen_permissions(self) -> list[str]:
        return [code for i in range(len(ROLE_PERMISSIONS)) for code in self.cleaned_data.get(f"perms_{i}", [])]


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name"]
