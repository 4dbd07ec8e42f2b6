"""Long PDFs are laid out in parts on several processes and joined: the
result reads as one document."""

from __future__ import annotations

import io
import re
from decimal import Decimal

from pypdf import PdfReader

from billing import pdf
from billing.models import Document, LedgerEntry, Order
from billing.tasks import document_source
from families.models import Family


def statement(provider, count: int) -> bytes:
    family = Family.objects.create(name="Many Orders")
    orders = Order.objects.bulk_create(
        [Order(family=family, title=f"Lesson fee {n}") for n in range(count)]
    )
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                family=family, order=o, kind="charge", amount=Decimal("2.50"), description=o.title
            )
            for o in orders
        ]
    )
    template, context, rows = document_source(Document(family=family, kind="statement"))
    return pdf.render(template, context, provider=provider, rows=rows)


def test_a_statement_laid_out_in_parts_reads_as_one(in_aquakids, settings):
    settings.PDF_WORKERS = 3
    count = pdf.PARALLEL_ROWS + 60
    reader = PdfReader(io.BytesIO(statement(in_aquakids, count)))
    pages = [page.extract_text() for page in reader.pages]
    text = "\n".join(pages)
    # Every order once, in order; the heading and the total once each.
    found = [int(n) for n in re.findall(r"Lesson fee (\d+)", text)]
    assert found == list(range(count))
    assert text.count("Statement") == 1 and text.count("Total outstanding") == 1, [
        p[-300:] for p in pages if "Total outstanding" in p
    ]
    assert "900,00" in text.split("Total outstanding")[1]  # 360 × 2,50
    # Pages are numbered across the parts: each ends with its own number.
    assert [page.strip().rsplit("\n", 1)[-1] for page in pages] == [
        str(n) for n in range(1, len(pages) + 1)
    ]


def test_a_short_statement_is_laid_out_whole(in_aquakids, settings):
    settings.PDF_WORKERS = 3
    reader = PdfReader(io.BytesIO(statement(in_aquakids, 5)))
    assert len(reader.pages) == 1
    assert reader.pages[0].extract_text().strip().endswith("1")
