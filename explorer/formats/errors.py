"""The one error a loader raises: its message is what the user reads, in one line."""


class NetworkLoadError(Exception):
    """A network file could not be loaded; str(error) says why, in words a user can act on."""
