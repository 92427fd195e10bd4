"""Word, PowerPoint, Excel, CSV, HTML, image and scanned-PDF test files built in memory."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

FACT = "The lighthouse budget for 2025 is 4.2 million kroner, approved in Bergen."


def docx_bytes(fact: str = FACT) -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("Annual plan", level=1)
    document.add_paragraph("This plan covers the coastal stations and their staff.")
    document.add_heading("Lighthouse budget", level=2)
    document.add_paragraph(fact)
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Station", "Keepers"
    table.rows[1].cells[0].text, table.rows[1].cells[1].text = "Bergen", "3"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pptx_bytes(fact: str = FACT) -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    layout = presentation.slide_layouts[1]  # title and content
    for title, body in [
        ("Welcome", "Agenda for the coastal stations meeting."),
        ("Budget", fact),
        ("Staff", "Keepers rotate every six weeks."),
    ]:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    notes = presentation.slides[2].notes_slide.notes_text_frame
    notes.text = "Mention the new radio beacon in Stavanger."
    presentation.slides[0].shapes.add_textbox(Inches(1), Inches(6), Inches(4), Inches(1))
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    summary = workbook.active
    summary.title = "Summary"
    summary.append(["Item", "Note"])
    summary.append(["Plan", "Coastal stations plan for 2025"])
    budget = workbook.create_sheet("Budget 2025")
    budget.append(["Station", "Budget (million kroner)", "City"])
    budget.append(["Lighthouse", 4.2, "Bergen"])
    budget.append(["Radio beacon", 1.1, "Stavanger"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes() -> bytes:
    return (
        b"Station,Budget (million kroner),City\nLighthouse,4.2,Bergen\nRadio beacon,1.1,Stavanger\n"
    )


def html_bytes(fact: str = FACT) -> bytes:
    return f"""<!doctype html><html><head><title>Coastal plan</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/login">Log in</a></nav>
<main><article><h1>Coastal plan</h1>
<p>This page describes the plan for the coastal stations and the people who run them.</p>
<h2>Lighthouse budget</h2><p>{fact}</p>
<h2>Staff</h2><p>Keepers rotate every six weeks between the northern stations.</p>
</article></main>
<footer>Copyright 2025. We use cookies to improve this site. Accept all cookies.</footer>
</body></html>""".encode()


def text_image(lines: Sequence[str], *, font_size: int = 40, kind: str = "PNG") -> bytes:
    """Black text on white, drawn with Pillow's built-in scalable font."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=font_size)
    width = max(int(font.getlength(line)) for line in lines) + 80
    height = (font_size + 24) * len(lines) + 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((40, 30 + index * (font_size + 24)), line, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


def rendered_pages(pdf: Path | bytes, pages: Sequence[int], dpi: int = 150) -> list[object]:
    """PIL images of ``pages`` (counting from 1) of a PDF, rendered in memory."""
    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(pdf if isinstance(pdf, bytes) else pdf.read_bytes())
    return [source[number - 1].render(scale=dpi / 72).to_pil().convert("RGB") for number in pages]


def image_only_pdf(images: Sequence[object], dpi: int = 150) -> bytes:
    """The images saved as an image-only PDF (no text layer), in memory."""
    first, *rest = images
    buffer = io.BytesIO()
    first.save(  # type: ignore[attr-defined]
        buffer, format="PDF", save_all=True, append_images=rest, resolution=float(dpi)
    )
    return buffer.getvalue()


def png_bytes(image: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # type: ignore[attr-defined]
    return buffer.getvalue()
