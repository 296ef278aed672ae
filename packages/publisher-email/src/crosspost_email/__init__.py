"""E-mail (and FetLife upload-by-e-mail) publisher for crosspost, on aiosmtplib."""

from importlib.metadata import version as _version

from crosspost_email.fetlife import clean_caption, compose
from crosspost_email.publisher import EmailPublisher, create_publisher
from crosspost_email.settings import EmailSettings

__version__ = _version("crosspost-publisher-email")

__all__ = [
    "EmailPublisher",
    "EmailSettings",
    "__version__",
    "clean_caption",
    "compose",
    "create_publisher",
]
