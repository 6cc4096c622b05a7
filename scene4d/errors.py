"""The one exception type for problems with a user's input or data."""


class Scene4DError(ValueError):
    """Bad input or data (a missing file, a wrong shape, an unknown name).

    The message is one line that names what was expected and what was found; the command
    line prints it on stderr and exits non-zero instead of showing a traceback.
    """
