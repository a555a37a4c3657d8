"""User-facing errors.

Anything a user can cause by bad input (a missing data set, a wrong checkpoint, an unsupported image
size) raises a subclass of ``DCGANError`` with a one-line message that names the input and what was
expected. The CLI prints that line and exits with code 2; every other exception is a bug and keeps
its traceback.
"""


class DCGANError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class DataError(DCGANError):
    """A data set is missing, malformed or cannot be used as asked."""


class CheckpointError(DCGANError):
    """A checkpoint is missing, truncated, corrupt or of the wrong kind."""


class ConfigError(DCGANError):
    """A model or training setting is out of range or inconsistent."""


def one_line(e: BaseException) -> str:
    """The first line of an exception's message (its type when empty): the reason in a one-line error."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class NotApplicable(ConfigError):
    """A task or command that does not apply to the model it was given (an unconditional GAN where a
    conditional one is needed, or the reverse; a discriminator whose features depend on a label)."""
