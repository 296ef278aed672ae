"""Instagram's caption limits: at most 2200 characters and 30 hashtags."""

from __future__ import annotations

import re

__all__ = ["CAPTION_MAX_CHARS", "HASHTAGS_MAX", "count_hashtags", "format_caption"]

CAPTION_MAX_CHARS = 2200
HASHTAGS_MAX = 30

# A hashtag starts at a '#' that does not follow a word character ("C#" is not one).
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_ELLIPSIS = "…"


def count_hashtags(caption: str) -> int:
    """How many hashtags Instagram counts in `caption`."""
    return len(_HASHTAG.findall(caption))


def format_caption(caption: str) -> str:
    """The caption as Instagram will receive it.

    Surrounding whitespace is trimmed; hashtags after the 30th are dropped (with the space
    before each); a caption still over 2200 characters is cut at a word boundary and ends
    with an ellipsis.
    """
    text = caption.strip()
    tags = list(_HASHTAG.finditer(text))
    if len(tags) > HASHTAGS_MAX:
        pieces: list[str] = []
        kept_until = 0
        for tag in tags[HASHTAGS_MAX:]:
            start = tag.start()
            # Take the blanks before the dropped tag with it, so no double space remains.
            while start > kept_until and text[start - 1] in " \t":
                start -= 1
            pieces.append(text[kept_until:start])
            kept_until = tag.end()
        pieces.append(text[kept_until:])
        text = "".join(pieces).strip()
    if len(text) > CAPTION_MAX_CHARS:
        cut = text[: CAPTION_MAX_CHARS - len(_ELLIPSIS)]
        boundary = max(cut.rfind(" "), cut.rfind("\n"))
        if boundary > CAPTION_MAX_CHARS // 2:
            cut = cut[:boundary]
        text = cut.rstrip() + _ELLIPSIS
    return text
