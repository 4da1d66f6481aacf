"""What a file is, decided from its bytes, and what it may be called.

Plain Python (no I/O beyond what is handed in). The type of an upload is
decided from its content's magic bytes against an allow-list, never from the
name or a header the client sends:

| type | media type | magic |
| --- | --- | --- |
| pdf | application/pdf | ``%PDF-`` at offset 0 |
| png | image/png | ``89 50 4E 47 0D 0A 1A 0A`` |
| jpeg | image/jpeg | ``FF D8 FF`` |
| heic | image/heic | ISO-BMFF ``ftyp`` box at offset 4 with a HEIF brand |
| docx | application/vnd.openxmlformats-officedocument.wordprocessingml.document | ZIP with ``[Content_Types].xml`` and ``word/document.xml``, no macros |
| odt | application/vnd.oasis.opendocument.text | ZIP whose ``mimetype`` member says ``application/vnd.oasis.opendocument.text`` |
| text | text/plain | no magic: valid UTF-8 throughout, no NUL or control characters but tab, LF, CR, FF |

Refused with 415: anything else, and by name HTML, SVG/XML, scripts (``#!``) and
executables (PE, ELF, Mach-O, Java class, WebAssembly).

The polyglot rule (422): a file of an allowed type whose first 1 KB holds an
HTML or script marker (``<html``, ``<script``, ``<svg``, ``<!doctype``, ``<?xml``,
``javascript:``, …) is refused, whatever its magic. Browsers sniff HTML from the
first 512 bytes; downloads are also sent as attachments with ``nosniff``, so this is
a second wall, not the only one.

The name rule (422): when the user's filename ends in an extension that belongs
to another type (``report.pdf`` holding a PNG, ``page.html`` holding text) the
upload is refused; an unknown or missing extension gets the type's own one added.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import IO
from urllib.parse import quote

from chassis.problems import DomainError, Unprocessable

HEAD_BYTES = 8192  # enough for every magic and the 1 KB marker window
MARKER_WINDOW = 1024
MAX_LABEL_CHARS = 120


class UnsupportedMediaType(DomainError):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


@dataclass(frozen=True)
class FileType:
    key: str
    media_type: str
    extensions: tuple[str, ...]  # the first is the canonical one


TYPES = {
    t.key: t
    for t in (
        FileType("pdf", "application/pdf", (".pdf",)),
        FileType("png", "image/png", (".png",)),
        FileType("jpeg", "image/jpeg", (".jpg", ".jpeg", ".jpe", ".jfif")),
        FileType("heic", "image/heic", (".heic", ".heif")),
        FileType("text", "text/plain", (".txt", ".text", ".md", ".log", ".csv")),
        FileType("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",)),
        FileType("odt", "application/vnd.oasis.opendocument.text", (".odt",)),
    )
}
MEDIA_TYPES = tuple(t.media_type for t in TYPES.values())
_ALLOWED_EXTENSIONS = {ext: key for key, t in TYPES.items() for ext in t.extensions}
# extensions of what is never accepted: a name ending so never labels an accepted file
_DANGEROUS_EXTENSIONS = frozenset({
    ".htm", ".html", ".xhtml", ".shtml", ".svg", ".svgz", ".xml", ".xsl", ".js", ".mjs", ".jsx", ".ts",
    ".vbs", ".vbe", ".wsf", ".hta", ".ps1", ".psm1", ".bat", ".cmd", ".sh", ".bash", ".zsh", ".py", ".pl",
    ".rb", ".php", ".asp", ".aspx", ".jsp", ".exe", ".dll", ".com", ".scr", ".msi", ".msp", ".jar", ".class",
    ".apk", ".app", ".dmg", ".elf", ".bin", ".lnk", ".url", ".reg", ".cpl", ".docm", ".dotm", ".xlsm",
    ".pptm", ".swf", ".wasm", ".zip", ".rar", ".7z", ".iso", ".eml", ".mht", ".mhtml",
})

HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})
HTML_MARKERS = (b"<!doctype", b"<html", b"<head", b"<body", b"<script", b"<svg", b"<iframe", b"<object",
                b"<embed", b"<?xml", b"<style", b"<meta", b"<link", b"<form", b"<img", b"javascript:",
                b"vbscript:")
_EXECUTABLES = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xfe\xed\xfa\xce", "a macOS program"), (b"\xfe\xed\xfa\xcf", "a macOS program"),
    (b"\xce\xfa\xed\xfe", "a macOS program"), (b"\xcf\xfa\xed\xfe", "a macOS program"),
    (b"\xca\xfe\xba\xbe", "a program"),
    (b"\x00asm", "a WebAssembly program"),
    (b"#!", "a script"),
)
_TEXT_CONTROLS = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


# --- the type ----------------------------------------------------------------------------------------
def sniff(head: bytes) -> FileType:
    """The allowed type of a file starting with ``head`` (up to HEAD_BYTES); raises 415 or 422."""
    if not head:
        raise Unprocessable("The file is empty.")
    for magic, what in _EXECUTABLES:
        if head.startswith(magic):
            raise UnsupportedMediaType(f"This looks like {what}; programs and scripts cannot be shared here.")
    found = _by_magic(head)
    lowered = head[:MARKER_WINDOW].lower()
    if found is None:
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
        if stripped.startswith((b"<!doctype", b"<html", b"<svg", b"<?xml", b"<head", b"<body", b"<script")):
            raise UnsupportedMediaType("Web pages, SVG and XML files cannot be shared here.")
        if not _looks_like_text(head):
            raise UnsupportedMediaType(
                "Only PDF, PNG, JPEG, HEIC, plain text, DOCX and ODT files can be shared here.")
        found = TYPES["text"]
    if any(marker in lowered for marker in HTML_MARKERS):
        raise Unprocessable("The file holds web page or script content at its start, so it cannot be shared.")
    return found


def _by_magic(head: bytes) -> FileType | None:
    if head.startswith(b"%PDF-"):
        return TYPES["pdf"]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return TYPES["png"]
    if head.startswith(b"\xff\xd8\xff"):
        return TYPES["jpeg"]
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return TYPES["heic"]
    if head.startswith(b"PK\x03\x04"):
        # an ODT names itself in its first, stored member; anything else zipped must prove to be a DOCX
        name_len = int.from_bytes(head[26:28], "little")
        data_at = 30 + name_len + int.from_bytes(head[28:30], "little")
        if head[30:30 + name_len] == b"mimetype" and head[data_at:data_at + 39] == TYPES["odt"].media_type.encode():
            return TYPES["odt"]
        return TYPES["docx"]
    if head.startswith((b"PK", b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b", b"BZh", b"\xd0\xcf\x11\xe0")):
        raise UnsupportedMediaType("Archives and old Office files cannot be shared here.")
    return None


def _looks_like_text(head: bytes) -> bool:
    if _TEXT_CONTROLS.search(head):
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


class TextChecker:
    """Holds a text upload to being UTF-8 without control characters all the way, chunk by chunk."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if _TEXT_CONTROLS.search(chunk):
            raise UnsupportedMediaType("The file is not plain text: it holds binary data.")
        try:
            self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            raise UnsupportedMediaType("The file is not plain text: it is not valid UTF-8.") from exc


def check_container(file_type: FileType, readable: IO[bytes]) -> None:
    """A DOCX or ODT must be the document it claims, read from its central directory (seekable, not loaded)."""
    if file_type.key not in ("docx", "odt"):
        return
    try:
        with zipfile.ZipFile(readable) as archive:
            names = set(archive.namelist())
            if file_type.key == "odt":
                ok = "content.xml" in names and archive.read("mimetype") == file_type.media_type.encode()
            else:
                ok = "[Content_Types].xml" in names and "word/document.xml" in names
                if any(n.lower().endswith("vbaproject.bin") for n in names):
                    raise UnsupportedMediaType("Documents with macros cannot be shared here.")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise Unprocessable("The file looks like a Word or OpenDocument file but is broken.") from exc
    if not ok:
        raise UnsupportedMediaType("Only PDF, PNG, JPEG, HEIC, plain text, DOCX and ODT files can be shared here.")


# --- the name ----------------------------------------------------------------------------------------
_UNSAFE_NAME_CHARS = re.compile(r'[<>:"|?*;\\/`$]')
_SPACES = re.compile(r"\s+")


def sanitise_label(raw: str | None) -> str:
    """The user's filename as a safe label: last path segment, no control, format (bidi, zero-width) or
    shell/path characters, NFC, no leading dots, at most MAX_LABEL_CHARS characters keeping the extension."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = re.sub(r"[\t\n\r\v\f\x85\u2028\u2029]", " ", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C",) and
                   unicodedata.category(ch) not in ("Zl", "Zp"))
    name = _UNSAFE_NAME_CHARS.sub("_", name)
    name = _SPACES.sub(" ", name).strip().lstrip(".").strip()
    if not name or set(name) <= {"_", ".", " "}:
        name = "document"
    if len(name) > MAX_LABEL_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 1 <= len(ext) <= 10 and stem:
            name = stem[: MAX_LABEL_CHARS - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_LABEL_CHARS].rstrip()
    return name


def extension_of(label: str) -> str:
    stem, dot, ext = label.rpartition(".")
    return ("." + ext.lower()) if dot and stem and ext else ""


def label_for(label: str, file_type: FileType) -> str:
    """The label kept for a file of ``file_type``: 422 when its extension names another type;
    the type's own extension is added when the name has none (or one that means nothing)."""
    ext = extension_of(label)
    if ext in file_type.extensions:
        return label
    if ext in _ALLOWED_EXTENSIONS or ext in _DANGEROUS_EXTENSIONS:
        raise Unprocessable(f"The file's content is {file_type.key.upper()}, which does not match its name.")
    suffix = file_type.extensions[0]
    return label[: MAX_LABEL_CHARS - len(suffix)] + suffix


def without_type_extension(label: str) -> str:
    """A label without the extension of an allowed type (a new version may be of another type)."""
    ext = extension_of(label)
    return label[: -len(ext)] if ext in _ALLOWED_EXTENSIONS else label


def content_disposition(label: str) -> str:
    """``attachment`` with an ASCII fallback and the exact label as RFC 5987 ``filename*``."""
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%;' else "_" for ch in label) or "document"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(label, safe='')}"
