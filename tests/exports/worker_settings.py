"""Settings of a worker that tests/exports starts: the test settings, with the export's progress
step and a pause after each step read from the environment, so that a kill lands mid-file."""

import os

from crm.settings.test import *  # noqa: F403

EXPORT_PROGRESS_ROWS = int(os.environ.get("EXPORT_PROGRESS_ROWS", "1000"))
EXPORT_CHUNK_PAUSE_SECONDS = float(os.environ.get("EXPORT_CHUNK_PAUSE_SECONDS", "0"))
