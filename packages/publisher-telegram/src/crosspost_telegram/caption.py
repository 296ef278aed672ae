"""Captions as Telegram takes them: at most 1024 characters, cut at a word boundary."""

from __future__ import annotations

__all__ = ["CAPTION_LIMIT", "ELLIPSIS", "caption_length", "format_caption"]

#: sendPhoto's caption limit (a text message's 4096 does not apply to photos).
CAPTION_LIMIT = 1024
ELLIPSIS = "…"


def caption_length(text: str) -> int:
    """The length Telegram counts: UTF-16 code units, so an emoji outside the BMP counts 2.

    Counting this way is never shorter than counting characters, so a caption that fits by
    this count fits however the server counts.
    """
    return len(text.encode("utf-16-le")) // 2


def format_caption(caption: str, limit: int = CAPTION_LIMIT) -> str:
    """The caption as it will be sent: trimmed, and when longer than `limit`, cut at the last
    word boundary that fits with an ellipsis (mid-word only when one word fills the limit)."""
    text = caption.strip()
    if caption_length(text) <= limit:
        return text
    budget = limit - caption_length(ELLIPSIS)
    end = 0
    used = 0
    for char in text:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            break
        end += 1
    cut = text[:end]
    if not text[end].isspace():
        boundary = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
        # Losing more than half the room to reach a boundary would be worse than one cut word.
        if boundary > budget // 2:
            cut = cut[:boundary]
    return cut.rstrip() + ELLIPSIS
