"""What staff may upload as their logo and write as the websites allowed to
frame the portal: checked and normalised here, for the staff settings pages
and the platform admin alike."""

from __future__ import annotations

import io
from pathlib import PurePath
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_SIDE = 512
# Pillow's format name -> (extension, what the file is saved as).
LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
# An image this large (in pixels) is refused before it is decoded.
_MAX_PIXELS = 40_000_000


def logo_clean(upload: UploadedFile) -> ContentFile:
    """The uploaded logo re-encoded: PNG, JPEG or WebP only, at most 1 MB,
    no metadata (EXIF, comments, profiles), at most 512 px on its longer side,
    transparency kept for PNG and WebP. Anything else is refused with a
    message for the field."""
    name = (upload.name or "").lower()
    if upload.size is not None and upload.size > LOGO_MAX_BYTES:
        raise ValidationError(
            _("The logo is too large: at most 1 MB is accepted (this file is %(size)s).")
            % {"size": _megabytes(upload.size)},
            code="too_large",
        )
    head = _read(upload, 512).lstrip()
    if name.endswith((".svg", ".svgz")) or b"<svg" in head.lower() or head.startswith(b"<?xml"):
        raise ValidationError(
            _("SVG logos are not accepted: upload a PNG, JPEG or WebP file."), code="svg"
        )
    data = _read(upload, LOGO_MAX_BYTES + 1)
    if len(data) > LOGO_MAX_BYTES:
        raise ValidationError(
            _("The logo is too large: at most 1 MB is accepted."), code="too_large"
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            if kind not in LOGO_FORMATS:
                raise ValidationError(
                    _("This file is not a PNG, JPEG or WebP image: upload one of those."),
                    code="format",
                )
            width, height = image.size
            if width * height > _MAX_PIXELS:
                raise ValidationError(
                    _("The image is too large: at most %(n)d megapixels.")
                    % {"n": _MAX_PIXELS // 1_000_000},
                    code="too_large",
                )
            image.load()
            encoded = _reencode(image, kind)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError(
            _("This file is not a PNG, JPEG or WebP image: upload one of those."), code="format"
        ) from None
    stem = PurePath(name).stem[:40] or "logo"
    return ContentFile(encoded, name=f"{stem}.{LOGO_FORMATS[kind]}")


def _read(upload: UploadedFile, size: int) -> bytes:
    upload.seek(0)
    data = upload.read(size)
    upload.seek(0)
    return data


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _reencode(image: Image.Image, kind: str) -> bytes:
    """A fresh image from the pixels alone: nothing of the original file's
    metadata is copied."""
    image = ImageOps.exif_transpose(image) or image
    keeps_alpha = kind in ("PNG", "WEBP")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if keeps_alpha and has_alpha:
        image = image.convert("RGBA")
    else:
        image = image.convert("RGB")
    image.thumbnail((LOGO_MAX_SIDE, LOGO_MAX_SIDE), Image.Resampling.LANCZOS)
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    out = io.BytesIO()
    if kind == "PNG":
        clean.save(out, "PNG", optimize=True)
    elif kind == "WEBP":
        clean.save(out, "WEBP", quality=90)
    else:
        clean.save(out, "JPEG", quality=88, optimize=True)
    return out.getvalue()


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
