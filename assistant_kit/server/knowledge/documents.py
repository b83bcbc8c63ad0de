"""Documents to plain text: what a vector store can ingest, by file name suffix.

Plain text, markdown, HTML, JSON, CSV and source code are decoded as UTF-8; PDF is read with
``pypdf`` and DOCX with ``python-docx``. A file that cannot be ingested raises ``DocumentError``
whose ``code`` and ``message`` become that file's ``last_error`` (OpenAI's codes:
``unsupported_file``, ``invalid_file``); it fails that file, never its batch::

    text = extract_text("guide.pdf", data)       # str, or DocumentError
"""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import PurePosixPath

#: Suffixes read as UTF-8 text as they are (prose, markup and the source code OpenAI accepts).
TEXT_SUFFIXES = frozenset(
    {
        ".txt", ".text", ".md", ".markdown", ".rst", ".tex", ".log",
        ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".go", ".java", ".kt", ".js", ".mjs", ".ts",
        ".tsx", ".jsx", ".php", ".py", ".rb", ".rs", ".sh", ".swift", ".scala", ".sql", ".css",
        ".yaml", ".yml", ".toml", ".ini", ".xml",
    }
)  # fmt: skip
#: Suffixes with a parser of their own.
PARSED_SUFFIXES = frozenset({".html", ".htm", ".json", ".csv", ".pdf", ".docx"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | PARSED_SUFFIXES


class DocumentError(ValueError):
    """A file that cannot be ingested; ``code`` is OpenAI's ``last_error.code``."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def suffix_of(filename: str) -> str:
    return PurePosixPath(filename).suffix.lower()


def is_supported(filename: str) -> bool:
    return suffix_of(filename) in SUPPORTED_SUFFIXES


def extract_text(filename: str, data: bytes) -> str:
    """The text of one document; ``DocumentError`` if its type is unsupported or it is broken."""
    suffix = suffix_of(filename)
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "(no suffix)"
        raise DocumentError(
            "unsupported_file",
            f"{filename}: file type {shown} is not supported for retrieval; supported: "
            + ", ".join(sorted(SUPPORTED_SUFFIXES)),
        )
    if suffix == ".pdf":
        text = _pdf(filename, data)
    elif suffix == ".docx":
        text = _docx(filename, data)
    else:
        decoded = _decode(filename, data)
        if suffix in (".html", ".htm"):
            text = _html(decoded)
        elif suffix == ".json":
            text = _json(filename, decoded)
        elif suffix == ".csv":
            text = _csv(decoded)
        else:
            text = decoded
    if not text.strip():
        raise DocumentError("invalid_file", f"{filename}: the file contains no text to index")
    return text


def _decode(filename: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DocumentError(
            "invalid_file", f"{filename}: not UTF-8 text (byte {e.start} cannot be decoded)"
        ) from None


def _pdf(filename: str, data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError("invalid_file", f"{filename}: the PDF is encrypted")
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as e:
        raise DocumentError("invalid_file", f"{filename}: not a readable PDF ({e})") from None


def _docx(filename: str, data: bytes) -> str:
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise DocumentError("invalid_file", f"{filename}: not a readable DOCX ({e})") from None
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts)


class _TextOfHtml(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template"})
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "pre"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html(text: str) -> str:
    parser = _TextOfHtml()
    parser.feed(text)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _json(filename: str, text: str) -> str:
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise DocumentError(
            "invalid_file", f"{filename}: not valid JSON (line {e.lineno}: {e.msg})"
        ) from None
    return text


def _csv(text: str) -> str:
    """One line per row, each value named by its column, so a chunk stays readable alone."""
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        return text
    header, lines = rows[0], []
    for row in rows[1:]:
        lines.append("; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v))
    return "\n".join(lines)
