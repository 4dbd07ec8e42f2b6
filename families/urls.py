from django.urls import path

from . import views

app_name = "families"

urlpatterns = [
    path("account/", views.account, name="account"),
    path("account/problem-reports/", views.problem_reports, name="problem_reports"),
    path("account/problem-reports/<int:pk>/", views.problem_report, name="problem_report"),
    path("account/students/add/", views.student_add, name="student_add"),
    path("account/students/<int:pk>/edit/", views.student_edit, name="student_edit"),
    path("account/students/<int:pk>/photo", views.student_photo, name="student_photo"),
    path("account/guardians/add/", views.guardian_add, name="guardian_add"),
    path("account/guardians/<int:pk>/edit/", views.guardian_edit, name="guardian_edit"),
    path("account/guardians/<int:pk>/invite/", views.guardian_invite, name="guardian_invite"),
    path("account/guardians/<int:pk>/revoke/", views.guardian_revoke, name="guardian_revoke"),
    path(
        "account/guardians/<int:pk>/reset-password/",
        views.guardian_reset_password,
        name="guardian_reset_password",
    ),
    path("account/contacts/<slug:kind>/add/", views.contact_add, name="contact_add"),
    path("account/contacts/<slug:kind>/<int:pk>/edit/", views.contact_edit, name="contact_edit"),
    path(
        "account/contacts/<slug:kind>/<int:pk>/delete/",
        views.contact_delete,
        name="contact_delete",
    ),
    path(
        "account/contacts/<slug:kind>/<int:pk>/assign/",
        views.contact_assign,
        name="contact_assign",
    ),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
