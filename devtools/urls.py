from django.urls import path

from . import views

# Routed only when settings.BENCH_VIEWS is on (portal/urls.py).
urlpatterns = [path("static/", views.bench_static, name="bench_static")]
