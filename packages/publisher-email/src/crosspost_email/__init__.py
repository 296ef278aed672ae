"""E-mail (and FetLife upload-by-e-mail) publisher for crosspost, on aiosmtplib."""

from importlib.metadata import version as _version

__version__ = _version("crosspost-publisher-email")

__all__ = ["__version__"]
