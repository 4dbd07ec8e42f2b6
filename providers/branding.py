"""What staff may upload as their logo and write as the websites allowed to
frame the portal: checked and normalised here, for the staff settings pages
and the platform admin alike."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _

from portal.uploads import image_clean, stem_of

LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_SIDE = 512


def logo_clean(upload: UploadedFile) -> ContentFile:
    """The uploaded logo re-encoded (portal.uploads.image_clean): PNG, JPEG
    or WebP only, at most 1 MB, no metadata (EXIF, comments, profiles), at
    most 512 px on its longer side, transparency kept for PNG and WebP.
    Anything else is refused with a message for the field; an SVG (whatever
    its name) is told why."""
    name = (upload.name or "").lower()
    if upload.size is None or upload.size <= LOGO_MAX_BYTES:
        upload.seek(0)
        head = upload.read(512).lstrip()
        upload.seek(0)
        if name.endswith((".svg", ".svgz")) or b"<svg" in head.lower() or head.startswith(b"<?xml"):
            raise ValidationError(
                _("SVG logos are not accepted: upload a PNG, JPEG or WebP file."), code="svg"
            )
    return image_clean(
        upload,
        max_bytes=LOGO_MAX_BYTES,
        max_side=LOGO_MAX_SIDE,
        what=_("The logo"),
        stem=stem_of(name, "logo"),
    )


# --- Websites allowed to frame the portal ---------------------------------------------------

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def origin_normalise(text: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port, or None
    when `text` is not an origin (a path, a query, no host...)."""
    text = text.strip()
    if text.endswith("/"):
        text = text[:-1]
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    if parts.path or parts.query or parts.fragment or "*" in host or " " in host:
        return None
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def _is_local(origin: str) -> bool:
    return urlsplit(origin).hostname in LOCAL_HOSTS


def origins_clean(text: str) -> str:
    """The allowed websites, one origin a line, normalised and without
    repeats; a line that is not an origin is refused with its line number."""
    origins: list[str] = []
    errors: list[ValidationError] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        origin = origin_normalise(line)
        if origin is None:
            errors.append(
                ValidationError(
                    _(
                        "Line %(n)d, “%(line)s”, is not a website address: write it as "
                        "https://www.example.com, without a path."
                    )
                    % {"n": number, "line": line.strip()[:80]},
                    code="origin",
                )
            )
        elif origin.startswith("http://") and not _is_local(origin):
            errors.append(
                ValidationError(
                    _(
                        "Line %(n)d, “%(line)s”: the website must use https:// "
                        "(http:// only for localhost)."
                    )
                    % {"n": number, "line": line.strip()[:80]},
                    code="https",
                )
            )
        elif origin not in origins:
            origins.append(origin)
    if errors:
        raise ValidationError(errors)
    return "\n".join(origins)


def validate_embed_origins(value: str) -> None:
    origins_clean(value)
