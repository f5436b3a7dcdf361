"""The one exception tree of Closebell.

Every error a user can cause or meet carries a message they can act on. The CLI
turns each class into an exit code in one place (`bot.cli`), the Telegram
adapter into a short reply; the daemon logs it and carries on with the next step.

    ClosebellError
    ├── ConfigError           1  settings, series or rules file wrong (every problem at file:line:col)
    │   └── RuleTextError     1  a rule's text wrong at an offset (the engine's parsers raise these)
    │       ├── ExprError        an expression (`when`, `clear_when`)
    │       └── TemplateError    a message template
    ├── RulesTestFailed       1  an expectation of rules.test.yaml did not hold
    ├── UsageError            2  the command was asked wrongly
    │   └── SweepError           a sweep that cannot run as asked
    ├── SourceError           3  a source failed or answered with something that is not data
    │   └── SourceUnreachable    no connection at all: the network or the host is down
    ├── DataError             3  the data needed is not there
    ├── StoreError            4  the store cannot be opened or is locked
    └── DeliveryError         5  a notifier could not deliver

The engine raises from this tree too (it may import `bot.errors`, nothing else
outside `bot.engine`), so nothing in `bot/` defines an exception class elsewhere
(tests/test_layering.py checks it).
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


class RuleTextError(ConfigError):
    """A problem `offset` characters into a rule's text; the rules-file loader turns it into a
    file:line:col problem. `message` is the text without position."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__([message])
        self.message = message
        self.offset = offset


class ExprError(RuleTextError):
    """An expression (`when`, `clear_when`, an `all:`/`any:` item) that does not parse or check."""


class TemplateError(RuleTextError):
    """A message template whose `{...}` part does not parse, or whose format spec is not valid."""


class UsageError(ClosebellError):
    """The command was asked wrongly: a bad date, an unknown rule, series or channel."""

    exit_code = 2


class SweepError(UsageError):
    """A sweep that cannot run as asked (unknown rule or parameter, bad values); the message says what to write."""


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


class SourceUnreachable(SourceError):
    """No connection at all (refused, no DNS, no route): the network or the host is down, not the source's data."""


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
