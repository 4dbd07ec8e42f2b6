"""Bank account payments are SEPA Direct Debit: offered to providers who
charge in euros; elsewhere the switch is shown unavailable, with the reason."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from conftest import client_for, login
from providers.models import Provider
from tests.htmlforms import form_data

pytestmark = pytest.mark.django_db


def test_the_switch_cannot_be_on_for_a_currency_sepa_does_not_collect():
    provider = Provider(name="Pound pool", slug="pound-pool", currency="GBP", echecks_enabled=True)
    with pytest.raises(ValidationError) as refused:
        provider.clean()
    assert "charges in GBP" in refused.value.message_dict["echecks_enabled"][0]
    assert not provider.echecks_active
    provider.currency = "EUR"
    provider.clean()
    assert provider.echecks_active


def test_staff_see_the_switch_unavailable_with_the_reason(aquakids):
    Provider.objects.filter(pk=aquakids.pk).update(currency="GBP", echecks_enabled=False)
    owner = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    page = owner.get("/staff/settings/").content.decode()
    assert "SEPA Direct Debit, which collects euros only" in page
    data = form_data(page, "settings-form")
    data["echecks_enabled"] = "on"  # a tampered form: the disabled field keeps its value
    assert owner.post("/staff/settings/", data).status_code == 302
    assert not Provider.objects.get(pk=aquakids.pk).echecks_enabled


def test_euro_providers_switch_it_on(aquakids):
    Provider.objects.filter(pk=aquakids.pk).update(currency="EUR", echecks_enabled=False)
    owner = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    data = form_data(owner.get("/staff/settings/").content.decode(), "settings-form")
    data["echecks_enabled"] = "on"
    assert owner.post("/staff/settings/", data).status_code == 302
    assert Provider.objects.get(pk=aquakids.pk).echecks_enabled
