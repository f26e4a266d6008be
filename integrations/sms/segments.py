"""How many SMS segments a text takes (GSM 03.38 / 3GPP TS 23.038): what a gateway bills and
what a template's page shows."""

from __future__ import annotations

# SMS encodings: GSM 03.38's default alphabet (7-bit; the extension table's characters take
# two septets), else UCS-2 (16-bit: any Vietnamese letter with a diacritic)
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = set("^{}\\[~]|€\f")
SEGMENT_LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


def sms_segments(text: str) -> tuple[str, int, int]:
    """(encoding, segments, characters) of an SMS: GSM-7 when every character is in the GSM
    default alphabet (160 in one segment, 153 per segment when split; an extension character
    counts twice), else UCS-2 (70, 67 when split; a character outside the BMP counts twice).
    An empty text is one segment."""
    text = text or ""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        encoding = "GSM-7"
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
    else:
        encoding = "UCS-2"
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
    single, multi = SEGMENT_LIMITS[encoding]
    segments = 1 if units <= single else -(-units // multi)
    return encoding, segments, units
