"""The crosspost publisher contract, the concurrent WorkflowOrchestrator and the crosspost command."""

from importlib.metadata import version as _version

from crosspost_orchestrator.config import Config, load_config
from crosspost_orchestrator.errors import (
    ConfigError,
    CrosspostError,
    InputError,
    LedgerError,
    NothingToPublishError,
    PluginError,
)
from crosspost_orchestrator.folder_source import FolderSource
from crosspost_orchestrator.ledger import InMemoryLedger, Ledger, LedgerEntry
from crosspost_orchestrator.orchestrator import WorkflowObserver, WorkflowOrchestrator
from crosspost_orchestrator.plugins import (
    ENTRY_POINT_GROUP,
    PluginInfo,
    build_publishers,
    discover_publishers,
)
from crosspost_orchestrator.publisher import Publisher
from crosspost_orchestrator.results import PublishResult, PublishStatus, WorkflowResult
from crosspost_orchestrator.settings import (
    SECRET_SETTING_NAMES,
    secret_env_var,
    secret_field,
    settings_from_mapping,
)
from crosspost_orchestrator.source import ImageSource, SelectedImage, SingleImageSource, sha256_file
from crosspost_orchestrator.sqlite_ledger import SqliteLedger

__version__ = _version("crosspost-core-orchestrator")

__all__ = [
    "ENTRY_POINT_GROUP",
    "SECRET_SETTING_NAMES",
    "Config",
    "ConfigError",
    "CrosspostError",
    "FolderSource",
    "ImageSource",
    "InMemoryLedger",
    "InputError",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "NothingToPublishError",
    "PluginError",
    "PluginInfo",
    "PublishResult",
    "PublishStatus",
    "Publisher",
    "SelectedImage",
    "SingleImageSource",
    "SqliteLedger",
    "WorkflowObserver",
    "WorkflowOrchestrator",
    "WorkflowResult",
    "__version__",
    "build_publishers",
    "discover_publishers",
    "load_config",
    "secret_env_var",
    "secret_field",
    "settings_from_mapping",
    "sha256_file",
]
