"""The `crosspost` command.

Exit status: 0 when every platform succeeded (or there was nothing to publish), 1 when a
platform failed, 2 for usage, configuration, input and ledger problems (nothing contacted),
130 after Ctrl-C and 143 after SIGTERM (every running publish cancelled and recorded).
Errors are one line on stderr, never a traceback.

Importing this module, `crosspost --help` and `crosspost platforms` load no publisher and
none of their libraries: plugins are imported only when a command builds them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import inspect
import json
import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from crosspost_logs import reset_logging, setup_logging
from crosspost_orchestrator.config import (
    DEFAULT_CONFIG_NAME,
    Config,
    check_plugins_installed,
    load_config,
)
from crosspost_orchestrator.display import (
    LiveDisplay,
    render_result_table,
    render_timeline,
    shorten,
    stream_supports_unicode,
)
from crosspost_orchestrator.errors import (
    ConfigError,
    CrosspostError,
    InputError,
    LedgerError,
    NothingToPublishError,
    PluginError,
)
from crosspost_orchestrator.folder_source import FolderSource, clean_caption
from crosspost_orchestrator.ledger import InMemoryLedger
from crosspost_orchestrator.orchestrator import (
    WorkflowOrchestrator,
    close_publishers,
    describe_exception,
    one_line,
)
from crosspost_orchestrator.plugins import build_publishers, discover_publishers
from crosspost_orchestrator.publisher import Publisher
from crosspost_orchestrator.results import WorkflowResult
from crosspost_orchestrator.source import ImageSource, SelectedImage, SingleImageSource
from crosspost_orchestrator.sqlite_ledger import RunLock, SqliteLedger
from crosspost_orchestrator.stats import LogStats, collect_stats, render_stats

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "main",
    "publish_command",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process killed by it

_UNKNOWN_SETTING = re.compile(r"^publishers\.(\w+)\.(\w+): unknown setting")

_EPILOG = """\
exit status: 0 every platform succeeded (or nothing was waiting), 1 a platform failed,
2 usage, configuration, input or ledger error (nothing was contacted), 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM).

Secrets come from the environment only, never the config file: CROSSPOST_<PLATFORM>_<KEY>,
e.g. CROSSPOST_TELEGRAM_BOT_TOKEN, CROSSPOST_EMAIL_PASSWORD, CROSSPOST_INSTAGRAM_PASSWORD.
A .env file beside the config (KEY=VALUE lines) is read too; the environment wins.
"""


class _Exit(Exception):
    """Stop a command with an exit status after printing `message` (one line) to stderr."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message or "")
        self.status = status
        self.message = message


# -- output helpers ----------------------------------------------------------------------
def _fail(err: TextIO, message: str) -> None:
    err.write(f"crosspost: {one_line(message)}\n")
    err.flush()


def _json_default(value: Any) -> Any:
    return list(value) if isinstance(value, set | frozenset) else str(value)


def _print_json(out: TextIO, payload: dict[str, Any]) -> None:
    out.write(json.dumps(payload, ensure_ascii=False, default=_json_default) + "\n")
    out.flush()


# -- logging -----------------------------------------------------------------------------
class _NotTelemetry(logging.Filter):
    """Without -v, stderr shows only warnings that the live display does not already
    show: structured telemetry events (publisher_publish, ...) stay in the log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "crosspost_fields", None) is None


def _setup_logging(verbose: int, log_file: str | None, err: TextIO) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    if not verbose and log_file is None:
        level = logging.WARNING
    setup_logging(level=level, json=bool(verbose), stream=err, file=log_file)
    if verbose:
        return
    for handler in logging.getLogger().handlers:
        if (
            isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
            and handler.stream is err
        ):
            handler.setLevel(logging.WARNING)
            handler.addFilter(_NotTelemetry())


# -- argument parsing --------------------------------------------------------------------
def _common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # The same options are accepted before and after the command; in the subcommands they
    # default to SUPPRESS so they never overwrite a value given before the command.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help=f"the TOML configuration (default: ./{DEFAULT_CONFIG_NAME})",
    )
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        default=default,
        help="append the JSON-lines telemetry to PATH (secrets redacted)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="show the JSON-lines telemetry on stderr (-vv: debug)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `crosspost` (public for documentation tools and tests)."""
    from crosspost_orchestrator import __version__

    parser = argparse.ArgumentParser(
        prog="crosspost",
        description=(
            "Publish one photo with its caption to every configured platform at once "
            "(Telegram, Instagram, e-mail), from a folder queue or an explicit file."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"crosspost {__version__}")
    _common_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    publish = commands.add_parser(
        "publish",
        help="publish the next image of the folder (or IMAGE) to every enabled platform",
        description=(
            "Publish IMAGE, or the next image of workflow.folder not yet on every enabled "
            "platform, to all of them at once. A rerun publishes only to the platforms that "
            "do not have the image yet; once all have it, the image and its caption file "
            "move to workflow.archive. Control characters in captions (NUL, escape "
            "sequences) are removed; newlines and tabs are kept. Each platform shortens a "
            "caption to its own limit."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    publish.add_argument("image", nargs="?", metavar="IMAGE", help="an image file to publish")
    publish.add_argument("--caption", metavar="TEXT", help="the caption (instead of the .txt)")
    publish.add_argument(
        "--only",
        metavar="NAMES",
        action="append",
        help="publish only to these platforms (comma-separated; the image is archived only "
        "once every enabled platform has it)",
    )
    publish.add_argument(
        "--dry-run",
        action="store_true",
        help="check the image, caption and ledger; contact nothing, change nothing",
    )
    publish.add_argument(
        "--preview",
        action="store_true",
        help="like --dry-run, and show what each platform would receive",
    )
    publish.add_argument(
        "--json", action="store_true", help="print one JSON object (the run's result) instead"
    )
    _common_options(publish, top=False)

    check = commands.add_parser(
        "check",
        help="check the config and each enabled platform's credentials and reachability",
        description=(
            "Validate the configuration, the folders and the ledger, and for each enabled "
            "platform its credentials and reachability, without posting anything."
        ),
    )
    _common_options(check, top=False)

    platforms = commands.add_parser(
        "platforms", help="list the installed publisher plugins (nothing is imported)"
    )
    _common_options(platforms, top=False)

    stats = commands.add_parser(
        "stats",
        help="timings and success rates from JSON-lines logs",
        description=(
            "Per platform: publishes, success rate, p50/p95/max duration_ms (failed "
            "publishes included). Per run (dry runs and previews left out): p50/p95 of "
            "publish_parallel_ms and loop_lag_max_ms. Percentiles use the nearest-rank "
            "method: the p-th percentile of n sorted values is the one at rank "
            "ceil(p/100 * n). Lines that are not JSON are skipped and counted."
        ),
    )
    stats.add_argument("logfiles", nargs="+", metavar="LOGFILE", help="JSON-lines log files")
    stats.add_argument("--json", action="store_true", help="print one JSON object instead")
    _common_options(stats, top=False)

    login = commands.add_parser(
        "login",
        help="log in interactively and save the session (instagram)",
        description=(
            "Log in to PLATFORM in the terminal (challenge and two-factor codes are asked "
            "for) and save the session file named in its config table."
        ),
    )
    login.add_argument("platform", metavar="PLATFORM", help="the platform (instagram)")
    _common_options(login, top=False)

    demo = commands.add_parser(
        "demo",
        help="publish a sample photo to loopback Telegram, Instagram and SMTP servers",
        description=(
            "Start the crosspost-sandbox servers on 127.0.0.1, write a throw-away config for "
            "them and publish the bundled sample photo to all three for real. Needs no "
            "account, no network and no config."
        ),
    )
    _common_options(demo, top=False)
    return parser


# -- publish -------------------------------------------------------------------------------
def _parse_only(values: Sequence[str] | None, config: Config) -> list[str] | None:
    if not values:
        return None
    names = [n.strip() for value in values for n in value.split(",") if n.strip()]
    enabled = config.enabled
    for name in names:
        if name not in config.publishers:
            raise _Exit(
                EXIT_USAGE,
                f"--only {name}: no [publishers.{name}] table in {config.path} "
                f"(configured: {', '.join(config.publishers)})",
            )
        if name not in enabled:
            raise _Exit(
                EXIT_USAGE,
                f"--only {name}: publishers.{name} has enabled = false in {config.path}: "
                "enable it first",
            )
    return [name for name in enabled if name in names]


def _build(config: Config, names: Sequence[str]) -> tuple[list[Publisher], dict[str, str]]:
    """Build the named publishers; a settings problem is a `ConfigError` about the file."""
    tables = {name: config.publishers[name].settings for name in names}
    try:
        return build_publishers(tables)
    except ConfigError as exc:
        message = str(exc)
        match = _UNKNOWN_SETTING.match(message)
        if match:
            name, key = match.groups()
            var = config.publishers[name].secrets_from_env.get(key) if name in tables else None
            if var is not None:
                raise config.error(
                    f"publishers.{name}: {var} is set but publisher {name!r} takes no {key}: "
                    "unset it"
                ) from exc
        raise config.error(message) from exc


class _AnnouncingSource:
    """Wraps the image source: removes control characters from the caption and tells the
    display which image was chosen (and which platforms already have it)."""

    def __init__(
        self,
        inner: ImageSource,
        on_selected: Callable[[SelectedImage], Awaitable[None]],
    ) -> None:
        self.inner = inner
        self.on_selected = on_selected

    async def select(self, name: str | None, platforms: Any) -> SelectedImage:
        image = await self.inner.select(name, platforms)
        await self.on_selected(image)
        return image

    async def archive(self, image: SelectedImage) -> str | None:
        return await self.inner.archive(image)


def _result_payload(
    result: WorkflowResult,
    *,
    status: int,
    plugin_failures: dict[str, str],
    skipped: Sequence[str],
) -> dict[str, Any]:
    payload = dataclasses.asdict(result)
    payload["archived"] = result.archived_path is not None
    for name, outcome in result.publish_results.items():
        payload["publish_results"][name]["status"] = outcome.status
    payload["failed_platforms"] = result.failed_platforms + list(plugin_failures)
    payload["plugin_failures"] = plugin_failures
    payload["skipped_platforms"] = list(skipped)
    payload["exit_code"] = status
    return payload


def _timeline_width(names: Sequence[str], stream: TextIO) -> int:
    columns = shutil.get_terminal_size((100, 24)).columns
    return max(20, min(60, columns - max(map(len, names), default=8) - 16))


def publish_command(
    config_path: str | os.PathLike[str],
    *,
    image: str | None = None,
    caption: str | None = None,
    only: Sequence[str] | None = None,
    dry_run: bool = False,
    preview: bool = False,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    notes: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> int:
    """`crosspost publish` as a function (also what `crosspost demo` runs): returns the exit
    status. `notes` are printed under the heading (the demo explains itself there);
    `environ` replaces `os.environ` as the source of secrets (the `.env` file still counts)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return _publish(
            config_path, image, caption, only, dry_run, preview, as_json, out, err, notes, environ
        )
    except _Exit as exc:
        if exc.message:
            if as_json:
                _print_json(out, {"success": False, "error": one_line(exc.message),
                                  "exit_code": exc.status})  # fmt: skip
            _fail(err, exc.message)
        return exc.status
    except (ConfigError, InputError, LedgerError, PluginError) as exc:
        if as_json:
            _print_json(out, {"success": False, "error": one_line(str(exc)), "exit_code": 2})
        _fail(err, str(exc))
        return EXIT_USAGE


def _publish(
    config_path: str | os.PathLike[str],
    image: str | None,
    caption: str | None,
    only: Sequence[str] | None,
    dry_run: bool,
    preview: bool,
    as_json: bool,
    out: TextIO,
    err: TextIO,
    notes: Sequence[str],
    environ: Mapping[str, str] | None,
) -> int:
    config = load_config(config_path, environ)
    check_plugins_installed(config, discover_publishers())
    names = _parse_only(only, config) or config.enabled
    skipped = [name for name in config.enabled if name not in names]
    caption_override = clean_caption(caption) if caption is not None else None
    rehearsal = dry_run or preview
    workflow = config.workflow
    if image is None and workflow.folder is None:
        raise config.error(
            "workflow.folder: not set: set it to the folder of images waiting, or pass IMAGE"
        )

    publishers, plugin_failures = _build(config, names)
    ledger = SqliteLedger(workflow.ledger, readonly=rehearsal)
    lock: RunLock | None = None
    handed_over = False
    try:
        if not rehearsal:
            lock = ledger.run_lock()
            lock.acquire()
        ledger.open()
        if not rehearsal:
            ledger.preflight()
        source: ImageSource
        if workflow.folder is not None:
            assert workflow.archive is not None
            folder_source = FolderSource(
                workflow.folder, workflow.archive, ledger, required_platforms=config.enabled
            )
            try:
                folder_source.preflight(create=not rehearsal)
            except ConfigError as exc:
                raise config.error(str(exc)) from exc
            source = folder_source
        else:
            source = SingleImageSource()
        if not publishers:
            for name, reason in plugin_failures.items():
                _fail(err, f"{name}: {reason}")
            return EXIT_FAILED
        handed_over = True  # the orchestrator closes them from here on
        return _run_publish(
            config, publishers, plugin_failures, skipped, source, ledger, image,
            caption_override, dry_run, preview, as_json, out, err, notes,
        )  # fmt: skip
    finally:
        if not handed_over and publishers:
            asyncio.run(close_publishers(publishers))
        ledger.close()
        if lock is not None:
            lock.release()


def _run_publish(
    config: Config,
    publishers: list[Publisher],
    plugin_failures: dict[str, str],
    skipped: list[str],
    source: ImageSource,
    ledger: SqliteLedger,
    image: str | None,
    caption_override: str | None,
    dry_run: bool,
    preview: bool,
    as_json: bool,
    out: TextIO,
    err: TextIO,
    notes: Sequence[str],
) -> int:
    rehearsal = dry_run or preview
    built = [p.platform_name for p in publishers]
    names = [n for n in config.enabled if n in built or n in plugin_failures]
    names += [n for n in built if n not in names]
    display = LiveDisplay(names, out) if not (as_json or rehearsal) else None
    if display is not None:
        for name, reason in plugin_failures.items():
            display.mark_failed(name, reason)

    async def on_selected(selected: SelectedImage) -> None:
        if display is None:
            return
        done = await ledger.published_platforms(selected.sha256)
        for name in built:
            if name in done:
                display.mark_already_published(name)
        shown = shorten(selected.caption, 60)
        lines = [f"publishing {selected.name} to {', '.join(names)}"]
        lines.append(f"  caption: {shown!r}" if shown else "  caption: (none)")
        lines.extend(f"  {note}" for note in notes)
        display.begin("\n".join(lines))

    orchestrator = WorkflowOrchestrator(
        publishers,
        source=_AnnouncingSource(source, on_selected),
        ledger=ledger,
        timeout_s=config.workflow.timeout_s,
        observer=display,
    )

    terminated = False

    def on_sigterm(task: asyncio.Task[Any]) -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    async def run() -> WorkflowResult:
        # SIGTERM (cron's and systemd's way to stop a run) ends it as Ctrl-C does: running
        # publishes cancelled and recorded, nothing archived. The loop's `close()` puts the
        # default handler back.
        task = asyncio.current_task()
        assert task is not None
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm, task)
        async with orchestrator:
            ticker = asyncio.create_task(display.tick()) if display is not None else None
            try:
                return await orchestrator.execute(
                    select_filename=image,
                    dry_publish=dry_run,
                    preview_mode=preview,
                    caption_override=caption_override,
                )
            finally:
                if ticker is not None:
                    ticker.cancel()
                    await asyncio.gather(ticker, return_exceptions=True)

    # The loop puts SIG_DFL back when it closes; whoever called `main()` gets their own.
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        result = asyncio.run(run())
    except NothingToPublishError as exc:
        if as_json:
            _print_json(out, {"success": True, "nothing_to_publish": True,
                              "message": str(exc), "exit_code": EXIT_OK})  # fmt: skip
        else:
            out.write(f"{exc}\n")
        return EXIT_OK
    except BaseException as exc:
        # Bad input, Ctrl-C or SIGTERM: finish what is on screen, print nothing new.
        if display is not None:
            display.close()
        if terminated and isinstance(exc, asyncio.CancelledError):
            raise _Exit(
                EXIT_TERMINATED,
                "terminated: running publishes were cancelled and recorded in the ledger",
            ) from None
        raise
    finally:
        if previous_sigterm is not None:
            with contextlib.suppress(ValueError):  # not the main thread: nothing was set
                signal.signal(signal.SIGTERM, previous_sigterm)
    if display is not None:
        display.end()

    failed = bool(result.failed_platforms or plugin_failures or result.error)
    status = EXIT_FAILED if failed and not rehearsal else EXIT_OK
    if rehearsal and (result.failed_platforms or plugin_failures):
        status = EXIT_FAILED
    if as_json:
        _print_json(
            out,
            _result_payload(result, status=status, plugin_failures=plugin_failures,
                            skipped=skipped),
        )  # fmt: skip
        return status
    if rehearsal:
        _print_rehearsal(out, result, plugin_failures, skipped)
        return status
    _print_report(out, result, plugin_failures, skipped, config, names)
    return status


def _print_rehearsal(
    out: TextIO, result: WorkflowResult, plugin_failures: dict[str, str], skipped: list[str]
) -> None:
    kind = "preview" if result.preview_mode else "dry run"
    out.write(f"{kind}: {result.image_name} (nothing was contacted, nothing was changed)\n")
    out.write(f"  caption: {result.caption!r}\n" if result.caption else "  caption: (none)\n")
    for name in result.already_published:
        out.write(f"  {name}: already published; would be skipped\n")
    for name, outcome in result.publish_results.items():
        if name in result.already_published:
            continue
        if not outcome.success:
            out.write(f"  {name}: would fail: {outcome.error}\n")
            continue
        caption = result.platform_captions.get(name, "")
        out.write(f"  {name}: would publish, caption {len(caption)} characters\n")
        for key, value in result.previews.get(name, {}).items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out.write(f"      {key}: {one_line(str(text))[:300]}\n")
    for name, reason in plugin_failures.items():
        out.write(f"  {name}: would fail: {reason}\n")
    for name in skipped:
        out.write(f"  {name}: skipped (not in --only)\n")
    out.flush()


def _print_report(
    out: TextIO,
    result: WorkflowResult,
    plugin_failures: dict[str, str],
    skipped: list[str],
    config: Config,
    order: Sequence[str],
) -> None:
    out.write("\n" + render_result_table(result, extra_failures=plugin_failures,
                                         skipped=skipped) + "\n")  # fmt: skip
    if result.publish_timeline:
        timeline = result.publish_timeline
        names = [n for n in order if n in timeline] + [n for n in timeline if n not in order]
        out.write(
            "\n"
            + render_timeline(
                {name: timeline[name] for name in names},
                result.publish_parallel_ms,
                width=_timeline_width(names, out),
                unicode=stream_supports_unicode(out),
            )
            + "\n"
        )
    out.write("\n")
    if result.archived_path is not None:
        out.write(f"archived: {result.archived_path}\n")
    elif result.image_path and config.workflow.folder is not None:
        missing = [
            name
            for name in config.enabled
            if name not in result.already_published
            and not (name in result.publish_results and result.publish_results[name].success)
        ]
        if missing and Path(result.image_path).parent == config.workflow.folder:
            out.write(
                f"kept in the queue: not yet on {', '.join(missing)}; "
                "the next run publishes only there\n"
            )
    if result.error:
        out.write(f"problems: {one_line(result.error)}\n")
    out.write(f"correlation id: {result.correlation_id}\n")
    out.flush()


# -- check -------------------------------------------------------------------------------
def _check_workflow(config: Config) -> tuple[bool, str]:
    workflow = config.workflow
    parts = []
    ok = True
    if workflow.folder is not None:
        assert workflow.archive is not None
        source = FolderSource(workflow.folder, workflow.archive, ledger=InMemoryLedger())
        try:
            source.preflight(create=False)
            parts.append(f"{len(source.images())} image(s) in {workflow.folder}")
            parts.append(f"archive {workflow.archive} usable")
        except ConfigError as exc:
            ok = False
            parts.append(str(exc))
    else:
        parts.append("no workflow.folder (publish needs an IMAGE)")
    ledger = workflow.ledger
    if ledger.exists():
        usable = os.access(ledger, os.R_OK | os.W_OK)
        mode = ledger.stat().st_mode & 0o777
        parts.append(f"ledger {ledger} {'writable' if usable else 'NOT writable'}")
        if mode & 0o077:
            parts.append(f"ledger mode {mode:o} is readable by others: chmod 600 {ledger}")
        ok = ok and usable
    else:
        parent = next(p for p in ledger.parents if p.exists())
        usable = os.access(parent, os.W_OK | os.X_OK)
        parts.append(f"ledger {ledger} {'will be created' if usable else 'cannot be created'}")
        ok = ok and usable
    return ok, "; ".join(parts)


def _check_command(config_path: str, out: TextIO, err: TextIO) -> int:
    config = load_config(config_path)
    check_plugins_installed(config, discover_publishers())
    names = config.enabled
    publishers, failures = _build(config, names)
    width = max(len(n) for n in [*names, "workflow"])
    ok, description = _check_workflow(config)
    out.write(f"  {'workflow':<{width}}  {'ok' if ok else 'FAILED'}: {description}\n")
    out.flush()
    timeout = config.workflow.timeout_s

    async def one(publisher: Publisher) -> tuple[str, bool, str]:
        name = publisher.platform_name
        try:
            async with asyncio.timeout(timeout):
                text = await publisher.check()
        except TimeoutError:
            return name, False, f"no answer within {timeout:g} s"
        except (CrosspostError, OSError) as exc:
            return name, False, one_line(str(exc)) or type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            return name, False, describe_exception(exc)
        return name, True, one_line(str(text))

    async def run_all() -> list[tuple[str, bool, str]]:
        try:
            return list(await asyncio.gather(*(one(p) for p in publishers)))
        finally:
            await close_publishers(publishers)

    outcomes = asyncio.run(run_all()) if publishers else []
    by_name = {name: (good, text) for name, good, text in outcomes}
    for name in names:
        if name in failures:
            good, text = False, failures[name]
        else:
            good, text = by_name[name]
        ok = ok and good
        out.write(f"  {name:<{width}}  {'ok' if good else 'FAILED'}: {text}\n")
    for name, table in config.publishers.items():
        if not table.enabled:
            out.write(f"  {name:<{width}}  disabled (enabled = false)\n")
    out.flush()
    return EXIT_OK if ok else EXIT_FAILED


# -- platforms, stats, login -------------------------------------------------------------
def _platforms_command(out: TextIO) -> int:
    found = discover_publishers()
    if not found:
        out.write(
            "no publisher plugins installed: install crosspost-publisher-telegram, "
            "crosspost-publisher-instagram or crosspost-publisher-email\n"
        )
        return EXIT_OK
    rows = [("platform", "distribution", "version", "entry point")]
    rows += [
        (info.name, info.distribution or "?", info.version or "?", info.value)
        for info in found.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        out.write("  ".join([*(row[i].ljust(widths[i]) for i in range(3)), row[3]]) + "\n")
    return EXIT_OK


def _stats_command(paths: Sequence[str], as_json: bool, out: TextIO) -> int:
    stats = LogStats()
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                collect_stats(handle, into=stats)
        except OSError as exc:
            raise _Exit(EXIT_USAGE, f"{path}: cannot be read ({exc.strerror})") from exc
    if as_json:
        _print_json(out, stats.as_dict())
    else:
        out.write(render_stats(stats) + "\n")
    return EXIT_OK


def _login_command(config_path: str, platform: str, out: TextIO) -> int:
    if platform != "instagram":
        raise _Exit(
            EXIT_USAGE,
            f"login {platform}: only instagram has an interactive login; the others use "
            "the secrets in the environment (check them with `crosspost check`)",
        )
    config = load_config(config_path)
    table = config.publishers.get("instagram")
    if table is None:
        raise config.error(
            "publishers.instagram: no such table: add [publishers.instagram] with your "
            "username and session_file"
        )
    try:
        # A plugin's own API, reached by name: the core does not depend on any publisher.
        module = importlib.import_module("crosspost_instagram")
    except ImportError as exc:
        raise _Exit(
            EXIT_USAGE, "no publisher 'instagram': install crosspost-publisher-instagram"
        ) from exc
    login: Callable[..., Any] | None = getattr(module, "login_interactive", None)
    if login is None:
        raise _Exit(
            EXIT_USAGE,
            "the installed crosspost-publisher-instagram has no interactive login: upgrade it",
        )
    # The plugin's login takes its typed settings when it declares them, else the table.
    settings: Any = table.settings
    settings_type = getattr(module, "InstagramSettings", None)
    from_mapping = getattr(settings_type, "from_mapping", None)
    try:
        if from_mapping is not None:
            settings = from_mapping(table.settings)
        answer = login(settings, prompt=input)
        if inspect.isawaitable(answer):

            async def wait() -> Any:
                return await answer

            answer = asyncio.run(wait())
    except ConfigError as exc:
        raise config.error(str(exc)) from exc
    except (CrosspostError, OSError) as exc:
        raise _Exit(EXIT_FAILED, f"login instagram failed: {exc}") from exc
    except EOFError as exc:
        raise _Exit(
            EXIT_FAILED, "login instagram: no answer (stdin closed): nothing was saved"
        ) from exc
    out.write(f"{one_line(str(answer)) if answer else 'logged in; session saved'}\n")
    return EXIT_OK


# -- main --------------------------------------------------------------------------------
@contextlib.contextmanager
def _logging(args: argparse.Namespace, err: TextIO) -> Iterator[None]:
    _setup_logging(getattr(args, "verbose", 0) or 0, getattr(args, "log_file", None), err)
    try:
        yield
    finally:
        reset_logging()


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config_path = getattr(args, "config", None) or DEFAULT_CONFIG_NAME
    command = args.command
    if command == "publish":
        return publish_command(
            config_path,
            image=args.image,
            caption=args.caption,
            only=args.only,
            dry_run=args.dry_run,
            preview=args.preview,
            as_json=args.json,
            out=out,
            err=err,
        )
    if command == "check":
        return _check_command(config_path, out, err)
    if command == "platforms":
        return _platforms_command(out)
    if command == "stats":
        return _stats_command(args.logfiles, args.json, out)
    if command == "login":
        return _login_command(config_path, args.platform, out)
    if command == "demo":
        from crosspost_orchestrator.demo import run_demo

        configure: Callable[[str], None] | None = None
        if getattr(args, "log_file", None) is None:
            verbose = getattr(args, "verbose", 0) or 0

            def configure(path: str) -> None:
                _setup_logging(verbose, path, err)

        status: int = run_demo(out=out, err=err, configure_logging=configure)
        return status
    raise _Exit(EXIT_USAGE, f"unknown command {command!r}: see crosspost --help")


#: glibc's `mallopt` parameter for the most malloc arenas the process may create.
_M_ARENA_MAX = -8


def _cap_malloc_arenas(arenas: int = 2) -> None:
    """Let glibc's malloc keep at most `arenas` arenas (unless MALLOC_ARENA_MAX is set).

    Every worker thread that allocates while another one does gets an arena of its own,
    and the image, TLS and HTTP work of a publish spreads over half a dozen threads: each
    arena keeps its freed megabytes, about 30 MB more peak memory for one publish, for no
    measurable speed (the threads mostly wait on the network or hold the GIL anyway).
    Has to run before the worker threads exist; a no-op off glibc.
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(_M_ARENA_MAX, arenas)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `crosspost` with `argv` (default: the process arguments); returns the exit
    status (the console script exits with it)."""
    out, err = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(err)
        return EXIT_USAGE
    if args.command in ("publish", "demo", "check", "login"):
        _cap_malloc_arenas()
    try:
        with _logging(args, err):
            return _dispatch(args, out, err)
    except _Exit as exc:
        if exc.message:
            _fail(err, exc.message)
        return exc.status
    except (ConfigError, InputError, LedgerError, PluginError) as exc:
        _fail(err, str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _fail(err, "interrupted: running publishes were cancelled and recorded in the ledger")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`crosspost stats ... | head`): nothing more to say.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit
        return EXIT_FAILED
