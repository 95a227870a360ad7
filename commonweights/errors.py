"""The project's error types. The CLI maps each to a one-line message and an exit code."""


class CommonweightsError(Exception):
    """Base of every error we raise on purpose; the message names the file or key and the fix."""

    exit_code = 1


class ConfigError(CommonweightsError):
    """A run config, policy file or CLI input is invalid (usage/input error)."""

    exit_code = 2


class InputError(CommonweightsError):
    """An input file (WARC, robots snapshot, token files, checkpoint) is missing or unreadable."""

    exit_code = 2


class PolicyError(CommonweightsError):
    """A governance policy cannot be applied as written."""


class StageError(CommonweightsError):
    """A pipeline stage failed; the message says which and where its log is."""


class SubmissionError(CommonweightsError):
    """sbatch refused a job or a submitted job failed."""


class SigningError(CommonweightsError):
    """A release could not be signed or verified."""
