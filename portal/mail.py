"""Development e-mail: every message is written to a folder per provider and
shown on the outbox page, so nothing sent in development is lost."""

from __future__ import annotations

import re
import time
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

from portal.tenancy import current_schema


def outbox_folder(schema_name: str) -> Path:
    return Path(settings.EMAIL_FOLDER) / schema_name


class FolderBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        folder = outbox_folder(current_schema())
        folder.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            stamp = f"{time.time_ns():020d}"  # sorts newest last; not shown
            slug = re.sub(r"[^a-z0-9]+", "-", message.subject.lower()).strip("-")[:40]
            (folder / f"{stamp}-{slug}.eml").write_bytes(message.message().as_bytes())
        return len(email_messages)
