"""Every list page of the staff admin in a bounded number of queries: its
columns come with the rows (list_select_related, prefetches), so a list of
141 sessions costs what a list of four families does."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import client_for, login

pytestmark = pytest.mark.django_db

# Session, login, provider, permissions, count, rows, filters' choices.
MOST = 15


def test_every_list_page_in_a_bounded_number_of_queries(aquakids):
    client = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    too_many = []
    for model in list(admin.site._registry):
        connection.set_tenant(aquakids)
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, url
        if len(queries) > MOST:
            too_many.append(f"{url}: {len(queries)} queries")
    assert not too_many, "\n".join(too_many)
