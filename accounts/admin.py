from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.widgets import UnfoldAdminSelectWidget

from portal.adminactions import ReadOnlyAdmin, for_each
from portal.adminsample import AdminSample

from . import roles, services
from .emails import normalise
from .forms import AdminLoginForm
from .models import User


class UserAdmin(BaseUserAdmin, ModelAdmin):
    """Logins with a password set here: the platform's operators."""

    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Person"), {"fields": ["full_name", "language"]}),
        (
            _("Access"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]})
    ]
    readonly_fields = ["last_login", "date_joined"]
    sample = AdminSample(
        add=lambda: {
            "email": "sample-operator@example.test",
            "full_name": "Sample Operator",
            "password1": "Sample-pass-4821",
            "password2": "Sample-pass-4821",
        }
    )


class StaffInviteForm(forms.ModelForm):
    role = forms.ChoiceField(
        label=_("Role"),
        choices=[(name, name) for name in roles.ROLES],
        widget=UnfoldAdminSelectWidget,
        help_text=" · ".join(f"{name}: {text}" for name, text in roles.ROLE_HELP.items()),
    )

    class Meta:
        model = User
        fields = ["email", "full_name"]

    def clean_email(self):
        email = normalise(self.cleaned_data["email"])
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError(_("There is a login with this e-mail address already."))
        return email


class RoleField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return obj.name


@admin.register(User)
class StaffAdmin(UserAdmin):
    """The provider's staff logins. An owner invites staff with a role; the
    invited person chooses their own password. Logins with history are
    deactivated, not deleted. Parents' logins belong to their families."""

    add_form = StaffInviteForm
    change_list_template = "admin/accounts/logins_note.html"
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "full_name", "role"]})]
    list_display = ["email", "full_name", "role_names", "is_active", "last_login"]
    list_filter = ["is_active", "groups"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Person"), {"fields": ["full_name", "language"]}),
        (_("Access"), {"fields": ["groups"]}),
        (_("Dates"), {"fields": ["is_active", "last_login", "date_joined"]}),
    ]
    readonly_fields = ["is_active", "last_login", "date_joined"]
    actions = ["deactivate"]
    sample = AdminSample(
        add=lambda: {
            "email": "sample-desk@example.test",
            "full_name": "Sample Desk",
            "role": roles.FRONT_DESK,
        }
    )

    def get_queryset(self, request):
        return super().get_queryset(request).filter(is_staff=True).prefetch_related("groups")

    def changelist_view(self, request, extra_context=None):
        note = _(
            "Staff logins of this provider, each with a role. Invite someone with Add; they "
            "choose their own password. Parents' logins are on their family's page."
        )
        return super().changelist_view(request, {**(extra_context or {}), "logins_note": note})

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs["queryset"] = Group.objects.filter(name__in=roles.ROLES)
            kwargs["form_class"] = RoleField
            kwargs["widget"] = forms.CheckboxSelectMultiple
            kwargs["help_text"] = " · ".join(
                f"{name}: {text}" for name, text in roles.ROLE_HELP.items()
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description=_("role"))
    def role_names(self, user):
        return ", ".join(g.name for g in user.groups.all()) or "-"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        invited = services.staff_invite(
            email=form.cleaned_data["email"],
            full_name=form.cleaned_data["full_name"],
            role=form.cleaned_data["role"],
            actor=request.user,
            base_url=f"{request.scheme}://{request.get_host()}",
        )
        obj.pk = invited.pk
        obj._state.adding = False
        self.message_user(
            request,
            _("Invitation sent to %(email)s, with a link to choose a password.")
            % {"email": invited.email},
            messages.SUCCESS,
        )

    def delete_view(self, request, object_id, extra_context=None):
        """A login that records hold on to is deactivated instead, and the
        page says so before anything happens."""
        user = self.get_object(request, unquote(object_id))
        if user is None or not services.login_has_history(user):
            return super().delete_view(request, object_id, extra_context)
        if not self.has_delete_permission(request, user):
            raise PermissionDenied
        if request.method == "POST":
            self._deactivate(request, [user])
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Deactivate instead of delete"),
            "object": user,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/accounts/user/deactivate_instead.html", context)

    @admin.action(description=_("Deactivate the selected logins"), permissions=["change"])
    def deactivate(self, request, queryset):
        self._deactivate(request, queryset)

    def _deactivate(self, request, users):
        def act(user):
            services.login_deactivate(user=user, actor=request.user)
            self.log_change(request, user, _("Deactivated"))

        for_each(self, request, users, act, _("can no longer log in; its records stay."))


admin.site.login_form = AdminLoginForm
admin.site.unregister(Group)


@admin.register(Group)
class RoleAdmin(ReadOnlyAdmin, GroupAdmin, ModelAdmin):
    """The roles are the same at every provider (accounts/roles.py): read here."""

    sample = AdminSample(add=None)
