"""One error hierarchy for everything a user can fix.

Library code raises these; only the CLI turns them into a one-line message and a non-zero exit.
Each subclass is also the matching builtin, so library users can catch either.
Messages name the bad value and say how to fix it, in one line.
"""


class SansaError(Exception):
    """Base class: a problem with the user's input, files or environment."""


class UserInputError(SansaError, ValueError):
    """A value given by the user is invalid (bad flag, wrong size, empty mask, ...)."""


class MissingFileError(SansaError, FileNotFoundError):
    """A file or directory the user named does not exist or cannot be read."""


class CheckpointError(SansaError, RuntimeError):
    """A SAM2 checkpoint is missing, unreadable or does not match the model."""


class DownloadError(SansaError, OSError):
    """A download failed, was truncated, or did not match its checksum."""


class PluginError(SansaError, LookupError):
    """An adapter or dataset plugin is unknown, ambiguous or failed to load."""


class AdapterFileError(SansaError, ValueError):
    """An adapter file is corrupt, of an unknown format, or does not fit the model."""


class DatasetError(SansaError, ValueError):
    """A dataset folder is missing pieces or holds malformed files."""
