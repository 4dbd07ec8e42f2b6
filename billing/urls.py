from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("billing/", views.overview, name="overview"),
    path("billing/orders/<int:pk>/", views.order, name="order"),
    path("billing/orders/<int:pk>/pay/", views.pay, name="pay"),
    path("billing/orders/<int:pk>/pay-in-a-tab/", views.handoff_start, name="handoff_start"),
    path("billing/card-setup/", views.card_setup, name="card_setup"),
    path("billing/orders/<int:pk>/apply-credit/", views.apply_credit, name="apply_credit"),
    path("billing/apply-credit/", views.apply_credit, name="credit_apply"),
    path("billing/credit-notes/<int:pk>/pdf/", views.credit_note_request, name="credit_note"),
    path("billing/orders/<int:pk>/invoice/", views.invoice_request, name="invoice"),
    path("billing/payments/<int:pk>/", views.payment, name="payment"),
    path("billing/payments/<int:pk>/check/", views.payment_check, name="payment_check"),
    path("billing/continue/<str:token>/", views.handoff, name="handoff"),
    path("billing/methods/add/", views.method_add, name="method_add"),
    path("billing/methods/<int:pk>/", views.method_edit, name="method_edit"),
    path("billing/methods/<int:pk>/delete/", views.method_delete, name="method_delete"),
    path("billing/documents/", views.document_request, name="document_request"),
    path("billing/documents/<int:pk>/", views.document, name="document"),
    path("billing/documents/<int:pk>/download/", views.document_download, name="document_download"),
]
