"""The sandbox servers in a process of their own, driven over stdin/stdout (JSON lines).

Why a separate process: the servers do real work in Python (aiosmtpd reads an 11 MB DATA
section line by line, the Telegram server parses multipart bodies). Inside the bench process
that work would compete for the GIL with crosspost's event loop and show up in the loop-lag
and timing figures, although a real platform runs on someone else's machine.

Started by `sandboxes.SandboxHost`; prints one line `{"ready": {...addresses and secrets...}}`,
then answers one JSON line per request line:

    {"op": "latency", "seconds": 0.25}      every server: that much per request (see README)
    {"op": "mark"}                          how many messages / photos / uploads so far
    {"op": "telegram_photos", "since": n}   photos from index n on, each fully decoded
    {"op": "counters"}                      each server's counters
    {"op": "stop"}                          shut down and exit
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from typing import Any

from PIL import Image, ImageFile


def _decode_fully(data: bytes) -> dict[str, Any]:
    """Decode every pixel: a half-written or empty file fails here."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return {"decoded": [image.width, image.height], "format": image.format, "error": None}
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return {"decoded": None, "format": None, "error": f"{type(exc).__name__}: {exc}"}


def _instagram_received(instagram: Any) -> int:
    for name in ("posts", "uploads"):
        value = getattr(instagram, name, None)
        if isinstance(value, list | tuple):
            return len(value)
    return int(instagram.counters["uploads"])


def _instagram_sandbox() -> Any:
    """The Instagram server, or None when this install has none (reported by the bench)."""
    try:
        from crosspost_sandbox.instagram import InstagramSandbox
    except ImportError:
        return None
    return InstagramSandbox()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chats", type=int, default=16, help="Telegram channels @bench_1..N")
    args = parser.parse_args()

    from crosspost_sandbox.smtp import SmtpSandbox
    from crosspost_sandbox.telegram import TelegramSandbox

    chats = [f"@bench_{i}" for i in range(1, args.chats + 1)]
    smtp = SmtpSandbox()
    telegram = TelegramSandbox(chats=chats)
    instagram = _instagram_sandbox()
    servers = [s for s in (smtp, telegram, instagram) if s is not None]
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.enter_context(server.run_in_thread())
        ready = {
            "smtp": {
                "host": smtp.host,
                "starttls_port": smtp.starttls_port,
                "tls_port": smtp.tls_port,
                "ca_path": smtp.ca_path,
                "username": smtp.username,
                "password": smtp.password,
            },
            "telegram": {"base_url": telegram.base_url, "token": telegram.token, "chats": chats},
            "instagram": None if instagram is None else instagram_details(instagram),
        }
        print(json.dumps({"ready": ready}), flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            op = request.get("op")
            if op == "stop":
                print(json.dumps({"ok": True}), flush=True)
                break
            if op == "latency":
                for server in servers:
                    server.set_latency(float(request["seconds"]))
                answer: Any = {"ok": True}
            elif op == "mark":
                answer = {
                    "smtp_messages": len(smtp.messages),
                    "telegram_photos": len(telegram.photos),
                    "instagram_uploads": 0 if instagram is None else _instagram_received(instagram),
                }
            elif op == "telegram_photos":
                answer = {
                    "photos": [
                        {"chat": p.chat_id, "bytes": p.size_bytes, **_decode_fully(p.data)}
                        for p in telegram.photos[int(request.get("since", 0)) :]
                    ]
                }
            elif op == "counters":
                answer = {
                    "smtp": smtp.counters.snapshot(),
                    "telegram": telegram.counters.snapshot(),
                    "instagram": {} if instagram is None else instagram.counters.snapshot(),
                }
            else:
                answer = {"error": f"unknown op {op!r}"}
            print(json.dumps(answer), flush=True)
    return 0


def instagram_details(instagram: Any) -> dict[str, Any]:
    """What a client needs to reach the Instagram sandbox (filled in from its attributes)."""
    return {
        "proxy": instagram.proxy_url,
        "ca_path": instagram.ca_path,
        "username": instagram.username,
        "password": instagram.password,
    }


if __name__ == "__main__":
    sys.exit(main())
