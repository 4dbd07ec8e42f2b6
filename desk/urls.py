from django.urls import path

from . import money, views

app_name = "desk"

urlpatterns = [
    path("", views.home, name="home"),
    path("language/", views.language, name="language"),
    path("money/", money.report, name="money"),
    path("sessions/<int:pk>/", views.roster, name="roster"),
    path("classes/<int:pk>/skills/", views.skills, name="skills"),
    path("classes/<int:pk>/offer-next/", views.offer_next, name="offer_next"),
    path("search/", views.search, name="search"),
    path("families/<int:pk>/", views.family, name="family"),
    path("families/<int:pk>/notes/", views.note_add, name="note_add"),
    path("students/<int:pk>/absence/", views.absence_add, name="absence_add"),
    path("make-up-requests/<int:pk>/decide/", views.makeup_decide, name="makeup_decide"),
]
