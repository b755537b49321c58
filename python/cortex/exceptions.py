"""The errors the client raises."""


class CortexException(Exception):
    """An error from the operator (its message as the exception's text) or from the client.

    ``status`` is the HTTP status the operator answered with, or None when the operator was
    not reached (or the error was the client's own, e.g. a bad argument)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status
