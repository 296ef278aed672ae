"""`crosspost stats`: nearest-rank percentiles checked against a small log computed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crosspost_orchestrator.stats import nearest_rank


def publish(platform: str, ms: int, success: bool = True) -> str:
    return json.dumps(
        {"message": "publisher_publish", "platform": platform, "duration_ms": ms,
         "success": success, "error": None if success else "boom"}
    )  # fmt: skip


def timing(parallel: int, lag: int, *, dry: bool = False) -> str:
    return json.dumps(
        {"message": "workflow_timing", "publish_parallel_ms": parallel, "loop_lag_max_ms": lag,
         "dry_publish": dry, "preview_mode": False}
    )  # fmt: skip


# By hand (nearest rank: the value at rank ceil(p/100 * n) of the sorted values):
#   email durations 400 100 1000 300 200 -> sorted 100 200 300 400 1000, n=5
#     p50: ceil(2.5)=3 -> 300   p95: ceil(4.75)=5 -> 1000   max 1000   success 4/5 = 80.0%
#   telegram 70 50 -> sorted 50 70, n=2: p50 ceil(1)=1 -> 50, p95 ceil(1.9)=2 -> 70
#   runs (the dry run is left out): parallel 1000 300 400 -> 300 400 1000: p50 rank 2 -> 400,
#     p95 rank 3 -> 1000; lag 5 3 12 -> 3 5 12: p50 5, p95 12
#   skipped: two lines that are not JSON and one JSON value that is not an object = 3
LOG = "\n".join(
    [
        publish("email", 400),
        "Traceback (most recent call last):",
        publish("email", 100, success=False),
        publish("telegram", 70),
        timing(1000, 5),
        publish("email", 1000),
        "",
        "garbage {",
        publish("email", 300),
        timing(300, 3),
        "[1, 2]",
        publish("telegram", 50),
        publish("email", 200),
        timing(0, 0, dry=True),
        timing(400, 12),
        json.dumps({"message": "something_else", "x": 1}),
    ]
)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "crosspost.log"
    path.write_text(LOG + "\n", encoding="utf-8")
    return path


def test_nearest_rank_picks_measured_values() -> None:
    assert nearest_rank([40, 10, 30, 20], 50) == 20
    assert nearest_rank([40, 10, 30, 20], 95) == 40
    assert nearest_rank([40, 10, 30, 20], 100) == 40
    assert nearest_rank([7], 50) == 7
    assert nearest_rank([], 50) is None
    with pytest.raises(ValueError):
        nearest_rank([1], 0)


def test_stats_json_matches_the_hand_computed_log(operator: Any, log_file: Path) -> None:
    status, out, _err = operator.main("stats", str(log_file), "--json")
    assert status == 0
    report = json.loads(out)
    assert report["platforms"]["email"] == {
        "publishes": 5, "successes": 4, "success_rate": 0.8,
        "duration_ms_p50": 300, "duration_ms_p95": 1000, "duration_ms_max": 1000,
    }  # fmt: skip
    assert report["platforms"]["telegram"]["duration_ms_p50"] == 50
    assert report["platforms"]["telegram"]["duration_ms_p95"] == 70
    assert report["runs"] == {
        "runs": 3, "publish_parallel_ms_p50": 400, "publish_parallel_ms_p95": 1000,
        "loop_lag_max_ms_p50": 5, "loop_lag_max_ms_p95": 12,
    }  # fmt: skip
    assert report["skipped"] == 3


def test_stats_text_report(operator: Any, log_file: Path) -> None:
    status, out, _err = operator.main("stats", str(log_file), str(log_file))
    assert status == 0
    lines = out.splitlines()
    email = next(line for line in lines if line.startswith("email"))
    # Both files: every count doubles, the percentiles stay.
    assert email.split() == ["email", "10", "80.0%", "300", "1000", "1000"]
    assert "runs: 6   publish_parallel_ms p50 400 p95 1000   loop_lag_max_ms p50 5 p95 12" in out
    assert "nearest rank" in out
    assert "skipped 6 of" in out


def test_stats_on_a_missing_file_is_a_usage_error(operator: Any, tmp_path: Path) -> None:
    status, _out, err = operator.main("stats", str(tmp_path / "missing.log"))
    assert status == 2
    assert "missing.log: cannot be read" in err


def test_stats_help_defines_the_percentile_method(operator: Any) -> None:
    status, out, _err = operator.main("stats", "--help")
    assert status == 0
    text = " ".join(out.split())
    assert "nearest-rank" in text
    assert "ceil(p/100 * n)" in text
