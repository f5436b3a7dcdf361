"""The one exception tree of Closebell.

Every error a user can cause or meet carries a message they can act on. The CLI
turns each class into an exit code in one place (`bot.cli`); the daemon logs it
and carries on with the next step.
"""


class ClosebellError(Exception):
    """Base class: anything with a message fit for a user."""

    exit_code = 1


class ConfigError(ClosebellError):
    """A settings or rules file is wrong. `problems` holds every finding, in file order."""

    exit_code = 1

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(ClosebellError):
    """The command was asked wrongly: a bad date, an unknown rule, series or channel."""

    exit_code = 2


class RulesTestFailed(ClosebellError):
    """`test-rules`: an expectation about the rules did not hold (each one is printed before this)."""

    exit_code = 1


class SourceError(ClosebellError):
    """A data source failed or answered with something that is not data."""

    exit_code = 3

    def __init__(self, source, message, url=None):
        self.source = source
        self.url = url
        where = f" ({url})" if url else ""
        super().__init__(f"{source}{where}: {message}")


class DataError(ClosebellError):
    """The data needed is not there (no file, no rows, a series never fetched)."""

    exit_code = 3


class StoreError(ClosebellError):
    """The store cannot be opened or is locked by another instance."""

    exit_code = 4


class DeliveryError(ClosebellError):
    """A notifier could not deliver. `permanent` ones are not retried (bad token, unknown chat)."""

    exit_code = 5

    def __init__(self, channel, message, permanent=False, retry_after=None):
        self.channel = channel
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(f"{channel}: {message}")
