"""Content the gateway cannot read for PHI: base64 data and data: URLs (images, PDFs, audio).

Such content is never scanned as text (base64 reads as noise, and the meaning is in the decoded bytes);
it counts as content of its kind, which the policy's `binary_tier` classifies and each destination's
`content` list admits. Vendor-encrypted blobs (thinking signatures, encrypted reasoning) are checked to
be base64 too, and are scanned anyway: base64 characters spell readable names
(`Okonkwo_Marisol_518-42-7731`), and base64 that decodes to text (`readable`) is no vendor's
encryption, which decodes to bytes that are not UTF-8.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

BinaryKind = Literal["images", "documents", "audio"]

_BASE64 = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_")
# Shorter than this, an "encrypted" field could hold a word; every vendor blob is far longer.
OPAQUE_MIN = 16


def is_base64(value: str) -> bool:
    """Only base64 or base64url characters (no spaces, no punctuation that prose needs)."""
    return not value.translate(_BASE64)  # ~0.7 ms per MB of image


def is_opaque(value: str) -> bool:
    return len(value) >= OPAQUE_MIN and is_base64(value)


def readable(value: str) -> str | None:
    """The text a base64 (or base64url) string decodes to, when it is text: valid UTF-8, nearly all
    printable. Ciphertext and signatures decode to random bytes, invalid UTF-8 within a few bytes."""
    data = value.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(data.replace("+", "-").replace("/", "_") + "=" * (-len(data) % 4))
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    return text if text and printable >= 0.9 * len(text) else None


def media_kind(media_type: object) -> BinaryKind:
    media = media_type.lower() if isinstance(media_type, str) else ""
    if media.startswith("image/"):
        return "images"
    if media.startswith("audio/"):
        return "audio"
    return "documents"


def data_url(value: str) -> tuple[BinaryKind, bool] | None:
    """(kind, whether its data is valid base64) for a base64 data: URL; None for anything else
    (a plain `data:text/plain,words` URL is readable text, and read as such)."""
    if value[:5].lower() != "data:":
        return None
    header, comma, payload = value[5:].partition(",")
    if not comma or not header.lower().endswith(";base64"):
        return None
    return media_kind(header.split(";", 1)[0].strip()), is_base64(payload)
