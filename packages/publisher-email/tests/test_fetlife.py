"""FetLife caption rules: cleaning, placement, prefixes, tags."""

from __future__ import annotations

import pytest

from crosspost_email.fetlife import CAPTION_LIMIT, clean_caption, clean_tags, compose, one_line


def test_long_caption_with_hashtags_emoji_and_newlines_comes_out_clean() -> None:
    words = "Golden hour 🌅 by the lake, café au lait\n\nwith friends 👩‍👩‍👧 #sunset #NoFilter"
    caption = (words + "\r\n\t") * 10
    assert len(caption) >= 600

    cleaned = clean_caption(caption)

    assert len(cleaned) <= CAPTION_LIMIT
    assert "#" not in cleaned
    assert "\n" not in cleaned
    assert "\r" not in cleaned
    assert "\t" not in cleaned
    assert "  " not in cleaned
    assert "🌅" in cleaned
    assert "👩‍👩‍👧" in cleaned
    # Cut at a word boundary: what is kept is a whole-word prefix of the full cleaned text.
    full = clean_caption(caption, limit=10_000)
    assert full.startswith(cleaned)
    assert full[len(cleaned)] == " "
    assert len(cleaned) > CAPTION_LIMIT - 30


def test_hashtags_are_removed_but_not_other_hashes() -> None:
    assert clean_caption("#first Nice #tag-two light, C# and issue#5 #über") == (
        "Nice light, C# and issue#5"
    )


def test_control_and_bidi_characters_are_dropped() -> None:
    assert clean_caption("a\x00b\x07c\u202etxt.exe\u2028next\x85line") == "abctxt.exe next line"


def test_a_single_overlong_word_is_cut_hard() -> None:
    assert clean_caption("x" * 500) == "x" * CAPTION_LIMIT


def test_short_caption_is_unchanged_apart_from_whitespace() -> None:
    assert clean_caption("  Hello   world  ") == "Hello world"
    assert clean_caption("") == ""


@pytest.mark.parametrize(
    ("target", "mode", "subject", "body"),
    [
        ("subject", "normal", "Lake view", ""),
        ("subject", "private", "Private: Lake view", ""),
        ("subject", "avatar", "Avatar: Lake view", ""),
        ("body", "normal", "Photo upload", "Lake view"),
        ("body", "private", "Private: Photo upload", "Lake view"),
        ("body", "avatar", "Avatar: Photo upload", "Lake view"),
        ("both", "normal", "Lake view", "Lake view"),
        ("both", "private", "Private: Lake view", "Lake view"),
        ("both", "avatar", "Avatar: Lake view", "Lake view"),
    ],
)
def test_compose_places_the_caption_and_prefix(
    target: str, mode: str, subject: str, body: str
) -> None:
    assert compose("Lake\nview #nofilter", target, mode) == ("Lake view", subject, body)  # type: ignore[arg-type]


def test_header_injection_attempt_stays_on_one_line() -> None:
    _cleaned, subject, _body = compose("hi\r\nBcc: victim@example.com", "subject", "normal")
    assert subject == "hi Bcc: victim@example.com"


def test_clean_tags_keeps_the_first_distinct_ones() -> None:
    tags = ["#lake", "sunset", "lake", "", 42, "golden\nhour", "a", "b"]
    assert clean_tags(tags, 3) == ["lake", "sunset", "golden hour"]
    assert clean_tags(tags, 0) == []
    assert clean_tags("lake", 5) == []
    assert clean_tags(None, 5) == []


def test_one_line_makes_any_text_header_safe() -> None:
    assert one_line("a\r\n\tb\x1b[31m c") == "a b[31m c"
