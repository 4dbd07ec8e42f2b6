from django.urls import path

from . import views

app_name = "enrollments"

urlpatterns = [
    path("students/<int:pk>/<slug:tab>/", views.student, name="student"),
    path("students/<int:pk>/absences/by-date/", views.absence_by_date, name="absence_by_date"),
    path(
        "students/<int:pk>/absences/by-enrolment/<int:enrollment_pk>/",
        views.absence_by_enrollment,
        name="absence_by_enrollment",
    ),
    path("absences/<int:pk>/cancel/", views.absence_cancel, name="absence_cancel"),
    path("enrolments/<int:pk>/leave-waitlist/", views.waitlist_cancel, name="waitlist_cancel"),
    path("enrolments/<int:pk>/drop/", views.drop, name="drop"),
    path("enrolments/<int:pk>/transfer/", views.transfer, name="transfer"),
    path("enrolments/offers/<str:token>/", views.offer, name="offer"),
    path("location/", views.location_choose, name="location_choose"),
    path("calendar/", views.calendar, name="calendar"),
    path("calendar/reset/", views.calendar_reset, name="calendar_reset"),
    path("calendar/<str:token>.ics", views.feed, name="feed"),
    path("policies/", views.policies, name="policies"),
]
