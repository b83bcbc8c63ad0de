"""Every supported document type yields its text; unsupported or broken ones fail with a clear
``last_error`` code and message."""

from __future__ import annotations

import pytest
from documents_fixtures import docx_bytes, pdf_bytes

from assistant_kit.server.knowledge.documents import DocumentError, extract_text, is_supported


def test_pdf_text_of_every_page() -> None:
    text = extract_text("manual.pdf", pdf_bytes("The kettle boils water.", "Descale it monthly."))
    assert "kettle boils water" in text
    assert "Descale it monthly" in text


def test_docx_paragraphs_and_tables() -> None:
    data = docx_bytes("Warranty lasts two years.", table=[["part", "price"], ["lid", "4 EUR"]])
    text = extract_text("terms.DOCX", data)
    assert "Warranty lasts two years." in text
    assert "lid | 4 EUR" in text


def test_html_keeps_text_drops_scripts() -> None:
    html = (
        b"<html><head><style>p{}</style><script>var x=1</script></head>"
        b"<body><h1>Title</h1><p>First &amp; second</p></body></html>"
    )
    text = extract_text("page.html", html)
    assert text.splitlines() == ["Title", "First & second"]


def test_csv_rows_name_their_columns() -> None:
    text = extract_text("prices.csv", b"item,price\nlid,4\nbase,19\n")
    assert text.splitlines() == ["item: lid; price: 4", "item: base; price: 19"]


@pytest.mark.parametrize("name", ["notes.md", "a.txt", "main.py", "lib.rs", "data.json"])
def test_text_types_pass_through(name: str) -> None:
    body = '{"k": "caf\u00e9"}' if name.endswith(".json") else "caf\u00e9 au lait"
    assert extract_text(name, body.encode()) == body


def test_unsupported_type_is_unsupported_file() -> None:
    assert not is_supported("photo.png")
    with pytest.raises(DocumentError) as e:
        extract_text("photo.png", b"\x89PNG")
    assert e.value.code == "unsupported_file"
    assert "photo.png: file type .png is not supported" in e.value.message


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("broken.pdf", b"%PDF-1.4 nothing else", "not a readable PDF"),
        ("broken.docx", b"PK not a zip", "not a readable DOCX"),
        ("bad.json", b'{"a": ', "not valid JSON (line 1"),
        ("latin.txt", "caf\u00e9".encode("latin-1"), "not UTF-8 text"),
        ("blank.md", b"  \n\n", "contains no text"),
    ],
)
def test_broken_files_are_invalid_file(name: str, data: bytes, says: str) -> None:
    with pytest.raises(DocumentError) as e:
        extract_text(name, data)
    assert e.value.code == "invalid_file"
    assert e.value.message.startswith(f"{name}: ")
    assert says in e.value.message
