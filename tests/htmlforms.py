"""Read a page's form as a browser would submit it: every input, select and
textarea with its current value (checked boxes only, selected options)."""

from __future__ import annotations

from html.parser import HTMLParser


class _FormReader(HTMLParser):
    def __init__(self, form_id: str | None):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.forms: list[list[tuple[str, str]]] = []
        self.in_form = False
        self.select: str | None = None
        self.select_first: str | None = None
        self.select_chosen = False
        self.textarea: str | None = None
        self.text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (self.form_id is None or a.get("id") == self.form_id):
            self.in_form = True
            self.forms.append([])
            return
        if not self.in_form:
            return
        data = self.forms[-1]
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            data.append((name, a.get("value") or ("on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self.select, self.select_first, self.select_chosen = name, None, False
            self.multiple = "multiple" in a
        elif tag == "option" and self.select:
            value = a.get("value", "")
            if self.select_first is None and not self.multiple:
                self.select_first = value
            if "selected" in a:
                data.append((self.select, value))
                self.select_chosen = True
        elif tag == "textarea" and name:
            self.textarea, self.text = name, ""

    def handle_endtag(self, tag):
        if tag == "form" and self.in_form:
            self.in_form = False
        elif tag == "select" and self.select:
            if not self.select_chosen and self.select_first is not None:
                self.forms[-1].append((self.select, self.select_first))
            self.select = None
        elif tag == "textarea" and self.textarea:
            self.forms[-1].append((self.textarea, self.text))
            self.textarea = None

    def handle_data(self, data):
        if self.textarea:
            self.text += data


def form_data(html: str, form_id: str | None = None) -> dict[str, list[str]]:
    """The first form (or the form with this id) as a dict of lists."""
    reader = _FormReader(form_id)
    reader.feed(html)
    if not reader.forms:
        raise AssertionError(f"no form {form_id or ''} on the page")
    data: dict[str, list[str]] = {}
    for name, value in reader.forms[0]:
        data.setdefault(name, []).append(value)
    return data
