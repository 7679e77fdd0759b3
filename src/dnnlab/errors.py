"""The one exception type the CLI turns into a one-line message and exit code 2."""


class DnnlabError(Exception):
    """A problem the user can fix; its message names the problem and the fix."""
