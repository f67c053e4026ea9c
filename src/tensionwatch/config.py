"""config.yaml: load, expand ${ENV_VAR}, validate into typed settings.

A bad file raises `ConfigError` carrying one message per problem, each naming the key path
(`topics.iran_israel.signals[3].weight: must be a number`), so the CLI can print them all
without a traceback. Unknown keys are errors: a typo must never silently disable a setting.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from cronsim import CronSim, CronSimError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from tensionwatch import __version__
from tensionwatch.errors import ConfigError

DEFAULT_CONFIG = "config.yaml"
PROJECT_URL = "https://github.com/tensionwatch/tensionwatch"
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Feed(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
    url: str
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}$")] = "en"
    # Who publishes it: two feeds of one outlet count as one outlet in the index (default:
    # the feed's host without www./feeds./rss., so feeds.bbci.co.uk and www.bbci.co.uk agree).
    outlet: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    # How often to ask this feed, in place of polling.min_interval_minutes (its <ttl> or
    # Cache-Control max-age may still ask for longer; see polling.py).
    interval_minutes: Annotated[float, Field(ge=1, le=7 * 24 * 60)] | None = None
    # A 410 Gone retires the feed until its url changes. False: the feed is asked again (a
    # retired one at once), and a 410 is a failure like any other (backoff).
    retire_when_gone: bool = True
    # The url as written in config.yaml, before ${VAR} expansion (set by parse_config).
    _written_url: str | None = PrivateAttr(default=None)

    @property
    def public_url(self) -> str:
        """The address as it may be stored and shown: values from the environment stay
        `${NAME}` (a token in a query string is a secret), and a password in it is masked."""
        written = self._written_url or self.url
        return _mask_password(_ENV_REF.sub(lambda m: "${" + m.group(1) + "}", written))

    @property
    def outlet_name(self) -> str:
        if self.outlet:
            return self.outlet
        host = (urlsplit(self.url).hostname or "").lower()
        for prefix in ("www.", "feeds.", "feed.", "rss.", "rssfeeds."):
            if host.startswith(prefix) and host.count(".") > 1:
                host = host[len(prefix) :]
        return host

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^\s/]+", url):
            raise ValueError("must be an http:// or https:// address")
        return url


class FetchSettings(_Strict):
    timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    deadline_seconds: Annotated[float, Field(gt=0)] = 30.0
    concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    per_host_concurrency: Annotated[int, Field(ge=1, le=32)] = 2
    max_body_bytes: Annotated[int, Field(ge=1024)] = 5_000_000
    max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    retry_backoff_seconds: Annotated[float, Field(ge=0)] = 1.0
    # Who to tell when tensionwatch misbehaves towards a site: named in every request's
    # User-Agent, `tensionwatch/<version> (+<contact>)`.
    contact: str = PROJECT_URL
    # The whole User-Agent header instead (printable ASCII); default: from `contact`.
    user_agent: Annotated[str, Field(pattern=r"^[\x20-\x7e]{1,200}$")] | None = None

    @field_validator("contact")
    @classmethod
    def _contact_address(cls, contact: str) -> str:
        # It goes inside the header's comment "( … )": printable ASCII, no spaces or brackets.
        if not re.match(r"^(https?://|mailto:)[\x21-\x27\x2a-\x7e]{1,200}$", contact):
            raise ValueError(
                "must be an http(s):// or mailto: address in printable ASCII, without spaces "
                "or parentheses"
            )
        return contact

    @property
    def user_agent_header(self) -> str:
        """The User-Agent every request sends: the project, its version and the contact."""
        return self.user_agent or f"tensionwatch/{__version__} (+{self.contact})"


class PollingSettings(_Strict):
    """When each feed is asked again (polling.py; README "Polling")."""

    # A feed that answered is asked again after this long at the soonest (per feed:
    # feeds[].interval_minutes).
    min_interval_minutes: Annotated[float, Field(ge=1, le=7 * 24 * 60)] = 15
    # A feed's <ttl> or Cache-Control max-age longer than this counts as this long.
    max_interval_hours: Annotated[float, Field(gt=0, le=30 * 24)] = 24
    # A failing feed backs off, doubling, up to this: it is asked at least this often.
    max_backoff_hours: Annotated[float, Field(gt=0, le=30 * 24)] = 24
    # A Retry-After longer than this (after 429 or 503) counts as this long.
    max_retry_after_hours: Annotated[float, Field(gt=0, le=30 * 24)] = 7 * 24


class ParseSettings(_Strict):
    """Parsing and scoring run in worker processes, each feed's body under a time limit."""

    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    workers: Annotated[int, Field(ge=1, le=32)] | None = None  # default: the cores, up to 4


class StorageSettings(_Strict):
    path: str = "data/tensionwatch.duckdb"
    lock_timeout_seconds: Annotated[float, Field(ge=0)] = 60.0
    lock_retry_seconds: Annotated[float, Field(gt=0)] = 1.0
    max_pending_mb: Annotated[float, Field(gt=0)] = 512.0
    # After every stored cycle, a copy of the database for readers (`tensionwatch sql`,
    # notebooks), swapped in whole: a reader never holds the file the cycles write.
    read_copy: bool = True


class EventSettings(_Strict):
    """Copies of one story from several outlets are one event (see events.py)."""

    enabled: bool = True  # off: every story is an event of its own (one outlet per story)
    window_hours: Annotated[float, Field(gt=0, le=24 * 14)] = 48
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.5  # share of headline words in common


class IndexSettings(_Strict):
    """The topic index views: which period averages 100, and what coverage is poor."""

    base_from: date | None = None  # default: from the first stored story
    base_until: date | None = None  # default: to now
    poor_coverage: Annotated[float, Field(ge=0, le=1)] = 0.5  # answered / polled below this


class Destination(_Strict):
    """Where alerts go: an Apprise URL (json://, form://, mailto://, slack://, …). Put its
    secrets in ${ENV} references: they are never stored, logged or shown."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]  # what tables and logs show
    url: Annotated[str, Field(min_length=4, max_length=4000)]


class AlertSettings(_Strict):
    """Spike alerts (detect.py; README "Alerts")."""

    destinations: list[Destination] = []
    retry_minutes: Annotated[float, Field(gt=0)] = 5  # first wait after a failed delivery; doubles
    give_up_hours: Annotated[float, Field(gt=0)] = 24  # a delivery still failing this late: failed
    send_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 20
    # Health: the pipeline is blind when this share of feeds failed this many cycles in a row.
    failing_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    failing_cycles: Annotated[int, Field(ge=1)] = 3
    # `tensionwatch alerts --watchdog`: stalled when no cycle was stored for this long.
    stalled_hours: Annotated[float, Field(gt=0)] = 2

    # Window widths in hours, each aligned to UTC midnight: a divisor of 24, or 24.
    windows_hours: Annotated[list[Literal[1, 2, 3, 4, 6, 8, 12, 24]], Field(min_length=1)] = [6, 24]
    metric: Literal["share", "events", "score_sum"] = "share"
    threshold: Annotated[float, Field(gt=0)] = 3.5  # robust z of an alert, severity "elevated"
    high: Annotated[float, Field(gt=0)] = 5.0  # robust z of severity "high"
    critical: Annotated[float, Field(gt=0)] = 8.0  # robust z of severity "critical"
    min_stories: Annotated[int, Field(ge=1)] = 5  # tension stories in the window
    min_outlets: Annotated[int, Field(ge=1)] = 2  # distinct outlets carrying them
    baseline_days: Annotated[int, Field(ge=1, le=366)] = 28
    warmup_windows: Annotated[int, Field(ge=3)] = 20  # usable baseline windows before any alert
    seasonal_weeks: Annotated[int, Field(ge=0, le=52)] = 8  # 0: never compare like with like
    seasonal_min_windows: Annotated[int, Field(ge=3)] = 6
    min_spread_stories: Annotated[float, Field(ge=0)] = 1.0  # × √(median count): the MAD floor
    partial_coverage: Annotated[float, Field(ge=0, le=1)] = 0.5  # answered / polled below: no spike
    cooldown_hours: Annotated[float, Field(ge=0)] = 12
    clear_after_hours: Annotated[float, Field(gt=0)] = 24  # not hot this long: back to normal

    @property
    def history_days(self) -> int:
        """How many days before a window its baseline can reach."""
        return max(self.baseline_days, 7 * self.seasonal_weeks)

    @model_validator(mode="after")
    def _severities_in_order(self) -> AlertSettings:
        if not self.threshold <= self.high <= self.critical:
            raise ValueError("needs threshold <= high <= critical")
        names = [d.name for d in self.destinations]
        if len(set(names)) < len(names):
            raise ValueError("destination names must differ")
        return self


class RetentionSettings(_Strict):
    """How long the bulky history that nothing reads after a while is kept (retention.py).
    Scores, titles, links, events, runs, alerts and the trend tables are kept for good."""

    # Days a story's summary (and the headline words grouping kept for it) stays after the
    # story happened and was first seen; null: for good. Rescoring reads it.
    story_text_days: Annotated[int, Field(ge=1)] | None = 365
    # Days a `fetches` row stays; null: for good. The alert detector's coverage reads them.
    fetch_log_days: Annotated[int, Field(ge=1)] | None = 180
    # The scheduled prune runs at most this often (retention.prune_if_due).
    prune_every_hours: Annotated[float, Field(gt=0)] = 24


class ScheduleSettings(_Strict):
    """When `tensionwatch serve` (and prefect.yaml's deployment) runs a cycle."""

    interval_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15
    # A cron expression (five fields, read in `timezone`) instead of the interval.
    cron: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    timezone: str = "UTC"  # an IANA zone: when a cron's "0 6 * * *" is, and intervals' anchor
    # `alerts --watchdog` beside the cycles under serve, every this many minutes; 0: none.
    watchdog_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 15
    # The local Prefect server `serve` starts when PREFECT_API_URL is not set (127.0.0.1 only).
    server_port: Annotated[int, Field(ge=1024, le=65535)] = 4200

    @field_validator("cron")
    @classmethod
    def _cron(cls, cron: str | None) -> str | None:
        if cron is None:
            return None
        try:
            CronSim(cron, datetime(2026, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"not a cron expression ({exc}): {cron!r}") from None
        if len(cron.split()) != 5:  # Prefect's schedules read five fields, not seconds
            raise ValueError(f"needs five fields (minute hour day month weekday): {cron!r}")
        return cron

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe", a folder
            raise ValueError(
                f"not a time zone name such as UTC or Europe/Istanbul: {zone!r}"
            ) from None
        return zone

    @model_validator(mode="after")
    def _one_way(self) -> ScheduleSettings:
        if self.cron and "interval_minutes" in self.model_fields_set:
            raise ValueError("give interval_minutes or cron, not both")
        return self


TermText = Annotated[str, Field(min_length=1, max_length=200)]


class WeightedTerm(_Strict):
    term: TermText
    weight: float
    kind: Literal["threat", "act"] = Field("act", alias="class")
    cap: Annotated[int, Field(ge=1)] | None = None


class CounterTerm(_Strict):
    term: TermText
    weight: Annotated[float, Field(lt=0)]
    cap: Annotated[int, Field(ge=1)] | None = None


class Focus(_Strict):
    """Where a story's parties must come together for the story to be *about* the topic."""

    # How many sentences of the summary are its lead: with the headline, where a story says
    # what it is about. Beyond the lead, a story that names the parties together is relevant
    # only with stronger evidence (see score.py).
    lead_sentences: Annotated[int, Field(ge=0, le=10)] = 1
    # Whether a sentence beyond the lead can make a story relevant at all.
    body: bool = True
    # A summary sentence that names the parties further apart than this many words names
    # them in passing, and counts for neither; 0 turns this off.
    sentence_window: Annotated[int, Field(ge=0, le=200)] = 24
    # A headline that joins the parties directly ("Iran accuses Israel", "Israel hits Iran"):
    # at most this many words between them, none of them a list word. Such a headline is
    # about the dyad without a signal word; 0 turns this off.
    headline_gap: Annotated[int, Field(ge=0, le=10)] = 3
    # Words that make a list of the parties rather than a relation ("Iran and Israel top the
    # visitors"); commas and semicolons between the parties do the same.
    # Arabic و and Hebrew ו are written onto the next word: "إيران وإسرائيل" has "و"
    # between the two names once the clitic is set apart.
    list_words: list[TermText] = [
        "and", "or", "ve", "veya", "ile", "nor",
        "и", "или", "либо",  # Russian
        "و", "یا", "نه",  # Persian
        "او", "أو", "أم",  # Arabic (و as in Persian)
        "ו", "או",  # Hebrew
    ]  # fmt: skip
    # …unless the pair is framed as one: "between Iran and Israel", "İran ile İsrail arasında".
    pair_words: list[TermText] = [
        "between", "arasinda", "arasindaki", "между", "بين", "وبين", "میان", "بین", "مابین",
        "בין", "לבין",
    ]  # fmt: skip


class Commentary(_Strict):
    """Headlines that discuss the topic rather than report an event: their score is scaled
    by `factor` (the story stays relevant). The label guide's "low" intensity is analysis."""

    # Words that open a headline, or a part of it after ":", "|" or a dash.
    words: list[TermText] = []
    # Whether a headline ending in "?" is commentary ("Will the shadow war go open?").
    questions: bool = True
    factor: Annotated[float, Field(ge=0, le=1)] = 0.3


class Negation(_Strict):
    """A signal with a negator this many words before (or, for Turkish, after) counts zero."""

    window: Annotated[int, Field(ge=1, le=10)] = 3
    before: list[TermText] = []
    after: list[TermText] = []


# Topic.rules_version's cache: id → (the topic, its version).
_RULES_VERSIONS: dict[int, tuple[Topic, str]] = {}


class LanguageNegation(_Strict):
    """Negators of one language, added to the topic's for its stories (the topic's window)."""

    before: list[TermText] = []
    after: list[TermText] = []


class LanguageRules(_Strict):
    """Rules of a topic that apply to stories in one language only (`by_language`): terms
    of a script two languages share (Persian and Arabic) must not speak for the other one
    (Persian رئیسی, Raisi, folds like Arabic الرئيسي, "main"; Persian نفت, oil, is Arabic
    for "she denied"). Each list adds to the topic's list of the same name."""

    actors: dict[Annotated[str, Field(pattern=NAME_PATTERN)], list[TermText]] = {}
    signals: list[WeightedTerm] = []
    counters: list[CounterTerm] = []
    exclusions: list[TermText] = []
    not_actors: list[TermText] = []
    third_parties: list[TermText] = []
    negation: LanguageNegation = LanguageNegation()
    commentary: list[TermText] = []  # words that open an analysis headline


class Topic(_Strict):
    title: str
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] | None = None
    actors: dict[Annotated[str, Field(pattern=NAME_PATTERN)], list[TermText]]
    signals: list[WeightedTerm] = []
    counters: list[CounterTerm] = []
    exclusions: list[TermText] = []
    # Phrases in which an actor's name labels something else ("the Israel-Hamas war"): an
    # actor term inside one names no actor.
    not_actors: list[TermText] = []
    # Other countries and sides ("the US", "Saudi", "Palestinian"): a party named in a list
    # with one of them ("the US and Israel") is one of several, not a side (see score.py).
    third_parties: list[TermText] = []
    title_boost: Annotated[float, Field(ge=1)] = 1.5
    max_count: Annotated[int, Field(ge=1)] = 3
    # The actor groups that name the two sides: a story naming them all is "both named",
    # the baseline `eval` compares with, and a near miss when not flagged (default: every group).
    parties: list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None = None
    focus: Focus = Focus()
    negation: Negation = Negation()
    commentary: Commentary = Commentary()
    # Rules for the stories of one language only (README "Languages").
    by_language: dict[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")], LanguageRules] = {}

    @field_validator("actors")
    @classmethod
    def _groups_not_empty(cls, actors: dict[str, list[str]]) -> dict[str, list[str]]:
        if not actors:
            raise ValueError("needs at least one actor group")
        for group, terms in actors.items():
            if not terms:
                raise ValueError(f"actor group {group!r} has no terms")
        return actors

    @model_validator(mode="after")
    def _parties_are_groups(self) -> Topic:
        unknown = [p for p in self.parties or [] if p not in self.actors]
        if unknown:
            raise ValueError(f"parties names no actor group: {', '.join(unknown)}")
        # Rules of a language the topic does not read (`languages`) are kept and unused: a
        # topic narrowed to English keeps its other languages' rules for later.
        for language, rules in self.by_language.items():
            unknown = [g for g in rules.actors if g not in self.actors]
            if unknown:
                raise ValueError(
                    f"by_language.{language}.actors names no actor group of the topic: "
                    f"{', '.join(unknown)}"
                )
        return self

    @property
    def party_groups(self) -> list[str]:
        return list(self.parties) if self.parties else list(self.actors)

    def rules_version(self) -> str:
        """Hash of what decides a score: the rules and the version of the code that applies
        them (score.SCORER_VERSION), so scores from different rule sets or scorers are never
        mixed and `rescore` can redo history after a change to matching. Cosmetic fields (the
        topic's `title`) are left out: renaming a topic keeps its history current."""
        # Once per topic object: six languages' rules make a dump of ~1 MB, and the store asks
        # for each topic's version for every batch it writes. Keyed by the object itself
        # (a model_copy with other rules is another object), and only the latest few are kept.
        cached = _RULES_VERSIONS.get(id(self))
        if cached is not None and cached[0] is self:
            return cached[1]
        version = self._compute_rules_version()
        if len(_RULES_VERSIONS) >= 64:
            _RULES_VERSIONS.pop(next(iter(_RULES_VERSIONS)))
        _RULES_VERSIONS[id(self)] = (self, version)
        return version

    def _compute_rules_version(self) -> str:
        from tensionwatch.score import SCORER_VERSION  # score.py imports this module

        rules = self.model_dump(mode="json", by_alias=True, exclude={"title"})
        canonical = json.dumps({"scorer": SCORER_VERSION, "rules": rules}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class Config(_Strict):
    feeds: Annotated[list[Feed], Field(min_length=1)]
    topics: dict[Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)], Topic]
    storage: StorageSettings = StorageSettings()
    fetch: FetchSettings = FetchSettings()
    polling: PollingSettings = PollingSettings()
    parse: ParseSettings = ParseSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    events: EventSettings = EventSettings()
    index: IndexSettings = IndexSettings()
    alerts: AlertSettings = AlertSettings()
    retention: RetentionSettings = RetentionSettings()
    # Where the file was read from; relative storage paths are resolved against it.
    base_dir: Path = Field(default=Path("."), exclude=True)
    # Values the environment put into feed addresses → their `${NAME}`: never stored or shown.
    _secrets: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def has_secrets(self) -> bool:
        return bool(self._secrets)

    def redact(self, text: str | None) -> str | None:
        """Text that may quote a feed address (an error, a redirect target), secrets hidden."""
        if not text:
            return text
        if self._secrets and "%" in text and any(v in unquote(text) for v in self._secrets):
            text = unquote(text)  # an address encoded in part ("a%20b/c"): compare it decoded
        for value in sorted(self._secrets, key=len, reverse=True):
            placeholder = self._secrets[value]
            text = text.replace(value, placeholder).replace(quote(value, safe=""), placeholder)
        return _mask_password(text)

    def expand(self, text: str) -> str:
        """The inverse of `redact` for an address stored with `${NAME}` in it (a feed's
        remembered new address): the environment's values put back, as config.yaml does."""
        for value, placeholder in self._secrets.items():
            text = text.replace(placeholder, value)
        return text

    @model_validator(mode="after")
    def _unique_feeds(self) -> Config:
        problems = []
        for attr in ("name", "url"):
            seen: set[str] = set()
            for feed in self.feeds:
                value = getattr(feed, attr)
                if value in seen:
                    problems.append(f"feed {attr} {value!r} appears twice")
                seen.add(value)
        if not self.topics:
            problems.append("needs at least one topic")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _retention_covers_what_cycles_read(self) -> Config:
        """Story text and fetch logs are kept at least as long as a cycle reads them back: the
        alert detector reads the fetches (coverage) of its baseline, and after a rescore the
        scores of its baseline again, which need the text; grouping reads the headline words
        of its window. Pruning either sooner would make the detector's baseline look calm."""
        detector = (
            f"the alert detector reads back {self.detector_days} days (alerts.baseline_days, "
            "alerts.seasonal_weeks, and its windows)"
        )
        grouping = math.ceil(self.events.window_hours / 24) + 1
        needed = {
            "fetch_log_days": (self.detector_days, detector),
            "story_text_days": max(
                (self.detector_days, detector),
                (grouping, f"event grouping reads back {grouping} days (events.window_hours)"),
            ),
        }
        problems = []
        for key, (days, why) in needed.items():
            kept = getattr(self.retention, key)
            if kept is not None and kept < days:
                problems.append(
                    f"retention.{key}: must be at least {days}, or null to keep them for good: "
                    f"{why}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def detector_days(self) -> int:
        """Whole UTC days back from today that a cycle's alert step may read: its baseline, the
        window it judges, and the window before (alerting._judge_new_windows)."""
        return self.alerts.history_days + 2

    @property
    def database_path(self) -> Path:
        path = Path(self.storage.path).expanduser()
        return path if path.is_absolute() else self.base_dir / path


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PASSWORD = re.compile(r"(?<=://)([^/@:\s]*):[^/@\s]+@")
# Environment values shorter than this are not hidden in texts: hiding "1" or "en" everywhere
# would garble every message, and a secret that short protects nothing.
MIN_SECRET_CHARS = 4


def _mask_password(text: str) -> str:
    return _PASSWORD.sub(r"\1:***@", text)


def _expand_env(
    node: Any, path: str, problems: list[str], used: dict[str, str] | None = None
) -> Any:
    """Replace ${NAME} / ${NAME:-default}; `used` collects value → "${NAME}" per substitution."""
    if isinstance(node, dict):
        return {k: _expand_env(v, _join(path, k), problems, used) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, f"{path}[{i}]", problems, used) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name, default)
            if value is None:
                problems.append(f"{path}: environment variable {name} is not set")
                return ""
            if used is not None and len(value) >= MIN_SECRET_CHARS:
                used[value] = "${" + name + "}"
            return value

        return _ENV_REF.sub(substitute, node)
    return node


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


_MESSAGES = {
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "missing": "is required",
    "extra_forbidden": "unknown key",
    "too_short": "needs at least one entry",
}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _describe(error: Any) -> str:
    loc = ""
    for part in error["loc"]:
        loc = _join(loc, part)
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind in _MESSAGES:
        message = _MESSAGES[kind]
    elif kind == "greater_than":
        message = f"must be greater than {_number(ctx['gt'])}"
    elif kind == "greater_than_equal":
        message = f"must be at least {_number(ctx['ge'])}"
    elif kind == "less_than":
        message = f"must be less than {_number(ctx['lt'])}"
    elif kind == "less_than_equal":
        message = f"must be at most {_number(ctx['le'])}"
    elif kind == "literal_error":
        message = f"must be one of {ctx['expected']}"
    elif kind == "string_pattern_mismatch":
        message = "must be lower-case letters, digits and _ (starting with a letter)"
        if loc.endswith("language"):
            message = "must be a 2- or 3-letter language code such as en or tr"
    elif kind == "value_error":
        message = str(ctx.get("error", error["msg"]))
    else:
        message = error["msg"][:1].lower() + error["msg"][1:]
    return f"{loc}: {message}" if loc else message


def parse_config(raw: Any, base_dir: Path = Path(".")) -> Config:
    """Validate an already-loaded YAML tree; raise ConfigError listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(["the file must be a mapping with feeds and topics"])
    problems: list[str] = []
    secrets: dict[str, str] = {}
    expanded = {
        # Feed and destination addresses may carry secrets: their values are remembered to
        # be hidden wherever an address could be quoted (Config.redact).
        key: _expand_env(value, key, problems, secrets if key in ("feeds", "alerts") else None)
        for key, value in raw.items()
    }
    try:
        config = Config.model_validate({**expanded, "base_dir": base_dir})
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    config._secrets = secrets
    for feed, written in zip(config.feeds, raw.get("feeds") or [], strict=False):
        if isinstance(written, dict) and isinstance(written.get("url"), str):
            feed._written_url = written["url"]
    return config


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: `path`, else $TENSIONWATCH_CONFIG, else ./config.yaml."""
    return Path(path or os.environ.get("TENSIONWATCH_CONFIG") or DEFAULT_CONFIG)


# libyaml's loader where PyYAML was built with it: the rules of six languages are ~2,000 lines
# that the pure-Python loader reads in 0.19 s, libyaml's in 0.02 s (every command reads them).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate config.yaml (default: $TENSIONWATCH_CONFIG, else ./config.yaml)."""
    path = config_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"], path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start})"], path) from None
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"not valid YAML{where}: {problem}"], path) from None
    try:
        return parse_config(raw, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(exc.problems, path) from None
