"""SmtpSandbox driven by the real clients (aiosmtplib, and smtplib for the threaded mode)."""

from __future__ import annotations

import asyncio
import gc
import smtplib
import ssl
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
import trustme

from crosspost_sandbox.smtp import SmtpSandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[SmtpSandbox]:
    async with SmtpSandbox() as server:
        yield server


def make_message(subject: str = "Hello ☃", to: str = "friend@example.test") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sender@example.test"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Body with ünïcode\n")
    return message


async def send(
    sandbox: SmtpSandbox,
    message: EmailMessage | None = None,
    *,
    mode: str = "starttls",
    password: str | None = None,
    timeout: float = 5.0,
    tls_context: ssl.SSLContext | None = None,
) -> tuple[dict[str, Any], str]:
    """One real aiosmtplib session: connect, TLS, AUTH, send, QUIT."""
    port = {"starttls": sandbox.starttls_port, "tls": sandbox.tls_port}[mode]
    return await aiosmtplib.send(
        message or make_message(),
        hostname=sandbox.host,
        port=port,
        start_tls=mode == "starttls",
        use_tls=mode == "tls",
        tls_context=tls_context or sandbox.client_tls_context(),
        username=sandbox.username,
        password=sandbox.password if password is None else password,
        local_hostname="client.example.test",
        timeout=timeout,
    )


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a server-side condition the client cannot observe directly."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_delivers_and_keeps_the_message(sandbox: SmtpSandbox, mode: str) -> None:
    _errors, reply = await send(sandbox, mode=mode)

    assert reply.startswith("2.0.0 OK: queued as")
    (received,) = sandbox.messages
    assert received.listener == mode
    assert received.mail_from == "sender@example.test"
    assert received.rcpt_tos == ("friend@example.test",)
    assert received.username == sandbox.username
    assert received.message["Subject"] == "Hello ☃"
    assert received.message.get_content() == "Body with ünïcode\n"
    assert b"Subject: Hello" in received.raw
    assert sandbox.counters["messages"] == 1
    assert sandbox.counters["auth_successes"] == 1
    assert sandbox.errors == []


async def test_server_certificate_is_for_the_loopback_address(sandbox: SmtpSandbox) -> None:
    context = ssl.create_default_context(cafile=sandbox.ca_path)
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=sandbox.tls_port, use_tls=True, tls_context=context
    ) as client:
        cert = client.get_transport_info("peercert")
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]


@pytest.mark.parametrize("mechanism", ["auth_plain", "auth_login"])
async def test_auth_plain_and_login_accept_the_configured_credentials(
    sandbox: SmtpSandbox, mechanism: str
) -> None:
    async with aiosmtplib.SMTP(
        hostname=sandbox.host,
        port=sandbox.starttls_port,
        start_tls=True,
        tls_context=sandbox.client_tls_context(),
        local_hostname="client.example.test",
    ) as client:
        await client.ehlo()
        response = await getattr(client, mechanism)(sandbox.username, sandbox.password)
    assert response.code == 235
    assert sandbox.counters["auth_successes"] == 1


@pytest.mark.parametrize("mechanism", ["auth_plain", "auth_login"])
async def test_wrong_password_gets_535_promptly(sandbox: SmtpSandbox, mechanism: str) -> None:
    async with aiosmtplib.SMTP(
        hostname=sandbox.host,
        port=sandbox.starttls_port,
        start_tls=True,
        tls_context=sandbox.client_tls_context(),
        local_hostname="client.example.test",
        timeout=10,
    ) as client:
        await client.ehlo()
        started = time.monotonic()
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as caught:
            await getattr(client, mechanism)(sandbox.username, "not-the-password")
        elapsed = time.monotonic() - started
    assert caught.value.code == 535
    # Far below the client timeout: the server answered instead of leaving it waiting.
    assert elapsed < 2.0
    assert sandbox.counters["auth_failures"] == 1


async def test_login_with_wrong_password_fails_without_sending(sandbox: SmtpSandbox) -> None:
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as caught:
        await send(sandbox, password="wrong")
    assert caught.value.code == 535
    assert sandbox.messages == []


async def test_starttls_listener_requires_tls_before_auth_and_mail(sandbox: SmtpSandbox) -> None:
    async with aiosmtplib.SMTP(
        hostname=sandbox.host,
        port=sandbox.starttls_port,
        start_tls=False,
        local_hostname="client.example.test",
    ) as client:
        await client.ehlo()
        assert client.supports_extension("starttls")
        assert not client.supports_extension("auth")
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as caught:
            await client.mail("sender@example.test")
    assert caught.value.code == 530


async def test_mail_without_auth_is_refused(sandbox: SmtpSandbox) -> None:
    async with aiosmtplib.SMTP(
        hostname=sandbox.host,
        port=sandbox.tls_port,
        use_tls=True,
        tls_context=sandbox.client_tls_context(),
        local_hostname="client.example.test",
    ) as client:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as caught:
            await client.sendmail(
                "sender@example.test", ["friend@example.test"], b"Subject: x\r\n\r\nx"
            )
    assert caught.value.code == 530
    assert sandbox.messages == []


async def test_plain_listener_speaks_without_tls(sandbox: SmtpSandbox) -> None:
    await aiosmtplib.send(
        make_message(),
        hostname=sandbox.host,
        port=sandbox.plain_port,
        start_tls=False,
        username=sandbox.username,
        password=sandbox.password,
        local_hostname="client.example.test",
    )
    assert sandbox.messages[0].listener == "plain"


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_client_that_does_not_trust_the_ca_refuses_the_server(
    sandbox: SmtpSandbox, mode: str
) -> None:
    foreign = ssl.create_default_context()
    trustme.CA().configure_trust(foreign)
    with pytest.raises((ssl.SSLCertVerificationError, aiosmtplib.SMTPConnectError)) as caught:
        await send(sandbox, mode=mode, tls_context=foreign)
    error: BaseException | None = caught.value
    # aiosmtplib raises the ssl error itself after STARTTLS and wraps it under implicit TLS.
    while error is not None and not isinstance(error, ssl.SSLCertVerificationError):
        error = error.__cause__
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert sandbox.messages == []
    assert sandbox.counters["auth_successes"] == 0


FAULTS: list[tuple[str, str | None, type[BaseException], int | None]] = [
    ("transient_451", "rcpt", aiosmtplib.SMTPRecipientsRefused, 451),
    ("transient_451", "data", aiosmtplib.SMTPDataError, 451),
    ("transient_451", "mail", aiosmtplib.SMTPSenderRefused, 451),
    ("transient_451", "connect", aiosmtplib.SMTPConnectResponseError, 421),
    ("reject_recipient", None, aiosmtplib.SMTPRecipientsRefused, 550),
    ("5xx", None, aiosmtplib.SMTPDataError, 554),
    ("5xx", "connect", aiosmtplib.SMTPConnectResponseError, 554),
    ("5xx", "rcpt", aiosmtplib.SMTPRecipientsRefused, 554),
    ("reject_auth", None, aiosmtplib.SMTPAuthenticationError, 535),
    ("disconnect", None, aiosmtplib.SMTPConnectError, None),
    ("disconnect", "ehlo", aiosmtplib.SMTPServerDisconnected, None),
    ("disconnect", "starttls", aiosmtplib.SMTPServerDisconnected, None),
    ("disconnect", "auth", aiosmtplib.SMTPServerDisconnected, None),
    ("disconnect", "data", aiosmtplib.SMTPServerDisconnected, None),
]


@pytest.mark.parametrize(("kind", "operation", "exception", "code"), FAULTS)
async def test_fault_reaches_the_client_as_the_real_exception(
    sandbox: SmtpSandbox,
    kind: str,
    operation: str | None,
    exception: type[BaseException],
    code: int | None,
) -> None:
    sandbox.inject(kind, operation=operation)

    with pytest.raises(exception) as caught:
        await send(sandbox)

    if isinstance(caught.value, aiosmtplib.SMTPRecipientsRefused):
        (refused,) = caught.value.recipients
        assert refused.code == code
        assert refused.recipient == "friend@example.test"
        if kind == "reject_recipient":
            assert "friend@example.test" in refused.message
    elif code is not None:
        assert getattr(caught.value, "code", None) == code
    assert sandbox.messages == []
    assert sandbox.counters["faults"] == 1
    assert sandbox.faults.pending() == []
    # The fault was used up: the next session goes through.
    await send(sandbox)
    assert len(sandbox.messages) == 1


async def test_unknown_recipient_is_always_refused(sandbox: SmtpSandbox) -> None:
    sandbox.unknown_recipients.add("Nobody@Example.test")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
        await send(sandbox, make_message(to="nobody@example.test"))
    assert caught.value.recipients[0].code == 550
    await send(sandbox)
    assert [m.rcpt_tos for m in sandbox.messages] == [("friend@example.test",)]


async def test_disconnect_after_data_keeps_the_message_the_client_never_heard_of(
    sandbox: SmtpSandbox,
) -> None:
    sandbox.inject("disconnect_after_data")

    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await send(sandbox)

    (received,) = sandbox.messages
    assert received.message["Subject"] == "Hello ☃"
    assert sandbox.counters["messages"] == 1


@pytest.mark.parametrize(
    ("operation", "exception"),
    [
        ("connect", aiosmtplib.SMTPConnectTimeoutError),
        ("auth", aiosmtplib.SMTPReadTimeoutError),
        ("data", aiosmtplib.SMTPReadTimeoutError),
    ],
)
async def test_hang_leaves_the_client_to_time_out(
    sandbox: SmtpSandbox, operation: str, exception: type[BaseException]
) -> None:
    sandbox.inject("hang", operation=operation)

    started = time.monotonic()
    with pytest.raises(exception):
        await send(sandbox, timeout=0.3)

    assert 0.25 <= time.monotonic() - started < 3.0
    assert sandbox.messages == []


async def test_fault_hits_the_next_n_requests_then_clears(sandbox: SmtpSandbox) -> None:
    sandbox.inject("transient_451", operation="rcpt", times=2)

    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await send(sandbox)
    await send(sandbox)

    assert len(sandbox.messages) == 1
    assert sandbox.counters["faults"] == 2


async def test_fault_until_cleared(sandbox: SmtpSandbox) -> None:
    sandbox.inject("5xx", times=None, code=552, text="5.3.4 Message too big for system")
    for _ in range(3):
        with pytest.raises(aiosmtplib.SMTPDataError) as caught:
            await send(sandbox)
        assert caught.value.code == 552
        assert caught.value.message == "5.3.4 Message too big for system"
    sandbox.clear_faults()
    await send(sandbox)
    assert len(sandbox.messages) == 1


def test_inject_rejects_unknown_kinds_and_operations() -> None:
    sandbox = SmtpSandbox()
    with pytest.raises(ValueError, match="unknown SMTP fault"):
        sandbox.inject("teapot")
    with pytest.raises(ValueError, match="unknown SMTP operation"):
        sandbox.inject("hang", operation="sendphoto")
    with pytest.raises(ValueError, match="applies only to"):
        sandbox.inject("reject_recipient", operation="data")
    assert sandbox.faults.pending() == []


async def test_message_over_the_size_limit_is_refused() -> None:
    async with SmtpSandbox(max_message_bytes=2000) as sandbox:
        big = make_message()
        big.set_content("x" * 5000)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as caught:
            await send(sandbox, big)
    assert caught.value.code == 552
    assert sandbox.messages == []


async def test_latency_is_added_before_every_reply(sandbox: SmtpSandbox) -> None:
    started = time.monotonic()
    await send(sandbox)
    baseline = time.monotonic() - started

    sandbox.set_latency(0.03)
    started = time.monotonic()
    await send(sandbox)
    slowed = time.monotonic() - started

    # greeting, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA (354), end of data, QUIT
    assert slowed - baseline >= 10 * 0.03 * 0.9


async def test_counts_connections_and_open_connections(sandbox: SmtpSandbox) -> None:
    client = aiosmtplib.SMTP(
        hostname=sandbox.host,
        port=sandbox.tls_port,
        use_tls=True,
        tls_context=sandbox.client_tls_context(),
        local_hostname="client.example.test",
    )
    await client.connect()
    assert sandbox.counters["open_connections"] == 1
    await client.quit()
    await wait_until(lambda: sandbox.counters["open_connections"] == 0)
    assert sandbox.counters["connections"] == 1


def our_threads() -> set[threading.Thread]:
    """Live threads, without the event loop's default executor (it closes with the loop)."""
    return {t for t in threading.enumerate() if not t.name.startswith("asyncio_")}


async def test_stop_releases_hung_sessions_and_closes_every_socket() -> None:
    threads_before = our_threads()
    sandbox = SmtpSandbox()
    await sandbox.start()
    port = sandbox.starttls_port
    sandbox.inject("hang", operation="data", times=None)
    client = asyncio.create_task(send(sandbox, timeout=30))
    await wait_until(
        lambda: sandbox.faults.pending()[0].remaining is None and sandbox.counters["faults"] == 1
    )

    started = time.monotonic()
    await sandbox.stop()
    assert time.monotonic() - started < 2.0

    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await client
    assert sandbox.counters["open_connections"] == 0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    assert our_threads() <= threads_before


@pytest.mark.parametrize("operation", ["connect", "auth", "data"])
async def test_client_hanging_up_on_a_hung_session_leaves_no_socket(operation: str) -> None:
    async def hang_up_on(sandbox: SmtpSandbox) -> None:
        # Not `aiosmtplib.send`: its context manager answers a cancellation with QUIT and
        # waits for the reply the hung server never sends.
        client = aiosmtplib.SMTP(
            hostname=sandbox.host,
            port=sandbox.starttls_port,
            start_tls=True,
            tls_context=sandbox.client_tls_context(),
            local_hostname="client.example.test",
            timeout=30,
        )
        try:
            await client.connect()
            await client.login(sandbox.username, sandbox.password)
            await client.send_message(make_message())
        finally:
            client.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with SmtpSandbox() as sandbox:
            sandbox.inject("hang", operation=operation)
            client = asyncio.create_task(hang_up_on(sandbox))
            await wait_until(lambda: sandbox.counters["faults"] == 1)
            client.cancel()
            with pytest.raises(asyncio.CancelledError):
                await client
            await wait_until(lambda: sandbox.counters["open_connections"] == 0)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_runs_in_a_thread_for_synchronous_callers() -> None:
    threads_before = set(threading.enumerate())
    with SmtpSandbox().run_in_thread() as sandbox:
        with smtplib.SMTP_SSL(
            sandbox.host, sandbox.tls_port, context=sandbox.client_tls_context(), timeout=5
        ) as client:
            client.login(sandbox.username, sandbox.password)
            client.send_message(make_message())
        with smtplib.SMTP(sandbox.host, sandbox.starttls_port, timeout=5) as client:
            client.starttls(context=sandbox.client_tls_context())
            client.login(sandbox.username, sandbox.password)
            client.send_message(make_message("second"))
        assert [m.message["Subject"] for m in sandbox.messages] == ["Hello ☃", "second"]
    # The server loop's default-executor worker is told to exit when that loop closes but is
    # not joined; give it a moment, then nothing may be left.
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(timeout=2)
    assert set(threading.enumerate()) <= threads_before


async def test_pytest_plugin_fixture_serves_smtp(smtp_sandbox: SmtpSandbox) -> None:
    await send(smtp_sandbox)
    assert len(smtp_sandbox.messages) == 1
