"""Certificates made on the fly with trustme: one CA per sandbox, its PEM on disk for clients."""

from __future__ import annotations

import os
import ssl
import tempfile

import trustme

__all__ = ["SandboxCA"]


class SandboxCA:
    """A throw-away certificate authority and its PEM file (`ca_path`) for clients to trust."""

    def __init__(self, directory: str | None = None) -> None:
        self._ca = trustme.CA(organization_name="crosspost sandbox")
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="crosspost-ca-")
        self.directory = directory or (self._tmp.name if self._tmp else "")
        self.ca_path = os.path.join(self.directory, "sandbox-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)

    def server_context(self, *hostnames: str) -> ssl.SSLContext:
        """A server-side TLS context with a certificate for `hostnames` signed by this CA."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*hostnames).configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side TLS context trusting only this CA (for the sandbox's own tests)."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
