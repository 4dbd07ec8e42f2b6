"""Images people upload (a provider's logo, a child's photo, a problem
report's screenshot): one way to accept them and one way to serve them.

Accepting: the size is capped before anything is decoded; the type is
decided from the content (Pillow), never from the file's name; the pixels are
re-encoded into a fresh file, so nothing of the original's metadata (EXIF with
its location, comments, profiles) is kept, and the stored name's extension is
the real type's. Serving: the content type again comes from the content,
with `X-Content-Type-Options: nosniff`, so a file named `.pdf` is never
served as a PDF.
"""

from __future__ import annotations

import io
from pathlib import PurePath
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's format name -> (extension, content type).
IMAGE_FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
}
ACCEPT = "image/png,image/jpeg,image/webp"
# An image this large (in pixels) is refused before it is decoded.
MAX_PIXELS = 40_000_000
MEGABYTE = 1024 * 1024


def megabytes(size: int) -> str:
    return f"{size / MEGABYTE:.1f} MB"


def _too_large(what: str, max_bytes: int, size: int | None = None) -> ValidationError:
    limit = f"{max_bytes // MEGABYTE} MB"
    if size is None:
        text = _("%(what)s is too large: at most %(limit)s is accepted.")
    else:
        text = _("%(what)s is too large: at most %(limit)s is accepted (this file is %(size)s).")
    message = text % {"what": what, "limit": limit, "size": megabytes(size or 0)}
    return ValidationError(message, code="too_large")


def _not_an_image() -> ValidationError:
    return ValidationError(
        _("This file is not a PNG, JPEG or WebP image: upload one of those."), code="format"
    )


def image_clean(
    upload: UploadedFile, *, max_bytes: int, max_side: int, what: str, stem: str = "image"
) -> ContentFile:
    """The uploaded image re-encoded: PNG, JPEG or WebP (decided from the
    content) of at most `max_bytes`, at most `max_side` pixels on its longer
    side, without metadata, transparency kept for PNG and WebP, named
    `<stem>.<real extension>`. Anything else is refused (ValidationError with
    a message for the field; `what` names the thing: "The logo")."""
    if upload.size is not None and upload.size > max_bytes:
        raise _too_large(what, max_bytes, upload.size)
    data = _read(upload, max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(what, max_bytes)
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            if kind not in IMAGE_FORMATS:
                raise _not_an_image()
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValidationError(
                    _("The image is too large: at most %(n)d megapixels.")
                    % {"n": MAX_PIXELS // 1_000_000},
                    code="too_large",
                )
            image.load()
            encoded = _reencode(image, kind, max_side)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise _not_an_image() from None
    return ContentFile(encoded, name=f"{stem}.{IMAGE_FORMATS[kind][0]}")


def _read(upload: UploadedFile, size: int) -> bytes:
    upload.seek(0)
    data = upload.read(size)
    upload.seek(0)
    return data


def _reencode(image: Image.Image, kind: str, max_side: int) -> bytes:
    """A fresh image from the pixels alone: nothing of the original file's
    metadata is copied."""
    image = ImageOps.exif_transpose(image) or image
    keeps_alpha = kind in ("PNG", "WEBP")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if keeps_alpha and has_alpha:
        image = image.convert("RGBA")
    else:
        image = image.convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
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


def image_kind(file: Any) -> str | None:
    """The stored file's image format (a key of IMAGE_FORMATS) read from its
    content, or None when it is not one of those."""
    try:
        file.seek(0)
        with Image.open(file) as image:
            kind = image.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        kind = None
    finally:
        file.seek(0)
    return kind if kind in IMAGE_FORMATS else None


def image_response(field_file: Any, *, stem: str) -> FileResponse:
    """Serve a stored upload by what it holds: an image inline with its real
    content type, anything else (a file stored before uploads were
    re-encoded) as a download of unknown type; never sniffed by the browser."""
    file = field_file.open("rb")
    kind = image_kind(file)
    if kind is None:
        response = FileResponse(
            file,
            content_type="application/octet-stream",
            as_attachment=True,
            filename=f"{stem}.bin",
        )
    else:
        extension, content_type = IMAGE_FORMATS[kind]
        response = FileResponse(file, content_type=content_type, filename=f"{stem}.{extension}")
    response["X-Content-Type-Options"] = "nosniff"
    return response


def stem_of(name: str | None, default: str) -> str:
    """A short file name stem from an uploaded name (for the stored file)."""
    return PurePath((name or "").lower()).stem[:40] or default


class ImageUploadField(forms.FileField):
    """A form field for an uploaded image: capped and re-encoded on clean
    (image_clean), before the model or a service sees it. Clearing
    (ClearableFileInput) and keeping the current file work as for FileField."""

    def __init__(
        self, *, max_bytes: int, max_side: int, what: str | Promise, stem: str, **kwargs: Any
    ) -> None:
        self.max_bytes, self.max_side, self.what, self.stem = max_bytes, max_side, what, stem
        kwargs.setdefault("widget", forms.ClearableFileInput(attrs={"accept": ACCEPT}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        value = super().clean(data, initial)
        if isinstance(value, UploadedFile):
            return image_clean(
                value,
                max_bytes=self.max_bytes,
                max_side=self.max_side,
                what=str(self.what),
                stem=self.stem,
            )
        return value
