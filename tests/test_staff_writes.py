"""Staff writes go through the services and keep their rules: a full class
offers the waitlist, managers alone go over capacity (with a reason in the
history), a waitlisted child is offered a held place that the family accepts
or declines and that lapses to the next in line, attendance only for
children booked at the session, absences with their make-up tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from accounts.models import User
from conftest import client_for, login
from enrollments import selectors, services
from enrollments.models import Absence, Enrollment, EnrollmentChange, Session, WaitlistOffer
from enrollments.tests.factories import ClassFactory, FamilyFactory, StudentFactory, enrol
from families.models import Family, Guardian
from portal.clock import today

pytestmark = pytest.mark.django_db


def enrol_in_admin(client, student, klass, **extra):
    return client.post(
        "/admin/enrollments/enrollment/add/",
        {"student": student.pk, "klass": klass.pk, "start_date": today().isoformat(), **extra},
    )


@pytest.fixture
def full_class(aquakids):
    connection.set_tenant(aquakids)
    klass = ClassFactory(capacity=1)
    enrol(StudentFactory(), klass)
    return klass


def test_the_desk_enrolling_into_a_full_class_is_offered_the_waitlist(aquakids, full_class):
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    connection.set_tenant(aquakids)
    kid = StudentFactory()
    refused = enrol_in_admin(desk, kid, full_class).content.decode()
    assert "This class is full: put the child on its waitlist" in refused
    assert "If the class is full, put the child on its waitlist" in refused
    connection.set_tenant(aquakids)
    assert not Enrollment.objects.filter(student=kid).exists()
    over = enrol_in_admin(desk, kid, full_class, over_capacity_reason="Sibling").content.decode()
    assert "Only a manager may enrol over" in over
    assert enrol_in_admin(desk, kid, full_class, waitlist="on").status_code == 302
    connection.set_tenant(aquakids)
    waiting = Enrollment.objects.get(student=kid)
    assert waiting.status == "waitlisted"
    change = waiting.changes.get()
    assert change.action == "waitlisted" and change.actor_name == "Front desk (staff)"


def test_a_manager_goes_over_capacity_with_a_reason_kept_in_the_history(aquakids, full_class):
    manager = login(client_for("aquakids"), aquakids, "manager@aquakids.test")
    connection.set_tenant(aquakids)
    kid = StudentFactory()
    saved = enrol_in_admin(manager, kid, full_class, over_capacity_reason="Twin of Mia")
    assert saved.status_code == 302
    connection.set_tenant(aquakids)
    placed = Enrollment.objects.get(student=kid)
    assert placed.status == "active"
    assert placed.changes.get().note == "Over capacity: Twin of Mia"
    assert Enrollment.objects.filter(klass=full_class, status="active").count() == 2


def test_an_offered_place_is_held_accepted_from_the_link_and_lapses_to_the_next(
    aquakids, full_class, django_capture_on_commit_callbacks
):
    import re

    connection.set_tenant(aquakids)
    desk = User.objects.get(email="desk@aquakids.test")
    first, second = [enrol(StudentFactory(family=FamilyFactory()), full_class) for _ in range(2)]
    parents = []
    for waiting in (first, second):
        user = User.objects.create_user(
            email=f"p{waiting.pk}@example.test", password="Parent-pass-1234"
        )
        parents.append(
            Guardian.objects.create(
                family=waiting.student.family,
                first_name="Pat",
                last_name="Parent",
                is_primary=True,
                user=user,
            )
        )
    assert {first.status, second.status} == {"waitlisted"}
    holder = Enrollment.objects.get(klass=full_class, status="active")
    holder.status = "dropped"
    holder.save(update_fields=["status"])

    with django_capture_on_commit_callbacks(execute=True):
        offer = services.waitlist_offer(enrollment=first, actor=desk)
    assert offer.state == "open"
    assert offer.expires_at > timezone.now() + timedelta(hours=47)
    # The place is held: the next enrolment is waitlisted.
    assert selectors.class_free_places(full_class, on=today()) == 0
    late = services.enrollment_create(
        student=StudentFactory(), klass=full_class, start_date=today(), actor=desk
    )
    assert late.status == "waitlisted"
    message = next(m for m in mail.outbox if m.to == [parents[0].user.email])
    link = re.search(r"https://aquakids\.localhost(/enrolments/offers/\S+/)", message.body)
    assert link, message.body

    # Another family cannot open it.
    other = login(client_for("aquakids"), aquakids, "ana@aquakids.test")
    assert other.get(link.group(1)).status_code == 404

    # It lapses: the next child in line is offered the place.
    WaitlistOffer.objects.filter(pk=offer.pk).update(expires_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert services.waitlist_offers_lapse() == 1
    assert WaitlistOffer.objects.get(pk=offer.pk).state == "lapsed"
    following = WaitlistOffer.objects.get(enrollment=second)
    assert following.state == "open" and following.offered_by_name == "The portal"

    family = login(client_for("aquakids"), aquakids, parents[1].user.email)
    page = family.get(f"/enrolments/offers/{following.token}/").content.decode()
    assert "Accept the place" in page
    family.post(f"/enrolments/offers/{following.token}/", {"answer": "accept"})
    connection.set_tenant(aquakids)
    assert Enrollment.objects.get(pk=second.pk).status == "active"
    assert WaitlistOffer.objects.get(pk=following.pk).state == "accepted"
    assert list(
        EnrollmentChange.objects.filter(enrollment=first).values_list("action", flat=True)
    ) == ["waitlisted", "offered", "offer_lapsed"]
    # The lapsed offer's link no longer works.
    stale = login(client_for("aquakids"), aquakids, parents[0].user.email)
    assert "no longer open" in stale.get(link.group(1)).content.decode()


def test_the_offer_appears_in_the_admin_with_its_state(aquakids, full_class):
    connection.set_tenant(aquakids)
    waiting = enrol(StudentFactory(), full_class)
    Enrollment.objects.filter(klass=full_class, status="active").update(status="dropped")
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    response = desk.post(
        "/admin/enrollments/enrollment/",
        {"action": "offer_place", "_selected_action": [waiting.pk]},
        follow=True,
    ).content.decode()
    assert "place offered; the family is e-mailed" in response
    listing = desk.get("/admin/enrollments/waitlistoffer/").content.decode()
    assert "Waiting for the family" in listing
    # A second offer for the same child is refused with the reason.
    again = desk.post(
        "/admin/enrollments/enrollment/",
        {"action": "offer_place", "_selected_action": [waiting.pk]},
        follow=True,
    ).content.decode()
    assert "on offer to this child already" in again


def test_attendance_only_for_children_booked_at_the_session(aquakids):
    connection.set_tenant(aquakids)
    klass, elsewhere = ClassFactory(), ClassFactory()
    booked, stranger = enrol(StudentFactory(), klass), enrol(StudentFactory(), elsewhere)
    session = Session.objects.filter(klass=klass).order_by("starts_at").first()
    desk = User.objects.get(email="desk@aquakids.test")
    from enrollments.exceptions import EnrollmentError

    with pytest.raises(EnrollmentError, match="not booked at this session"):
        services.attendance_record(
            session=session, enrollment=stranger, status="present", actor=desk
        )
    mark = services.attendance_record(
        session=session, enrollment=booked, status="present", actor=desk
    )
    assert mark.status == "present"


def test_an_absence_recorded_by_the_desk_issues_tokens_by_the_rules(aquakids):
    connection.set_tenant(aquakids)
    from benefits.models import MakeupToken

    enrollment = Enrollment.objects.filter(
        status="active", kind="regular", student__family=Family.objects.get(name="Novak")
    ).first()
    before = MakeupToken.objects.filter(student=enrollment.student).count()
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    start = today() + timedelta(days=3)
    saved = desk.post(
        "/admin/enrollments/absence/add/",
        {
            "student": enrollment.student_id,
            "starts_at_0": start.isoformat(),
            "starts_at_1": "00:00",
            "ends_at_0": (start + timedelta(days=14)).isoformat(),
            "ends_at_1": "00:00",
            "reason": "Holiday (phoned in)",
        },
    )
    assert saved.status_code == 302
    connection.set_tenant(aquakids)
    absence = Absence.objects.get(reason="Holiday (phoned in)")
    assert absence.created_by.email == "desk@aquakids.test" and absence.marks.exists()
    assert MakeupToken.objects.filter(student=enrollment.student).count() > before


def test_the_family_sees_the_held_place_on_the_dashboard_and_the_childs_page(aquakids, ana):
    connection.set_tenant(aquakids)
    novak = Family.objects.get(name="Novak")
    leo = novak.students.get(first_name="Leo")
    klass = ClassFactory(capacity=1)
    enrol(StudentFactory(), klass)
    waiting = enrol(leo, klass)
    Enrollment.objects.filter(klass=klass, status="active").update(status="dropped")
    offer = services.waitlist_offer(
        enrollment=waiting, actor=User.objects.get(email="desk@aquakids.test")
    )
    dashboard = ana.get("/").content.decode()
    assert "it is held for you until" in dashboard
    assert f"/enrolments/offers/{offer.token}/" in dashboard
    page = ana.get(f"/students/{leo.pk}/enrollments/").content.decode()
    assert f"/enrolments/offers/{offer.token}/" in page


def test_adjusting_a_pass_or_withdrawing_credit_refuses_on_the_form_and_saves_nothing(aquakids):
    from benefits.models import CreditGrant, CreditUse, Pass, PassEvent

    connection.set_tenant(aquakids)
    card = Pass.objects.get(name="10-visit family swim card")
    grant = CreditGrant.objects.filter(family__name="Novak").order_by("pk").first()
    events, uses = PassEvent.objects.count(), CreditUse.objects.count()
    from tests.htmlforms import form_data

    manager = login(client_for("aquakids"), aquakids, "manager@aquakids.test")

    def submit(url, form_id, **values):
        data = form_data(manager.get(url).content.decode(), form_id)
        return manager.post(url, {**data, **values})

    pass_url = f"/admin/benefits/pass/{card.pk}/change/"
    page = submit(pass_url, "pass_form", adjust_by="-2", adjust_reason="").content.decode()
    assert "Say why the pass is adjusted." in page
    page = submit(
        f"/admin/benefits/creditgrant/{grant.pk}/change/",
        "creditgrant_form",
        withdraw_amount="9999",
        withdraw_reason="Typo",
    ).content.decode()
    assert "You can withdraw up to" in page
    connection.set_tenant(aquakids)
    assert (PassEvent.objects.count(), CreditUse.objects.count()) == (events, uses)
    done = submit(pass_url, "pass_form", adjust_by="-1", adjust_reason="Visit taken at the desk")
    assert done.status_code == 302
    connection.set_tenant(aquakids)
    adjusted = PassEvent.objects.latest("pk")
    assert adjusted.kind == "adjusted" and adjusted.actor.email == "manager@aquakids.test"


def test_the_desk_transfers_a_child_with_the_same_rules_as_parents(aquakids):
    from enrollments.models import Programme

    connection.set_tenant(aquakids)
    programme = Programme.objects.create(name="Desk transfer")
    start, full, free = (
        ClassFactory(programme=programme, capacity=c, sessions=False) for c in (2, 1, 2)
    )
    enrol(StudentFactory(), full)
    moving = enrol(StudentFactory(), start)
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")
    chosen = {"action": "transfer", "_selected_action": [moving.pk]}
    refused = desk.post(
        "/admin/enrollments/enrollment/", {**chosen, "to_class": full.pk, "apply": "1"}
    ).content.decode()
    assert "the last place in that class was just taken" in refused
    done = desk.post(
        "/admin/enrollments/enrollment/", {**chosen, "to_class": free.pk, "apply": "1"}
    )
    assert done.status_code == 302
    connection.set_tenant(aquakids)
    moved = Enrollment.objects.get(pk=moving.pk)
    assert moved.status == "transferred" and moved.transferred_to.klass_id == free.pk
    assert moved.changes.get(action="transferred").actor_name == "Front desk (staff)"


def test_leaving_the_waitlist_with_a_place_on_offer_passes_it_on(aquakids, full_class):
    connection.set_tenant(aquakids)
    desk = User.objects.get(email="desk@aquakids.test")
    first, second = enrol(StudentFactory(), full_class), enrol(StudentFactory(), full_class)
    Enrollment.objects.filter(klass=full_class, status="active").update(status="dropped")
    offer = services.waitlist_offer(enrollment=first, actor=desk)
    services.waitlist_cancel(enrollment=first, actor=desk)
    assert WaitlistOffer.objects.get(pk=offer.pk).state == "declined"
    assert WaitlistOffer.objects.get(enrollment=second).state == "open"


def test_a_view_only_login_cannot_run_a_write_action(aquakids):
    connection.set_tenant(aquakids)
    klass = ClassFactory(sessions=False)
    desk = login(client_for("aquakids"), aquakids, "desk@aquakids.test")  # views classes only
    desk.post(
        "/admin/enrollments/class/", {"action": "generate_sessions", "_selected_action": [klass.pk]}
    )
    connection.set_tenant(aquakids)
    assert not Session.objects.filter(klass=klass).exists()
    owner = login(client_for("aquakids"), aquakids, "staff@aquakids.test")
    owner.post(
        "/admin/enrollments/class/", {"action": "generate_sessions", "_selected_action": [klass.pk]}
    )
    connection.set_tenant(aquakids)
    assert Session.objects.filter(klass=klass).exists()


def test_staff_name_a_familys_primary_guardian(aquakids):
    from families.services import guardian_make_primary

    connection.set_tenant(aquakids)
    family = FamilyFactory()
    first = Guardian.objects.create(family=family, first_name="A", last_name="X", is_primary=True)
    second = Guardian.objects.create(family=family, first_name="B", last_name="X")
    guardian_make_primary(guardian=second, actor=User.objects.get(email="desk@aquakids.test"))
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_primary and not first.is_primary
