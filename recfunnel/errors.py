"""Errors caused by the user's input: the CLI prints them on one line and exits with code 2."""


class RecfunnelError(Exception):
    """A problem the user can fix (bad file, bad flag, missing data); never a bug in recfunnel."""


class DataError(RecfunnelError):
    """Input data that cannot be read: missing, empty, malformed, or inconsistent."""


class NotFoundError(RecfunnelError):
    """An id (user, item) the system does not know."""


class ConflictError(RecfunnelError):
    """A request that clashes with what exists, such as an item id already in the catalog."""


class StaleError(ConflictError):
    """A change to artifacts that another process has changed since this one loaded them."""
