"""Bring the store up to date: each series from its primary source, else its fallback.

Fetches are incremental: only what is newer than the last stored date, with an
overlap that picks up revisions (FRED revises CPI for months; ETF adjusted
closes change on ex-dividend days). Each series is written in its own
transaction, and each attempt is recorded with its source, so `status` can say
which source served what and which one failed.

Without a network, every series would wait out its primary and its fallback,
each with retries and timeouts (49 s for `run --once`). So the first failure to
connect at all (refused, no DNS, no route: `SourceUnreachable`, never an HTTP
status) marks that host unreachable for the rest of the update and triggers
one probe: a TCP connect to another host the series use. If that fails too, the
network is down and every remaining source is skipped at once. Each source's
line names its own failure only: the source that met the outage says what it
met, every later one "not tried (network unreachable)", and the outage itself
(which hosts, and why) is said once, on the result during which it was found.
An update also stops starting new series once its time budget is spent.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlsplit

from bot.data import clean as cleaning
from bot.data.sources import get_source
from bot.data.sources.base import between
from bot.errors import ClosebellError, SourceError, SourceUnreachable
from bot.settings.values import SeriesDef, SourceSettings

log = logging.getLogger(__name__)

OVERLAP = {"daily": timedelta(days=10), "monthly": timedelta(days=120)}
DEFAULT_HISTORY = timedelta(days=365 * 15)  # first backfill from a network source
BUDGET_SECONDS = 240.0  # one update starts no new series after this long (the daemon polls every 10 minutes)
PROBE_TIMEOUT = 3.0


@dataclass
class FetchResult:
    series: str
    ok: bool
    source: str = ""
    rows: int = 0  # new or changed rows written
    last: date | None = None  # newest stored date afterwards
    errors: list[str] = field(default_factory=list)  # each failed source, in order tried
    dropped: list[str] = field(default_factory=list)  # what cleaning rejected
    outage: str = ""  # the network outage found while fetching this series (said on this result only)

    def line(self) -> str:
        if self.ok:
            extra = f"; dropped: {'; '.join(self.dropped)}" if self.dropped else ""
            via = f" (after: {'; '.join(self.errors)})" if self.errors else ""
            return f"{self.series}: {self.rows} new or changed row(s) from {self.source}, latest " \
                   f"{self.last or '-'}{via}{extra}"
        # sources skipped for the same reason share it: "yahoo and nasdaq: not tried (network unreachable)"
        parts: list[tuple[list[str], str]] = []
        for error in self.errors:
            source, _, rest = error.partition(": ")
            if parts and rest.startswith(NOT_TRIED) and parts[-1][1] == rest:
                parts[-1][0].append(source)
            else:
                parts.append(([source], rest))
        line = f"{self.series}: FAILED: " + "; ".join(f"{' and '.join(s)}: {r}" for s, r in parts)
        return f"{line}; {self.outage}" if self.outage else line


NOT_TRIED = "not tried ("


def chain_for(series: SeriesDef, data_dir: str | None):
    """(source name, symbol, source settings) to try in order."""
    if data_dir:
        return [("csv", series.name, SourceSettings(base_url=str(data_dir), timeout=None))]
    return [(ref.source, ref.symbol, None) for ref in series.chain]


def host_of(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def tcp_probe(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None if a TCP connection to host:port opens, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror as exc:
        return f"name resolution failed ({exc.strerror or exc})"
    except OSError as exc:
        return (exc.strerror or str(exc) or type(exc).__name__).lower()


class Reach:
    """What this update has learnt about the network: hosts that refused, and whether it is down."""

    def __init__(self, candidates: list[tuple[str, int]], probe=tcp_probe):
        self.candidates = candidates  # every network host the series use, in first-use order
        self.probe = probe
        self.dead: set[tuple[str, int]] = set()  # hosts that could not be connected to
        self.down: str | None = None  # the outage in one line: which hosts could not be reached, and why
        self.probed = False
        self.told = False  # the outage has been said (on one result), so no other result repeats it

    def skip_reason(self, host) -> str | None:
        """Why a source on `host` is not tried, in its own words: never another source's error."""
        if self.down:
            return f"{NOT_TRIED}network unreachable)"
        if host in self.dead:
            return f"{NOT_TRIED}{host[0]}:{host[1]} could not be connected to a moment ago)"
        return None

    def tell(self) -> str:
        """The outage, the first time it is asked for; "" after that (it is said once per update)."""
        if not self.down or self.told:
            return ""
        self.told = True
        return f"network unreachable: {self.down}; the sources after this one were not tried"

    def failed(self, host) -> str:
        """`host` could not be connected to: remember it, once per update ask whether the network is down,
        and return the outage if it is now known and not yet said ("" otherwise)."""
        if host is None:
            return ""
        self.dead.add(host)
        self._judge(host)
        return self.tell()

    def _judge(self, host) -> None:
        """Set `down` when the network is: all source hosts dead, or the first failure and a probe of another."""
        if self.probed:
            if all(h in self.dead for h in self.candidates):
                self.down = f"none of the {len(self.candidates)} source hosts can be connected to"
            return
        self.probed = True
        others = [h for h in self.candidates if h not in self.dead]
        if not others:
            self.down = f"{host[0]}:{host[1]}, the only source host, cannot be connected to"
            return
        probe_host, probe_port = others[0]
        why = self.probe(probe_host, probe_port)
        log.info("fetch: %s unreachable; probe of %s:%s: %s", host[0], probe_host, probe_port, why or "connected")
        if why:
            self.down = f"{host[0]}:{host[1]} and {probe_host}:{probe_port} cannot be connected to ({why})"


def network_hosts(series_defs, names, settings) -> list[tuple[str, int]]:
    hosts: list[tuple[str, int]] = []
    for name in names:
        for ref in series_defs[name].chain:
            if ref.source == "csv":
                continue
            source = get_source(ref.source, settings.sources.get(ref.source) if settings is not None else None)
            host = host_of(source.base_url)
            if host and host not in hosts:
                hosts.append(host)
    return hosts


def update(store, series_defs: dict[str, SeriesDef], settings=None, names=None, since: date | None = None,
           data_dir: str | None = None, *, today: date, progress: bool = False,
           budget_seconds: float | None = BUDGET_SECONDS, timer=time.monotonic, probe=tcp_probe
           ) -> list[FetchResult]:
    """Each series in `names` (default: all) from its sources into the store; a FetchResult per series.

    `today` (New York, from the caller's clock) bounds what counts as a future date.
    `budget_seconds` (None: no limit) stops starting new series once spent (measured with `timer`, a
    monotonic clock); `probe(host, port) -> None | reason` is the network check (see the module docstring).
    """
    names = list(names or series_defs)
    last_dates = store.last_dates()
    reach = Reach([] if data_dir else network_hosts(series_defs, names, settings), probe)
    started = timer()
    results = []
    items = names
    if progress:
        from tqdm import tqdm  # deliberately lazy: the progress bar only on a terminal
        items = tqdm(names, desc="fetch", unit="series", leave=False)
    for name in items:
        series = series_defs[name]
        if budget_seconds is not None and timer() - started > budget_seconds:
            message = f"not tried: this fetch's time budget of {budget_seconds:g}s was spent"
            store.record_fetch(name, series.source, False, 0, message)
            results.append(FetchResult(name, ok=False, last=last_dates.get(name), errors=[message]))
        else:
            results.append(update_one(store, series, settings, since, data_dir, today, last_dates.get(name), reach))
        log.info("fetch %s", results[-1].line())
    return results


def update_one(store, series: SeriesDef, settings, since, data_dir, today, last: date | None,
               reach: Reach | None = None) -> FetchResult:
    reach = reach or Reach([])
    result = FetchResult(series.name, ok=False, last=last)
    if since is not None:
        start = since
    elif last is not None:
        start = last - OVERLAP[series.frequency]
    else:
        start = date(1900, 1, 1) if data_dir else today - DEFAULT_HISTORY
    for source_name, symbol, source_settings in chain_for(series, data_dir):
        if source_settings is None and settings is not None:
            source_settings = settings.sources.get(source_name)
        source = get_source(source_name, source_settings)
        host = host_of(source.base_url) if source_name != "csv" else None
        skip = reach.skip_reason(host) if host else None
        if skip:
            message = f"{source_name}: {skip}"
            result.errors.append(message)
            store.record_fetch(series.name, source_name, False, 0, message)
            continue
        try:
            raw = source.fetch(symbol, start, today, monthly=series.frequency == "monthly")
            raw = between(raw, start, None)
            previous = store.last_value_before(series.name, raw.index.min().date()) if len(raw) else None
            kept, dropped = cleaning.clean(raw, series, today, previous, origin=source_name)
            if len(raw) and kept.empty:
                raise SourceError(source_name, f"all {len(raw)} row(s) rejected: {'; '.join(dropped)}")
            first_seen = today if series.frequency == "monthly" else None
            rows = store.write_observations(series.name, kept, source_name, first_seen=first_seen)
        except ClosebellError as exc:
            message = str(exc)
            if isinstance(exc, SourceUnreachable):
                result.outage = reach.failed(host) or result.outage
            result.errors.append(message)
            store.record_fetch(series.name, source_name, False, 0, message)
            log.warning("fetch %s from %s failed: %s", series.name, source_name, message)
            continue
        store.record_fetch(series.name, source_name, True, rows, "; ".join(dropped))
        result.ok, result.source, result.rows, result.dropped = True, source_name, rows, dropped
        if len(kept):
            newest = kept.index.max().date()
            result.last = max(newest, last) if last else newest
        return result
    return result
