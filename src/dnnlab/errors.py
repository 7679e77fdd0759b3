"""The one exception type the CLI turns into a one-line message and exit code 2, and the exit codes."""

import signal

USAGE_ERROR = 2  # a DnnlabError: one line on stderr
ERROR_PREFIX = "dnnlab: error: "  # how that line starts (parallel_runs reads a worker's reason after it)
INTERRUPTED_EXIT = 128 + signal.SIGINT  # the shell's convention for a Ctrl-C'd command


class DnnlabError(Exception):
    """A problem the user can fix; its message names the problem and the fix."""
