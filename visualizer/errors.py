"""The one error type the user sees: a one-line message and exit status 2, no traceback."""


class UserError(Exception):
    """Bad input from the user (argument, file, key, prompt); the message names what and why."""


class Unreachable(Exception):
    """A server that did not answer within the time a command waits for it: exit status 1 and
    one line (it may come back; the input was not wrong)."""
