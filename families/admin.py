from django.contrib import admin

from .models import Family, Guardian, Student


class GuardianInline(admin.TabularInline):
    model = Guardian
    extra = 0
    fields = ["first_name", "last_name", "user", "is_primary", "can_pay"]
    raw_id_fields = ["user"]


class StudentInline(admin.TabularInline):
    model = Student
    extra = 0
    fields = ["first_name", "last_name", "date_of_birth", "gender"]


@admin.register(Family)
class FamilyAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = [
        "name",
        "guardians__first_name",
        "guardians__last_name",
        "guardians__user__email",
        "students__first_name",
        "students__last_name",
    ]
    inlines = [GuardianInline, StudentInline]


@admin.register(Student)
class StudentAdmin(admin.ModelAdmin):
    list_display = ["full_name", "family", "date_of_birth"]
    search_fields = ["first_name", "last_name", "family__name"]
    list_select_related = ["family"]
