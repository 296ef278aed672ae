"""`crosspost` as the bench runs it in a child process: instagrapi's built-in sleeps
neutralised (bench only, see crosspost_sandbox.instagrapi_pauses), then the real CLI entry point."""

from __future__ import annotations

import sys

from crosspost_sandbox.instagrapi_pauses import install_import_hook as neutralise

if __name__ == "__main__":
    neutralise()  # takes effect when (and if) instagrapi is imported
    from crosspost_orchestrator.cli import main

    sys.exit(main())
