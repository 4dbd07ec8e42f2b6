from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from portal.adminsample import AdminSample

from .forms import AdminLoginForm
from .models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Person"), {"fields": ["full_name"]}),
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
            "email": "sample-desk@example.test",
            "full_name": "Sample Desk",
            "password1": "Sample-pass-4821",
            "password2": "Sample-pass-4821",
        }
    )


admin.site.login_form = AdminLoginForm
admin.site.unregister(Group)


@admin.register(Group)
class RoleAdmin(GroupAdmin):
    sample = AdminSample(add=lambda: {"name": "Sample role"})
