from django.urls import path

from . import views

app_name = "benefits"

urlpatterns = [
    path("benefits/makeups/", views.makeups, name="makeups"),
    path("benefits/makeups/<int:pk>/book/", views.makeup_book, name="makeup_book"),
    path("benefits/makeups/request/<int:student_pk>/", views.makeup_request, name="makeup_request"),
    path(
        "benefits/makeups/requests/<int:pk>/withdraw/",
        views.makeup_request_withdraw,
        name="makeup_request_withdraw",
    ),
    path("benefits/bookings/<int:pk>/cancel/", views.booking_cancel, name="booking_cancel"),
    path("benefits/passes/", views.passes, name="passes"),
    path("benefits/passes/<int:pk>/book/", views.pass_book, name="pass_book"),
    path("benefits/credits/", views.credits, name="credits"),
    path("benefits/discounts/", views.discounts, name="discounts"),
    path("benefits/redeem/", views.redeem, name="redeem"),
]
