"""The one error type the user sees: a one-line message and exit status 2, no traceback."""


class UserError(Exception):
    """Bad input from the user (argument, file, key, prompt); the message names what and why."""
