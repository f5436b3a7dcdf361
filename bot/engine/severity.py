"""How loud a rule is: the severity names, lowest first, defined once.

The rules file accepts exactly these (`bot.settings.models.Severity` is built
from this tuple), routing keys `notify.by_severity` by them, and the notifiers
rank a batch by `SEVERITY_ORDER` (the most severe first, its icon on a group).
Pure data, so the engine, the settings and the notifiers can all import it.
"""

SEVERITIES = ("info", "warning", "critical")
SEVERITY_ORDER = {name: rank for rank, name in enumerate(SEVERITIES)}
