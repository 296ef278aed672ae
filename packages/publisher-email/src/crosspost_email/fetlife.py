"""FetLife's upload-by-e-mail rules: a short, clean caption in the subject and/or the body,
and the subject prefixes that make a post private or set the avatar."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Literal

__all__ = [
    "BODY_ONLY_SUBJECT",
    "CAPTION_LIMIT",
    "SUBJECT_PREFIXES",
    "CaptionTarget",
    "SubjectMode",
    "clean_caption",
    "clean_tags",
    "compose",
    "one_line",
]

CaptionTarget = Literal["subject", "body", "both"]
SubjectMode = Literal["normal", "private", "avatar"]

#: FetLife keeps captions short.
CAPTION_LIMIT = 240
#: What FetLife reads at the start of the subject.
SUBJECT_PREFIXES: dict[str, str] = {"normal": "", "private": "Private: ", "avatar": "Avatar: "}
#: The subject when the caption goes only in the body.
BODY_ONLY_SUBJECT = "Photo upload"

# A hashtag starts a word: "#tag" is one, "C#" and "issue#5" are not.
_HASHTAG = re.compile(r"(?<![\w&#])#\w[\w-]*")
# Bidirectional embeddings, overrides and isolates can make text display other than it reads.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """`text` with control characters dropped and every run of whitespace (newlines
    included) made one space: safe for a header or a log line."""
    text = _BIDI_CONTROLS.sub("", text)
    # Whitespace controls (\t \n \r \x0b \x0c \x1c-\x1f \x85) become spaces in split() below.
    text = "".join(
        ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cs", "Co")
    )
    return " ".join(text.split())


def _cut_at_word(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    # A space right after the limit means the last word ends exactly at it.
    space = text.rfind(" ", 0, limit + 1)
    if space <= 0:
        return text[:limit].rstrip()
    return text[:space].rstrip()


def clean_caption(caption: str, limit: int = CAPTION_LIMIT) -> str:
    """The caption as FetLife gets it: hashtags removed, control characters dropped,
    whitespace and newlines collapsed to single spaces, at most `limit` characters, cut at
    a word boundary (a single word longer than `limit` is cut hard)."""
    text = unicodedata.normalize("NFC", caption)
    text = one_line(_HASHTAG.sub(" ", one_line(text)))
    return _cut_at_word(text, limit)


def compose(caption: str, target: CaptionTarget, mode: SubjectMode) -> tuple[str, str, str]:
    """(cleaned caption, subject, body) for `caption` under the FetLife settings.

    `target` says where the caption goes; a body-only caption gets the subject "Photo
    upload". `mode` prefixes the subject with "Private: " or "Avatar: ". Neither the
    subject nor the body ever holds a CR, an LF or another control character.
    """
    cleaned = clean_caption(caption)
    prefix = SUBJECT_PREFIXES[mode]
    if target == "body":
        return cleaned, prefix + BODY_ONLY_SUBJECT, cleaned
    subject = (prefix + cleaned).strip()
    return cleaned, subject, cleaned if target == "both" else ""


def clean_tags(tags: object, limit: int) -> list[str]:
    """Up to `limit` distinct non-empty tags from `tags` (an iterable of strings; anything
    else gives no tags), each on one line without a leading '#'."""
    if limit <= 0 or isinstance(tags, str | bytes) or not isinstance(tags, Iterable):
        return []
    found: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            continue
        text = _cut_at_word(one_line(tag).lstrip("#").strip(), 60)
        if text and text not in found:
            found.append(text)
        if len(found) == limit:
            break
    return found
