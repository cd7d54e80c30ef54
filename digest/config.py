"""Settings: an optional ``digest.toml`` overridden by ``DIGEST_<KEY>`` environment variables.

Every key is declared once in ``KEYS`` with its type, default and help text, so that ``digest init``
writes a commented ``digest.toml``, the README documents each key, and a test checks both stay in sync.
Keys that hold tables (``theme``, ``topic_rules``, ...) are set in TOML; their environment override is JSON.
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.errors import ConfigError

CONFIG_FILENAME = "digest.toml"


@dataclass(frozen=True)
class Key:
    name: str
    type: type
    default: Any
    help: str
    section: str = "general"


def _k(name: str, type_: type, default: Any, help_: str, section: str = "general") -> Key:
    return Key(name, type_, default, help_, section)


# Order matters: it is the order of `digest init`'s digest.toml and of the README table.
KEYS: tuple[Key, ...] = (
    # general
    _k("database_url", str, "", "SQLAlchemy URL of the store. Empty: the SQLite file subscribers/digest.db "
       "in the project folder. PostgreSQL: postgresql+psycopg://user:pass@host/db"),
    _k("base_url", str, "http://127.0.0.1:8040", "Public URL of `digest serve`, used for every link in emails "
       "(unsubscribe, preferences, confirmation)."),
    _k("secret_key", str, "", "Signs every token (unsubscribe, confirm, preferences). Required for serve and "
       "send; `digest init` writes a random one. Never commit a real one."),
    _k("secret_key_fallbacks", list, [], "Old secret keys still accepted for verifying tokens after a rotation."),
    _k("default_list", str, "daily", "List used when a command is given no --list; created on first use."),
    _k("timezone", str, "UTC",
       "Default time zone of new lists, and of times given without a zone (--published, --since)."),
    _k("send_time", str, "07:00", "Default local send time (HH:MM) of new lists."),
    # sending
    _k("backend", str, "file", "Sending backend: file, smtp or sendgrid.", "sending"),
    _k("outbox_dir", str, "outbox", "Folder the file backend writes .eml files into (relative to the project).",
       "sending"),
    _k("from_email", str, "newsletter@example.org", "From address of new lists.", "sending"),
    _k("from_name", str, "The Daily Digest", "From name of new lists.", "sending"),
    _k("reply_to", str, "", "Reply-To address of new lists (empty: none).", "sending"),
    _k("unsubscribe_mailto", str, "", "Address for a mailto: List-Unsubscribe entry besides the URL (empty: none).",
       "sending"),
    _k("sendgrid_host", str, "https://api.sendgrid.com", "SendGrid API base URL (point it at `digest dev sendgrid` "
       "for local work). The API key comes from SENDGRID_API_KEY only.", "sending"),
    _k("sendgrid_webhook_public_key", str, "", "Base64 (or PEM) ECDSA public key of SendGrid's Signed Event "
       "Webhook.", "sending"),
    _k("sendgrid_categories", list, ["digest"], "Categories attached to every SendGrid message.", "sending"),
    _k("sendgrid_timeout", float, 30.0, "Seconds a SendGrid API request may take before it is abandoned (its "
       "fate is then in doubt).", "sending"),
    _k("smtp_host", str, "127.0.0.1", "SMTP server host.", "sending"),
    _k("smtp_port", int, 25, "SMTP server port.", "sending"),
    _k("smtp_user", str, "", "SMTP user name (empty: no authentication).", "sending"),
    _k("smtp_password", str, "", "SMTP password. Prefer DIGEST_SMTP_PASSWORD over writing it in a file.", "sending"),
    _k("smtp_security", str, "none", "SMTP transport security: none, starttls or ssl.", "sending"),
    _k("smtp_timeout", float, 30.0, "Seconds before an SMTP operation times out.", "sending"),
    _k("dkim_private_key_file", str, "", "PEM file of the DKIM private key (SMTP backend; empty: no DKIM).",
       "sending"),
    _k("dkim_selector", str, "", "DKIM selector.", "sending"),
    _k("dkim_domain", str, "", "DKIM signing domain (empty: the From address's domain).", "sending"),
    _k("send_rate", float, 0.0, "Most messages per second a send makes (0: as fast as the provider allows).",
       "sending"),
    _k("send_batch_size", int, 1000, "Recipients per provider request (SendGrid allows at most 1,000).",
       "sending"),
    _k("send_max_retries", int, 5, "Retries of a batch after a 5xx answer or a failed connection.", "sending"),
    _k("send_backoff_seconds", float, 1.0, "First retry delay; doubles each retry, with jitter.", "sending"),
    _k("sendgrid_send_at_delay", int, 60, "Seconds ahead a SendGrid request is scheduled (send_at with a "
       "batch_id), so a request whose fate a crash left unknown can be cancelled and resent. 0: off.", "sending"),
    _k("in_doubt_rule", str, "assume_sent", "What a resume does with in-doubt deliveries: assume_sent (never "
       "risk a duplicate) or resend (never risk a loss).", "sending"),
    # audience
    _k("double_opt_in", bool, True, "New lists ask subscribers to confirm by email before they are active.",
       "audience"),
    _k("confirm_max_age_hours", int, 72, "Hours a confirmation link stays valid.", "audience"),
    _k("preferences_max_age_days", int, 90, "Days a preferences link stays valid (unsubscribe links never expire).",
       "audience"),
    _k("subscribe_rate_per_ip", int, 10, "Subscribe requests allowed per IP per hour.", "audience"),
    _k("subscribe_rate_per_address", int, 3, "Subscribe requests for one address per day at most (web form and API).",
       "audience"),
    _k("postal_address", str, "Example Newsroom, 1 Sample Street, Springfield",
       "Postal address printed in every email's footer (CAN-SPAM).", "audience"),
    # ranking
    _k("half_life_hours", float, 12.0, "Freshness half-life: an article this many hours old scores half.",
       "ranking"),
    _k("weight_freshness", float, 1.0, "Weight of freshness in the score.", "ranking"),
    _k("weight_priority", float, 1.0, "Weight of editorial priority (topic and outlet weights).", "ranking"),
    _k("weight_quality", float, 0.5, "Weight of quality (own Quick Looks, Deep Look, length).", "ranking"),
    _k("weight_affinity", float, 1.5, "Weight of topic affinity with the reader's preferences.", "ranking"),
    _k("weight_engagement", float, 0.0, "Weight of past clicks per topic (0: off).", "ranking"),
    _k("topic_weights", dict, {}, "Editorial priority per topic, e.g. {politics = 1.0, sports = 0.3}.", "ranking"),
    _k("outlet_weights", dict, {}, "Editorial priority per outlet.", "ranking"),
    _k("duplicate_threshold", float, 0.32,
       "Weighted similarity (0..1, rare words and names weigh most) at which two articles are the same story.",
       "ranking"),
    _k("min_articles", int, 3, "Fewest articles in an edition.", "ranking"),
    _k("max_articles", int, 8, "Most articles in an edition.", "ranking"),
    _k("max_per_topic", int, 3, "Most articles of one topic in an edition.", "ranking"),
    _k("skip_thin_days", bool, False, "Skip an edition with fewer than min_articles instead of sending it thin.",
       "ranking"),
    _k("first_edition_lookback_hours", int, 24, "How far back a list's first edition looks.", "ranking"),
    _k("story_memory_days", int, 3, "Days an edition remembers the stories its list sent: an article telling one "
       "of them again is left out (0: off).", "ranking"),
    # ingest
    _k("topic_rules", list, [], "Mapping rules to the newsroom's topics: a list of tables such as "
       "{topic = \"politics\", keywords = [\"senate\"], outlets = [], categories = [\"Politik\"]}.", "ingest"),
    _k("outlet_names", dict, {}, "The newsroom's name for an outlet, by the name its source gives (matched "
       "case-insensitively), e.g. {\"heise developer neueste Meldungen\" = \"heise developer\"}: a feed's title "
       "is often a slogan. Bylines, topic_rules and outlet_weights then use the new name (at most 200 "
       "characters).", "ingest"),
    _k("feed_timeout", float, 20.0, "Seconds before fetching a feed URL times out.", "ingest"),
    # rendering
    _k("templates_dir", str, "templates", "Folder of the MJML/Jinja templates (falls back to the built-in ones).",
       "rendering"),
    _k("theme", dict, {}, "Theme of the email: brand_name, logo_url, footer_text, language, and hex colours "
       "primary_color, text_color, background_color, card_color, muted_color with dark_* twins for dark mode.",
       "rendering"),
    _k("subject_template", str, "{{ top_headline }}",
       "Jinja template of the subject line (cut to 78 characters).", "rendering"),
    _k("utm", dict, {"utm_source": "digest", "utm_medium": "email"}, "UTM parameters added to article links "
       "(utm_campaign is the edition). Empty table: none.", "rendering"),
    _k("max_html_bytes", int, 102_000, "Size the HTML must stay under (Gmail clips above about 102 KB).",
       "rendering"),
    # scheduling
    _k("catch_up_hours", int, 6, "A missed send older than this is skipped, not sent late.", "scheduling"),
    _k("scheduler_interval_seconds", int, 60, "How often `digest schedule run` wakes.", "scheduling"),
    # preview
    _k("desk_editor", str, "", "Name the preview's editor's desk records as who made each change and who approved "
       "(like --by); empty: the login name.", "preview"),
    _k("preview_password", str, "", "Password of `digest preview` (HTTP basic, any user name); required with a "
       "--host other than loopback. Prefer DIGEST_PREVIEW_PASSWORD over writing it in a file.", "preview"),
    # feedback
    _k("webhook_tolerance_seconds", int, 600, "Oldest signed-webhook timestamp accepted.", "feedback"),
    _k("webhook_max_body_bytes", int, 5_000_000, "Largest webhook body accepted.", "feedback"),
    _k("soft_bounce_limit", int, 3, "Editions in a row with a soft bounce or deferral before an address is suppressed.",
       "feedback"),
    _k("retention_days", int, 400, "Events, delivery rows and send batches older than this are pruned by `digest db prune`.",
       "feedback"),
)

KEYS_BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}


def default_values() -> dict[str, Any]:
    """Every key at its default; tables and lists are fresh copies, so a caller may change them."""
    return {k.name: copy.deepcopy(k.default) for k in KEYS}


@dataclass
class Settings:
    """Resolved settings. ``project_dir`` is where relative paths (templates, outbox, database) resolve."""

    values: dict[str, Any]
    project_dir: Path
    source: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    file_keys: frozenset[str] = frozenset()  # the keys digest.toml itself sets (the rest are defaults)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes: Any) -> Settings:
        unknown = set(changes) - set(KEYS_BY_NAME)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return Settings({**self.values, **changes}, self.project_dir, self.source, self.overrides, self.file_keys)

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.project_dir / p

    @property
    def resolved_database_url(self) -> str:
        if self.values["database_url"]:
            return str(self.values["database_url"])
        return f"sqlite:///{self.project_dir / 'subscribers' / 'digest.db'}"

    @property
    def sendgrid_api_key(self) -> str:
        return os.environ.get("SENDGRID_API_KEY", "")

    @property
    def all_secret_keys(self) -> list[str]:
        keys = [self.values["secret_key"], *self.values["secret_key_fallbacks"]]
        return [k for k in keys if k]

    def origin(self, name: str) -> str:
        """Where a setting's value came from: its environment variable, the config file, or "default"."""
        if name in self.overrides:
            return self.overrides[name]
        if name in self.file_keys and self.source is not None:
            return str(self.source)
        return "default"

    def redacted(self) -> dict[str, Any]:
        """Values safe to print: secrets masked."""
        out = dict(self.values)
        for name in ("secret_key", "smtp_password", "preview_password"):
            if out.get(name):
                out[name] = "***"
        if out.get("secret_key_fallbacks"):
            out["secret_key_fallbacks"] = ["***"] * len(out["secret_key_fallbacks"])
        # A database URL stays readable; only its password is masked.
        if "@" in out.get("database_url", "") and ":" in out["database_url"].split("@")[0]:
            scheme, rest = out["database_url"].split("://", 1)
            out["database_url"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return out


def _coerce(key: Key, raw: Any, origin: str) -> Any:
    try:
        if key.type is bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in {"1", "true", "yes", "on"}:
                return True
            if isinstance(raw, str) and raw.strip().lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if key.type in (list, dict):
            value = json.loads(raw) if isinstance(raw, str) else raw
            if key.type is list and isinstance(value, str):
                value = [value]
            if not isinstance(value, key.type):
                raise ValueError(f"expected a {key.type.__name__}")
            return value
        if key.type is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if key.type is int and isinstance(raw, bool):
            raise ValueError(raw)
        return key.type(raw)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{origin}: {key.name} must be a {key.type.__name__}: {exc}") from None


def find_config(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    env = os.environ.get("DIGEST_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (from DIGEST_CONFIG)")
        return path
    candidate = (cwd or Path.cwd()) / CONFIG_FILENAME
    return candidate if candidate.is_file() else None


def load_settings(
    config: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    environ = os.environ if environ is None else environ
    path = find_config(config, cwd)
    values = default_values()
    project_dir = (cwd or Path.cwd()).resolve()
    data: dict[str, Any] = {}
    if path is not None:
        project_dir = path.resolve().parent
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 ({exc})") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
        for name, raw in data.items():
            key = KEYS_BY_NAME.get(name)
            if key is None:
                raise ConfigError(f"{path}: unknown key {name!r}")
            values[name] = _coerce(key, raw, str(path))
    overrides: dict[str, str] = {}
    for key in KEYS:
        env_name = f"DIGEST_{key.name.upper()}"
        if env_name in environ:
            values[key.name] = _coerce(key, environ[env_name], env_name)
            overrides[key.name] = env_name
    _validate(values, path, overrides)
    return Settings(values, project_dir, path, overrides, frozenset(data))


def _validate(values: dict[str, Any], path: Path | None, overrides: Mapping[str, str]) -> None:
    def where(name: str) -> str:  # the environment variable or the file that set the wrong value
        return overrides.get(name) or (str(path) if path else "settings")

    if values["backend"] not in {"file", "smtp", "sendgrid"}:
        raise ConfigError(f"{where('backend')}: backend must be file, smtp or sendgrid, not {values['backend']!r}")
    if values["smtp_security"] not in {"none", "starttls", "ssl"}:
        raise ConfigError(f"{where('smtp_security')}: smtp_security must be none, starttls or ssl, "
                          f"not {values['smtp_security']!r}")
    if values["in_doubt_rule"] not in {"assume_sent", "resend"}:
        raise ConfigError(f"{where('in_doubt_rule')}: in_doubt_rule must be assume_sent or resend, "
                          f"not {values['in_doubt_rule']!r}")
    if not 1 <= values["send_batch_size"] <= 1000:
        raise ConfigError(f"{where('send_batch_size')}: send_batch_size must be between 1 and 1000")
    # Checked here, once, so every list made from these defaults (the default list included) and every command
    # that reads them (--published, --since) can rely on them.
    from digest.audience.validate import Invalid, check_send_time, check_timezone, normalize_email

    checks = [("timezone", check_timezone), ("send_time", check_send_time), ("from_email", normalize_email)]
    # An address checked here fails at start-up, not in the middle of a send with a batch already claimed.
    checks += [(name, normalize_email) for name in ("reply_to", "unsubscribe_mailto") if values[name]]
    for name, check in checks:
        try:
            values[name] = check(values[name])
        except Invalid as exc:
            raise ConfigError(f"{where(name)}: {name}: {exc}") from None


def render_toml_template() -> str:
    """A digest.toml with every key commented out at its default: what `digest init` writes."""
    lines = ["# digest configuration. Every key is optional; DIGEST_<KEY> environment variables override it.", ""]
    section = None
    for key in KEYS:
        if key.section != section:
            section = key.section
            lines += ["", f"# --- {section} ---"]
        lines.append(f"# {key.help}")
        lines.append(f"# {key.name} = {_toml_value(key.default)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)
