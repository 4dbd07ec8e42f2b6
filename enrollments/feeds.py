"""iCalendar feeds of a family's (or one child's) sessions.

Events carry the provider's time zone (with its VTIMEZONE), a stable UID per
student and session, SEQUENCE bumped on every change, STATUS:CANCELLED for
cancelled sessions, and the livestream link where the provider uses them.
"""

from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar, Event, vText

from portal import clock

from . import selectors

PAST_DAYS = 30
FUTURE_DAYS = 180


def calendar_for(*, provider, students, host: str, feed) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//Family portal//Sessions//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    name = f"{provider.name}: {feed.student.first_name if feed.student else feed.family.name}"
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", provider.time_zone)
    calendar.add("refresh-interval", timedelta(hours=6), parameters={"VALUE": "DURATION"})
    zone = provider.zone
    now = clock.now()
    items = selectors.sessions_for(
        students, start=now - timedelta(days=PAST_DAYS), end=now + timedelta(days=FUTURE_DAYS)
    )
    for item in items:
        session, klass = item.session, item.klass
        event = Event()
        event.add("uid", f"session-{session.pk}-student-{item.student.pk}@{host}")
        event.add("dtstamp", session.updated_at)
        event.add("last-modified", session.updated_at)
        event.add("sequence", session.sequence)
        event.add("dtstart", session.starts_at.astimezone(zone))
        event.add("dtend", session.ends_at.astimezone(zone))
        event.add("summary", f"{item.student.first_name}: {klass.programme.name}")
        location = klass.location.name + (
            f", {klass.location.address}" if klass.location.address else ""
        )
        event.add("location", vText(location))
        lines = [str(klass)]
        if klass.instructor:
            lines.append(f"Instructor: {klass.instructor.name}")
        if session.note:
            lines.append(session.note)
        if session.is_cancelled:
            event.add("status", "CANCELLED")
            lines.insert(
                0, "CANCELLED" + (f": {session.cancel_reason}" if session.cancel_reason else "")
            )
        else:
            event.add("status", "CONFIRMED")
        if item.absence_reported:
            lines.append("Absence reported")
        if provider.livestream_enabled and session.livestream_url:
            lines.append(f"Livestream: {session.livestream_url}")
            event.add("url", session.livestream_url)
        event.add("description", "\n".join(lines))
        calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
