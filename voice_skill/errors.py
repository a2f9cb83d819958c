"""The one error type the command line turns into a single line and exit status 2."""


class UserError(Exception):
    """Bad input the user can fix: a file, an option, a device, a model.

    The message is one line that names the problem and what to do about it.
    """
