"""`crosspost publish`, `check`, `platforms` and the logging options, with fake publisher
plugins (real entry points, real files, real SQLite, real processes where it matters)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crosspost_orchestrator.source import sha256_file


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under root with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
        for p in sorted([root, *root.rglob("*")])
    }


def ledger_rows(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT image_name, platform, status FROM publishes ORDER BY image_name, platform"
        ).fetchall()
    finally:
        conn.close()


def test_folder_publishes_one_image_per_run_in_order_and_archives_each(operator: Any) -> None:
    operator.write_config()
    for name in ["03.jpg", "01.jpg", "02.png"]:
        operator.add_image(name, caption=f"caption of {name}")
    for expected in ["01.jpg", "02.png", "03.jpg"]:
        status, out, err = operator.main("publish")
        assert status == 0, err
        assert f"publishing {expected} to fakea, fakec" in out
        assert f"archived: {operator.archive / expected}" in out
        assert "timeline: publish_parallel_ms" in out
    for platform in ["fakea", "fakec"]:
        posts = operator.posts(platform)
        assert [p["image"] for p in posts] == ["01.jpg", "02.png", "03.jpg"]
        assert posts[0]["caption"] == "caption of 01.jpg"
    assert sorted(p.name for p in operator.archive.iterdir()) == [
        "01.jpg", "01.txt", "02.png", "02.txt", "03.jpg", "03.txt",
    ]  # fmt: skip
    assert [p.name for p in operator.photos.iterdir()] == ["archive"]
    status, out, _err = operator.main("publish")
    assert status == 0
    assert "nothing to publish" in out


def test_failed_platform_keeps_the_image_and_the_rerun_publishes_only_there(
    operator: Any,
) -> None:
    operator.write_config({"fakea": {}, "fakec": {"fail": True}})
    image = operator.add_image("a.jpg", caption="hello")
    status, out, _err = operator.main("publish")
    assert status == 1
    assert "failed: fakec refused the post (fake)" in out
    assert "kept in the queue: not yet on fakec; the next run publishes only there" in out
    assert image.exists()
    assert ledger_rows(operator.ledger) == [
        ("a.jpg", "fakea", "published"),
        ("a.jpg", "fakec", "failed"),
    ]

    operator.write_config({"fakea": {}, "fakec": {}})
    status, out, err = operator.main("publish")
    assert status == 0, err
    assert "already published" in out
    assert len(operator.posts("fakea")) == 1
    assert len(operator.posts("fakec")) == 1
    assert not image.exists()
    assert (operator.archive / "a.jpg").exists()


@pytest.mark.parametrize("flag", ["--dry-run", "--preview"])
def test_dry_run_and_preview_contact_nothing_and_change_nothing(operator: Any, flag: str) -> None:
    operator.write_config()
    operator.add_image("a.jpg", caption="hello")
    before = tree(operator.root)
    status, out, err = operator.main("publish", flag)
    assert status == 0, err
    assert "nothing was contacted, nothing was changed" in out
    assert "fakea: would publish" in out
    if flag == "--preview":
        assert "caption: hello" in out
    assert tree(operator.root) == before
    assert operator.posts("fakea") == []

    # Also with an existing ledger: no row, no journal file, no mtime changes.
    status, _out, _err = operator.main("publish", "--only", "fakea")
    assert status == 0
    rows = ledger_rows(operator.ledger)  # reading with sqlite3 touches the folder: before
    before = tree(operator.root)
    status, out, _err = operator.main("publish", flag)
    assert status == 0
    assert "fakea: already published; would be skipped" in out
    assert tree(operator.root) == before
    assert ledger_rows(operator.ledger) == rows


def test_json_prints_one_machine_readable_result(operator: Any) -> None:
    operator.write_config()
    operator.add_image("a.jpg", caption="hi")
    status, out, _err = operator.main("publish", "--json")
    assert status == 0
    result = json.loads(out)
    assert result["success"] is True
    assert result["image_name"] == "a.jpg"
    assert result["archived"] is True
    assert result["exit_code"] == 0
    assert set(result["publish_results"]) == {"fakea", "fakec"}
    assert result["publish_results"]["fakea"]["status"] == "published"
    assert result["publish_results"]["fakea"]["post_id"] == "fakea-1"
    assert set(result["publish_timeline"]) == {"fakea", "fakec"}
    assert isinstance(result["publish_parallel_ms"], int)
    status, out, _err = operator.main("publish", "--json")
    assert json.loads(out) == {
        "success": True,
        "nothing_to_publish": True,
        "message": f"nothing to publish: {operator.photos} holds no image that still needs publishing",
        "exit_code": 0,
    }


def test_json_reports_a_config_error_as_an_object_too(operator: Any) -> None:
    operator.write_config({"nosuch": {}})
    status, out, err = operator.main("publish", "--json")
    assert status == 2
    assert json.loads(out)["error"].endswith(
        "no publisher 'nosuch': install crosspost-publisher-nosuch"
    )
    assert "install crosspost-publisher-nosuch" in err


def test_bad_input_is_exit_2_with_one_line_and_contacts_nobody(operator: Any) -> None:
    operator.write_config()
    operator.add_image("a.jpg", content=b"this is not an image at all")
    status, out, err = operator.main("publish")
    assert status == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "crosspost: a.jpg: not a JPEG, PNG or WebP image (fakea, fakec)"
    ]
    assert operator.posts("fakea") == []
    status, _out, err = operator.main("publish", str(operator.root / "missing.jpg"))
    assert status == 2
    assert "image not found" in err


def test_explicit_image_outside_the_queue_is_published_and_left_in_place(operator: Any) -> None:
    operator.write_config()
    outside = operator.root / "outside.jpg"
    outside.write_bytes(b"\xff\xd8\xff outside")
    status, out, err = operator.main("publish", str(outside), "--caption", "given")
    assert status == 0, err
    assert outside.exists()
    assert operator.posts("fakea") == [{"image": "outside.jpg", "caption": "given", "bytes": 11}]
    assert "archived" not in out


def test_caption_control_characters_are_removed_and_huge_captions_are_cut(
    operator: Any,
) -> None:
    operator.write_config()
    operator.add_image("a.jpg")
    status, _out, err = operator.main("publish", "--caption", "tab\there\x1b[2J\x07 end")
    assert status == 0, err
    assert operator.posts("fakea")[0]["caption"] == "tab\there[2J end"
    operator.add_image("b.jpg")
    status, out, err = operator.main("publish", "--caption", "x" * 100_000)
    assert status == 0, err
    assert operator.posts("fakea")[1]["caption"] == "x" * 50
    assert len(out) < 10_000


def test_only_publishes_to_the_named_platforms_and_archives_after_all(operator: Any) -> None:
    operator.write_config()
    image = operator.add_image("a.jpg")
    status, out, err = operator.main("publish", "--only", "fakea")
    assert status == 0, err
    assert "not in --only" in out
    assert len(operator.posts("fakea")) == 1
    assert operator.posts("fakec") == []
    assert image.exists()
    status, _out, err = operator.main("publish")
    assert status == 0, err
    assert len(operator.posts("fakea")) == 1
    assert len(operator.posts("fakec")) == 1
    assert not image.exists()
    status, _out, err = operator.main("publish", "--only", "fakeb")
    assert status == 2
    assert "--only fakeb: no [publishers.fakeb] table" in err


def test_second_run_while_one_holds_the_ledger_stops_with_exit_2(operator: Any) -> None:
    operator.write_config()
    operator.add_image("a.jpg")
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600);"
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(operator.ledger) + ".lock",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        done = operator.process("publish")
        holder.stdin.close()
        holder.wait(timeout=10)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"crosspost: another crosspost run holds {operator.ledger}; try again when it finishes"
    )
    assert operator.posts("fakea") == []


def test_ctrl_c_cancels_every_publish_records_it_and_exits_130(operator: Any) -> None:
    operator.write_config({"fakea": {"delay_s": 60}, "fakec": {"delay_s": 60}})
    image = operator.add_image("a.jpg")
    with subprocess.Popen(
        [str(Path(sys.executable).with_name("crosspost")), "publish"],
        cwd=operator.root,
        env=operator.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        sending = 0
        for line in proc.stdout:
            sending += line.split()[-1:] == ["sending"]
            if sending == 2:
                break
        proc.send_signal(signal.SIGINT)
        _rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert ledger_rows(operator.ledger) == [
        ("a.jpg", "fakea", "cancelled"),
        ("a.jpg", "fakec", "cancelled"),
    ]
    assert image.exists()
    digest = sha256_file(str(image))
    assert digest


def test_check_reports_one_line_per_platform(operator: Any) -> None:
    operator.write_config({"fakea": {}, "fakec": {"fail": True}, "fakeb": {"enabled": False}})
    operator.add_image("a.jpg")
    status, out, _err = operator.main("check")
    assert status == 1
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["workflow", "ok:"]
    assert "1 image(s) in" in lines[0]
    assert lines[1].split(None, 2) == ["fakea", "ok:", "fakea reachable (fake)"]
    assert lines[2].split(None, 2) == ["fakec", "FAILED:", "fakec is unreachable (fake)"]
    assert lines[3].split() == ["fakeb", "disabled", "(enabled", "=", "false)"]
    # check changes nothing: no archive folder, no ledger.
    assert not operator.archive.exists()
    assert not operator.ledger.exists()
    operator.write_config({"fakea": {}})
    status, _out, _err = operator.main("check")
    assert status == 0


def test_platforms_lists_distribution_and_version_without_importing_plugins(
    operator: Any,
) -> None:
    code = (
        "import sys; from crosspost_orchestrator.cli import main; status = main(['platforms']);"
        "print('IMPORTED' if 'crosspost_fake_plugins' in sys.modules else 'CLEAN'); sys.exit(status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=operator.env(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:-1]}
    assert rows["fakea"][1:] == [
        "crosspost-fake-plugins",
        "0.3.0",
        "crosspost_fake_plugins:create_fakea",
    ]
    assert done.stdout.splitlines()[-1] == "CLEAN"


def test_log_file_gets_json_telemetry_without_secrets_and_stats_reads_it(
    operator: Any,
) -> None:
    operator.write_config({"fakeb": {}, "fakec": {"fail": True}})
    operator.add_image("a.jpg")
    log = operator.root / "logs" / "crosspost.jsonl"
    done = operator.process(
        "--log-file", str(log), "publish", CROSSPOST_FAKEB_PASSWORD="pw-very-secret-1234"
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""  # telemetry goes to the file only without -v
    text = log.read_text(encoding="utf-8")
    assert "pw-very-secret-1234" not in text
    events = [json.loads(line) for line in text.splitlines()]
    messages = [e["message"] for e in events]
    assert messages.count("publisher_publish") == 2
    assert messages.count("workflow_timing") == 1
    _status, out, _err = operator.main("stats", str(log), "--json")
    report = json.loads(out)
    assert report["platforms"]["fakeb"]["successes"] == 1
    assert report["platforms"]["fakec"]["success_rate"] == 0.0
    assert report["runs"]["runs"] == 1


def test_verbose_shows_telemetry_on_stderr(operator: Any) -> None:
    operator.write_config({"fakea": {}})
    operator.add_image("a.jpg")
    done = operator.process("publish", "-v")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert {"publisher_publish", "workflow_timing"} <= {e["message"] for e in events}


@pytest.mark.parametrize(
    "argv", [["nosuchcommand"], ["publish", "--nosuchoption"], [], ["login", "telegram"]]
)
def test_usage_errors_exit_2(operator: Any, argv: list[str]) -> None:
    operator.write_config()
    status, _out, err = operator.main(*argv)
    assert status == 2
    assert err


def test_missing_folder_setting_without_image_says_what_to_do(operator: Any) -> None:
    operator.write_config(workflow='ledger = "l.sqlite3"\n')
    status, _out, err = operator.main("publish")
    assert status == 2
    assert "workflow.folder: not set" in err
    image = operator.root / "x.jpg"
    image.write_bytes(b"\xff\xd8\xff x")
    status, _out, err = operator.main("publish", str(image))
    assert status == 0, err
    assert os.path.exists(image)


def test_sample_photo_ships_with_the_package() -> None:
    from crosspost_orchestrator.demo import sample_photo

    with sample_photo() as path:
        data = path.read_bytes()
    assert data.startswith(b"\xff\xd8\xff")
    assert len(data) > 1_000_000
    # The frame header (SOF0/SOF2) holds height then width.
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at > 0:
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            assert (width, height) == (4000, 3000)
            break
    else:
        pytest.fail("no JPEG frame header in the sample photo")


@pytest.mark.skipif(
    importlib.util.find_spec("crosspost_sandbox") is not None,
    reason="the sandbox is installed: the demo itself runs in the workspace's e2e tests",
)
def test_demo_without_the_sandbox_says_what_to_install(operator: Any) -> None:
    status, _out, err = operator.main("demo")
    assert status == 2
    assert "crosspost demo needs crosspost-sandbox" in err
    assert "uv run crosspost demo" in err


def test_image_already_on_every_platform_is_not_posted_again(operator: Any) -> None:
    operator.write_config()
    outside = operator.root / "again.jpg"
    outside.write_bytes(b"\xff\xd8\xff again")
    assert operator.main("publish", str(outside))[0] == 0
    status, out, err = operator.main("publish", str(outside))
    assert status == 0, err
    assert out.count("already published") >= 4  # two live lines, two table rows
    assert len(operator.posts("fakea")) == 1
    assert len(operator.posts("fakec")) == 1


def test_publish_leaves_the_callers_sigterm_handler_in_place(operator: Any) -> None:
    """SIGTERM is handled during a publish (by the event loop), and afterwards the handler
    of whoever called `main()` is back, not the default one."""

    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        operator.write_config()
        operator.add_image("a.jpg", caption="hello")
        status, _out, err = operator.main("publish")
        assert status == 0, err
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
