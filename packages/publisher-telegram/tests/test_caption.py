"""Captions cut to Telegram's 1024-character photo limit."""

from __future__ import annotations

from crosspost_telegram import CAPTION_LIMIT, caption_length, format_caption


def test_short_caption_is_only_trimmed() -> None:
    assert format_caption("  hello world \n") == "hello world"
    assert format_caption("") == ""


def test_caption_of_exactly_the_limit_is_kept_whole() -> None:
    caption = "a" * CAPTION_LIMIT

    assert format_caption(caption) == caption


def test_long_caption_is_cut_at_the_last_word_boundary_with_an_ellipsis() -> None:
    caption = "word " * 300  # 1500 characters

    cut = format_caption(caption)

    assert caption_length(cut) <= CAPTION_LIMIT
    assert cut.endswith("word…")
    assert cut[:-1] == " ".join(["word"] * (len(cut[:-1]) // 5 + 1))


def test_one_enormous_word_is_cut_mid_word_rather_than_dropped() -> None:
    cut = format_caption("x" * 5000)

    assert cut == "x" * (CAPTION_LIMIT - 1) + "…"


def test_emoji_count_twice_so_the_cut_fits_however_telegram_counts() -> None:
    caption = "🌅 " * 700  # each "🌅 " is 3 UTF-16 units

    cut = format_caption(caption)

    assert caption_length(cut) <= CAPTION_LIMIT
    assert len(cut) < CAPTION_LIMIT
    assert cut.endswith("🌅…")


def test_the_4096_limit_of_text_messages_does_not_apply() -> None:
    assert len(format_caption("y " * 2000)) <= CAPTION_LIMIT
