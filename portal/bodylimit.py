"""A form sent with too much in it answers with the form, what was typed and
a message, never a bare 400.

- A file larger than UPLOAD_MAX_BYTES is skipped while the request is read
  (CappedUploadHandler, first of FILE_UPLOAD_HANDLERS): the text fields
  around it are still read.
- A body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django's RequestDataTooBig) keeps
  the fields that can be read from its start and drops any value too long to
  be typed.

Either way nothing is saved: the page is shown again as for a GET (which
changes nothing), the form filled in from what was read where the view binds
it, with the message above it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpResponseRedirect, QueryDict
from django.http.multipartparser import MultiPartParser
from django.utils.datastructures import ImmutableList, MultiValueDict
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

# A value longer than this was not typed into one of our forms.
LONGEST_TYPED = 10_000


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


class CappedUploadHandler(FileUploadHandler):
    """Skips a file once more than UPLOAD_MAX_BYTES of it arrived, noting it
    on the request (`request.uploads_refused`)."""

    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.UPLOAD_MAX_BYTES:
            if self.request is not None:
                refused = getattr(self.request, "uploads_refused", [])
                refused.append(self.file_name or self.field_name)
                self.request.uploads_refused = refused
            raise SkipFile
        return raw_data

    def file_complete(self, file_size):
        return None


def _salvage(request) -> QueryDict:
    """The form fields at the start of an over-large url-encoded body."""
    kept = QueryDict(mutable=True)
    content_type = request.META.get("CONTENT_TYPE", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return kept
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
    try:
        data = request._stream.read(limit)
    except Exception:  # noqa: BLE001 - nothing more can be read
        return kept
    pairs = parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True)
    if len(data) >= limit and pairs:
        pairs = pairs[:-1]  # cut off mid-value
    for name, value in pairs[: settings.DATA_UPLOAD_MAX_NUMBER_FIELDS or 1000]:
        if len(value) <= LONGEST_TYPED:
            kept.appendlist(name, value)
    return kept


def _keeping_fields(request):
    """`request.parse_file_upload` that, when the form fields are over the
    limit, keeps those read before it (the files are dropped)."""

    def parse(META, post_data):
        request.upload_handlers = ImmutableList(request.upload_handlers)
        parser = MultiPartParser(META, post_data, request.upload_handlers, request.encoding)
        try:
            return parser.parse()
        except (RequestDataTooBig, TooManyFieldsSent):
            request.body_too_large = True
            kept = QueryDict(mutable=True)
            for name, values in getattr(parser, "_post", QueryDict()).lists():
                for value in values:
                    if len(value) <= LONGEST_TYPED:
                        kept.appendlist(name, value)
            return kept, MultiValueDict()

    return parse


class BodyLimitMiddleware:
    """Placed before CsrfViewMiddleware (which reads the form first)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view, args, kwargs):
        if request.method != "POST" or getattr(view, "csrf_exempt", False):
            return None
        user = getattr(request, "user", None)
        if getattr(view, "login_required", True) and not (user and user.is_authenticated):
            return None  # LoginRequiredMiddleware answers
        if request.content_type == "multipart/form-data":
            request.parse_file_upload = _keeping_fields(request)
        try:
            request.POST  # noqa: B018 - reads the body (and files) now
            request.FILES  # noqa: B018
        except (RequestDataTooBig, TooManyFieldsSent):
            request._post, request._files = _salvage(request), MultiValueDict()
            request.body_too_large = True
        if getattr(request, "body_too_large", False):
            message = _(
                "What you sent is too large (at most %(size)s): nothing was saved. "
                "Shorten the text and send the form again."
            ) % {"size": megabytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440)}
        else:
            refused = getattr(request, "uploads_refused", [])
            if not refused:
                return None
            message = _(
                "“%(name)s” is larger than %(size)s and was not uploaded: nothing was saved. "
                "Choose a smaller file and send the form again."
            ) % {"name": ", ".join(refused)[:120], "size": megabytes(settings.UPLOAD_MAX_BYTES)}
        messages.error(request, message)
        request.method = "GET"  # shown again, changing nothing
        response = view(request, *args, **kwargs)
        if response.status_code == 405:  # a POST-only action: back to where it was sent from
            back = request.headers.get("Referer", "")
            safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
            return HttpResponseRedirect(back if safe and back else "/")
        return response
