"""The live lines, the result table and the timeline."""

from __future__ import annotations

import io

from crosspost_orchestrator import PublishResult, WorkflowResult
from crosspost_orchestrator.display import (
    LiveDisplay,
    render_result_table,
    render_timeline,
    slowest_platform,
)


def test_timeline_draws_one_bar_per_platform_on_a_shared_axis() -> None:
    timeline = {"email": (0, 100), "telegram": (50, 200), "instagram": (0, 400)}
    text = render_timeline(timeline, 400, width=20, unicode=False)
    assert text.splitlines() == [
        "timeline: publish_parallel_ms 400 ms, slowest platform instagram (400 ms)",
        "  email      |#####               |    100 ms",
        "  telegram   |  ########          |    150 ms",
        "  instagram  |####################|    400 ms",
        "             0 ms            400 ms",
    ]


def test_timeline_bar_is_never_empty_and_uses_blocks_on_unicode_streams() -> None:
    text = render_timeline({"a": (0, 0), "b": (0, 1000)}, 1000, width=10)
    assert "│█         │" in text
    assert slowest_platform({"a": (0, 5), "b": (1, 9)}) == ("b", 8)
    assert render_timeline({}, 0) == "timeline: no platform was published in this run"


def test_plain_stream_gets_one_line_per_change() -> None:
    stream = io.StringIO()
    display = LiveDisplay(["email", "telegram"], stream, tty=False)
    display.begin("publishing a.jpg")
    display.on_publish_start("email")
    display.on_publish_start("telegram")
    display.on_publish_end("email", PublishResult(True, "email", duration_ms=231))
    display.on_publish_end("telegram", PublishResult(False, "telegram", error="flood control"))
    display.end()
    assert stream.getvalue().splitlines() == [
        "publishing a.jpg",
        "  email     waiting",
        "  telegram  waiting",
        "  email     sending",
        "  telegram  sending",
        "  email     ok 231 ms",
        "  telegram  failed: flood control",
    ]


def test_terminal_lines_are_redrawn_in_place() -> None:
    stream = io.StringIO()
    display = LiveDisplay(["email"], stream, tty=True, color=False)
    display.begin("publishing a.jpg")
    display.on_publish_start("email")
    display.on_publish_end("email", PublishResult(True, "email", duration_ms=12))
    display.end()
    text = stream.getvalue()
    assert text.count("\x1b[1F") == 3  # cursor back up before each redraw
    assert text.endswith("\x1b[2K  email  ok 12 ms\n")


def test_result_table_lists_every_platform_with_its_outcome() -> None:
    result = WorkflowResult(
        success=True,
        publish_results={
            "email": PublishResult(True, "email", post_id="<m@x>", duration_ms=300),
            "telegram": PublishResult(
                False, "telegram", error="timed out after 5 s", duration_ms=5000
            ),
        },
        already_published=("instagram",),
    )
    table = render_result_table(result, extra_failures={"x": "cannot be imported"}, skipped=["y"])
    assert table.splitlines() == [
        "  platform   result   time     post id / reason",
        "  instagram  skipped  -        already published",
        "  email      ok       300 ms   <m@x>",
        "  telegram   failed   5000 ms  timed out after 5 s",
        "  x          failed   -        cannot be imported",
        "  y          skipped  -        not in --only",
    ]
