"""Typed, validated configuration from TOML with ${ENV_VAR} interpolation for secrets.

Every key is declared as a dataclass field (here; the `[crm.*]` sections with their
connectors); config.example.toml documents each. A bad
file yields one ConfigError naming the file, the key and the fix.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

# Each CRM section lives with its connector (connectors never import sync); re-exported here.
from connectors.hubspot.config import HubSpotConfig as HubSpotConfig
from connectors.salesforce.config import SalesforceConfig as SalesforceConfig
from sync.config.alerts import AlertConfig, check_credentials_from_env, validate_alerts
from sync.errors import ConfigError

DEFAULT_PATH = Path("ecosync.toml")
ENV_PATH = "ECOSYNC_CONFIG"
SECRET_KEYS = frozenset(
    {"client_secret", "password", "security_token", "access_token", "refresh_token",
     "session_id", "private_key", "token", "webhook_url", "secret"}
)
SHARE_LEVELS = ("full", "names", "counts", "hidden")
POPULATIONS = ("customer", "open_opportunity", "prospect")


@dataclass(frozen=True)
class WarehouseConfig:
    url: str = "sqlite:///ecosync.db"
    echo: bool = False


@dataclass(frozen=True)
class DaemonConfig:
    interval_seconds: int = 60
    jitter_seconds: int = 5
    health_port: int = 9464
    health_host: str = "127.0.0.1"
    lock_file: str = "ecosync.lock"
    shutdown_grace_seconds: int = 30


@dataclass(frozen=True)
class WebConfig:
    """`ecosync web` (and `ecosync run` when enabled): read-only pages and JSON API."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    token: str = ""
    trusted_proxy_header: str = ""
    page_size: int = 50


@dataclass(frozen=True)
class LoggingConfig:
    format: Literal["auto", "console", "json"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True)
class CrmConfig:
    salesforce: SalesforceConfig = field(default_factory=SalesforceConfig)
    hubspot: HubSpotConfig = field(default_factory=HubSpotConfig)


@dataclass(frozen=True)
class MatchingConfig:
    fuzzy: bool = True
    name_threshold: int = 92
    generic_domains: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AttributionConfig:
    influence_lookback_days: int = 90
    sourced_lead_sources: list[str] = field(default_factory=list)
    amount_model: Literal["even", "sourced_first", "population_weighted"] = "even"
    sourced_share: float = 0.5
    population_weights: dict[str, float] = field(
        default_factory=lambda: {"customer": 3.0, "open_opportunity": 2.0, "prospect": 1.0}
    )
    corporate_currency: str = "USD"
    static_rates: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PartnerCrmConfig:
    """A partner's own CRM (`source = "salesforce"` or `"hubspot"`), read-only: its own
    credentials, never ours. Keys as under [crm.salesforce] / [crm.hubspot]."""

    # salesforce: client_credentials (default), jwt, password or session;
    # hubspot: private_app (default) or oauth.
    auth: str = ""
    instance_url: str = ""
    login_url: str = "https://login.salesforce.com"
    base_url: str = "https://api.hubapi.com"
    client_id: str = ""
    client_secret: str = ""
    username: str = ""
    password: str = ""
    security_token: str = ""
    private_key_file: str = ""
    session_id: str = ""
    access_token: str = ""
    refresh_token: str = ""
    ca_bundle: str = ""
    # Their DUNS field (Salesforce Account field, HubSpot company property), if they keep one.
    duns_field: str = ""
    lookback_minutes: int = 10
    # Share of the partner's daily API allocation ecosync may use: it is their budget.
    max_api_share: float = 0.2


@dataclass(frozen=True)
class PartnerPopulationsConfig:
    """How a partner CRM's accounts map onto populations. First match wins: `types`, then
    a won opportunity, then a type starting with one of `customer_types`, then an open
    opportunity; anything else is a prospect."""

    # Exact account types (Salesforce Account.Type, HubSpot lifecycle stage), any case.
    types: dict[str, str] = field(default_factory=dict)
    customer_if_won: bool = True
    customer_types: list[str] = field(default_factory=lambda: ["customer"])
    open_opportunity_if_open: bool = True


CRM_AUTH_REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "salesforce": {"client_credentials": ("instance_url", "client_id", "client_secret"),
                   "jwt": ("client_id", "username", "private_key_file"),
                   "password": ("username", "password"),
                   "session": ("instance_url", "session_id")},
    "hubspot": {"private_app": ("access_token",),
                "oauth": ("client_id", "client_secret", "refresh_token")},
}


@dataclass(frozen=True)
class PartnerConfig:
    id: str
    name: str
    kind: Literal["technology", "services", "channel"] = "technology"
    source: Literal["csv", "salesforce", "hubspot", "manual", "psi"] = "csv"
    path: str = ""
    encoding: str = "utf-8-sig"
    columns: dict[str, str] = field(default_factory=dict)
    share: dict[str, str] = field(
        default_factory=lambda: {"customer": "full", "open_opportunity": "full",
                                 "prospect": "full"}
    )
    # What WE share with this partner (DESIGN.md 10): nothing leaves without a decision, so
    # every population this table does not name is `hidden`.
    outbound: dict[str, str] = field(default_factory=dict)
    # A watched file with bad rows: import the good rows and report the skipped lines
    # (true), or keep the previous list until the file is fixed (false).
    skip_invalid: bool = False
    # source = "salesforce" or "hubspot": the partner's CRM, and how its accounts map onto
    # populations.
    crm: PartnerCrmConfig = field(default_factory=PartnerCrmConfig)
    populations: PartnerPopulationsConfig = field(default_factory=PartnerPopulationsConfig)

    def outbound_level(self, population: str) -> str:
        return self.outbound.get(population, "hidden")


@dataclass(frozen=True)
class PsiConfig:
    """Private matching (DESIGN.md 11, docs/private-matching.md). Both sides of a run must
    use the same `data_structure` and `false_positive_rate`: a request made with others is
    refused."""

    organisation: str = ""
    state_dir: str = "psi-state"
    data_structure: Literal["gcs", "raw", "bloom_filter"] = "gcs"
    false_positive_rate: float = 1e-9
    min_set_size: int = 10
    max_set_size: int = 1_000_000


@dataclass(frozen=True)
class ExchangeConfig:
    """Exchange files sent to partners (`ecosync share export`, docs/exchange-format.md)."""

    # Our organisation's name as partners know it, written into every exchange manifest.
    organisation: str = ""


@dataclass(frozen=True)
class Config:
    warehouse: WarehouseConfig = field(default_factory=WarehouseConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    crm: CrmConfig = field(default_factory=CrmConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    partners: list[PartnerConfig] = field(default_factory=list)
    web: WebConfig = field(default_factory=WebConfig)
    psi: PsiConfig = field(default_factory=PsiConfig)
    alerts: list[AlertConfig] = field(default_factory=list)
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    source_path: str = ""
    # Every value substituted from a ${NAME} reference, wherever it sits (a whole key or a
    # part of one, such as the password inside warehouse.url): each is a secret.
    interpolated: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def secrets(self) -> list[str]:
        """Every secret value in force, for the log masker: keys named like secrets, every
        ${...} substitution, and a password written into the warehouse URL."""
        out = [*_secret_keys(self), *self.interpolated]
        password = _url_password(self.warehouse.url)
        if password:
            out.append(password)
        for value in self.interpolated:  # e.g. a webhook URL: its path is the credential
            out += _url_secret_parts(value)
        return [s for s in dict.fromkeys(out) if s]


# Config fields that are not keys of the file: where it came from, and what it substituted.
INTERNAL_FIELDS = frozenset({"source_path", "interpolated"})
HIDDEN_FIELDS = frozenset({"interpolated"})  # never printed, not even masked

# tomllib keeps every prefix of a dotted key: a key of n parts costs n² memory (100,000 parts
# exhaust any host), so such a file is refused before it is parsed. Deep arrays and inline
# tables end in a RecursionError instead, refused the same way.
MAX_KEY_PARTS = 64
_DEEP_KEY = re.compile(
    r"(?:(?:[A-Za-z0-9_-]+|\"[^\"\n]*\"|'[^'\n]*')[ \t]*\.[ \t]*)"
    + f"{{{MAX_KEY_PARTS}}}")

T = TypeVar("T")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """--config, then ECOSYNC_CONFIG, then ./ecosync.toml if present; None means defaults."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_PATH):
        return Path(os.environ[ENV_PATH])
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load_config(path: str | os.PathLike[str] | None = None,
                env: typing.Mapping[str, str] | None = None) -> Config:
    resolved = resolve_path(path)
    if resolved is None:
        return Config()
    try:
        text = resolved.read_text(encoding="utf-8")
        if _DEEP_KEY.search(text):
            raise ConfigError(f"{resolved}: a key has more than {MAX_KEY_PARTS} dotted parts; a "
                              "config needs at most a few levels, fix the file")
        raw = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{resolved}: the config nests tables or arrays too deeply to read; "
                          "a config needs at most a few levels, fix the file") from None
    except FileNotFoundError:
        raise ConfigError(
            f"{resolved}: config file not found; create it from config.example.toml "
            f"or pass --config PATH"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{resolved}: cannot read config file ({exc.__class__.__name__}: "
                          f"{exc}); check its permissions and encoding (UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{resolved}: not valid TOML ({exc}); fix the syntax there") from None
    return parse_config(raw, str(resolved), os.environ if env is None else env)


def parse_config(raw: dict[str, Any], where: str = "<config>",
                 env: typing.Mapping[str, str] | None = None) -> Config:
    substituted: list[str] = []
    try:
        check_credentials_from_env(raw, where)
        interpolated = _interpolate(raw, where, "", os.environ if env is None else env,
                                    substituted)
        config = _build(Config, interpolated, where, "", skip=INTERNAL_FIELDS)
        config = _replace(config, source_path=where, interpolated=tuple(substituted))
        _validate(config, where)
    except RecursionError:
        raise ConfigError(f"{where}: the config nests tables or arrays too deeply; a config "
                          "needs at most a few levels, fix the file") from None
    except ConfigError as exc:
        # A refusal may quote the bad value: one from ${...} is a secret, and the log masker
        # has not learnt it yet (it learns from a loaded config).
        raise ConfigError(_mask_all(exc.message, substituted)) from None
    return config


def _mask_all(text: str, secrets: typing.Iterable[str]) -> str:
    from sync.logs import MASK, escaped_forms

    for form in sorted({f for s in secrets for f in escaped_forms(s)}, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def _replace(config: Config, **changes: Any) -> Config:
    from dataclasses import replace

    return replace(config, **changes)


def _interpolate(value: Any, where: str, key: str, env: typing.Mapping[str, str],
                 substituted: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, where, f"{key}.{k}" if key else k, env, substituted)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, where, f"{key}[{i}]", env, substituted)
                for i, v in enumerate(value)]
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"{where}: key '{key}' refers to environment variable ${{{name}}}, "
                    f"which is not set; export {name} before running ecosync"
                )
            substituted.append(env[name])
            return env[name]

        return _ENV_REF.sub(sub, value)
    return value


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, dict):
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, where: str, key: str) -> Any:
    origin = get_origin(tp)
    bad = ConfigError(
        f"{where}: key '{key}' must be {_type_name(tp)}, got {value!r} "
        f"({type(value).__name__}); fix its value"
    )
    if is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' must be a table ([{key}]), got {value!r}")
        return _build(tp, value, where, key)
    if origin is Literal:
        if value not in get_args(tp):
            raise bad
        return value
    if origin is list:
        if not isinstance(value, list):
            raise bad
        (item,) = get_args(tp)
        return [_coerce(item, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        _, vt = get_args(tp)
        return {str(k): _coerce(vt, v, where, f"{key}.{k}") for k, v in value.items()}
    if origin in (types.UnionType, typing.Union):
        raise bad  # no optional keys in the config: absent means default
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise bad


def _build(cls: type[T], data: dict[str, Any], where: str, prefix: str,
           skip: frozenset[str] | set[str] = frozenset()) -> T:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.name not in skip}  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            full = f"{prefix}.{key}" if prefix else key
            choices = ", ".join(sorted(known))
            raise ConfigError(
                f"{where}: unknown key '{full}'; remove it or use one of: {choices}"
            )
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        full = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], where, full)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{where}: key '{full}' is required; add it")
    return cls(**kwargs)


def _validate(config: Config, where: str) -> None:
    def fail(key: str, fix: str) -> None:
        raise ConfigError(f"{where}: key '{key}' {fix}")

    if not config.warehouse.url.strip():
        fail("warehouse.url", "is empty; set an SQLAlchemy URL such as sqlite:///ecosync.db")
    if config.daemon.interval_seconds < 1:
        fail("daemon.interval_seconds", "must be at least 1")
    if not 0 < config.daemon.health_port < 65536:
        fail("daemon.health_port", "must be a TCP port between 1 and 65535")
    if not 0 < config.web.port < 65536:
        fail("web.port", "must be a TCP port between 1 and 65535")
    if not 1 <= config.web.page_size <= 500:
        fail("web.page_size", "must be between 1 and 500")
    sf = config.crm.salesforce
    if sf.enabled:
        required = {
            "client_credentials": ("instance_url", "client_id", "client_secret"),
            "jwt": ("client_id", "username", "private_key_file"),
            "password": ("username", "password"),
            "session": ("instance_url", "session_id"),
        }[sf.auth]
        for key in required:
            if not getattr(sf, key):
                fail(f"crm.salesforce.{key}", f"is required when auth = \"{sf.auth}\"; set it "
                     f"(secrets as \"${{ENV_VAR}}\")")
        if not re.fullmatch(r"\d+\.\d", sf.api_version):
            fail("crm.salesforce.api_version", "must look like \"59.0\" (no leading v)")
    hs = config.crm.hubspot
    if hs.enabled:
        required_hs = {"private_app": ("access_token",),
                       "oauth": ("client_id", "client_secret", "refresh_token")}[hs.auth]
        for key in required_hs:
            if not getattr(hs, key):
                fail(f"crm.hubspot.{key}", f"is required when auth = \"{hs.auth}\"; set it "
                     f"(secrets as \"${{ENV_VAR}}\")")
    for section, share in (("crm.salesforce", sf.max_api_share),
                           ("crm.hubspot", hs.max_api_share),
                           ("crm.hubspot", hs.max_burst_share)):
        if not 0 < share <= 1:
            fail(f"{section}.max_api_share", "must be a fraction in (0, 1]")
    if not 0 <= config.matching.name_threshold <= 100:
        fail("matching.name_threshold", "must be between 0 and 100")
    att = config.attribution
    if att.influence_lookback_days < 0:
        fail("attribution.influence_lookback_days", "must be zero or more")
    if not 0 <= att.sourced_share <= 1:
        fail("attribution.sourced_share", "must be a fraction between 0 and 1")
    for pop, weight in att.population_weights.items():
        if pop not in POPULATIONS:
            fail(f"attribution.population_weights.{pop}",
                 f"is not a population; use {', '.join(POPULATIONS)}")
        if weight < 0:
            fail(f"attribution.population_weights.{pop}", "must be zero or more")
    psi = config.psi
    if not 0 < psi.false_positive_rate < 1:
        fail("psi.false_positive_rate", "must be a probability between 0 and 1, e.g. 1e-9")
    if psi.min_set_size < 1:
        fail("psi.min_set_size", "must be at least 1")
    if psi.max_set_size < psi.min_set_size:
        fail("psi.max_set_size", "must be at least psi.min_set_size")
    if not psi.state_dir.strip():
        fail("psi.state_dir", "is empty; set a directory for pending private-matching runs")
    problems = attribution_problems(att)
    if problems:
        raise ConfigError(f"{where}: {problems[0]}; fix it under [attribution]")
    seen: set[str] = set()
    names: dict[str, int] = {}
    for i, partner in enumerate(config.partners):
        key = f"partners[{i}]"
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", partner.id):
            fail(f"{key}.id", "must be 1-64 letters, digits, '_', '.' or '-'")
        if partner.id in seen:
            fail(f"{key}.id", f"duplicates partner id '{partner.id}'; ids must be unique")
        seen.add(partner.id)
        twin = names.setdefault(partner_name_key(partner.name), i)
        if twin != i:
            fail(f"{key}.name", f"'{partner.name}' is also the name of partners[{twin}] "
                 f"('{config.partners[twin].id}'); display names must differ, or reps "
                 f"could not tell the partners apart")
        for pop, level in partner.share.items():
            if pop not in POPULATIONS:
                fail(f"{key}.share.{pop}", f"is not a population; use {', '.join(POPULATIONS)}")
            if level not in SHARE_LEVELS:
                fail(f"{key}.share.{pop}", f"must be one of {', '.join(SHARE_LEVELS)}")
        for pop, level in partner.outbound.items():
            if pop not in POPULATIONS:
                fail(f"{key}.outbound.{pop}",
                     f"is not a population; use {', '.join(POPULATIONS)}")
            if level not in SHARE_LEVELS:
                fail(f"{key}.outbound.{pop}", f"must be one of {', '.join(SHARE_LEVELS)}")
        if partner.source == "csv" and partner.path and not partner.path.strip():
            fail(f"{key}.path", "is blank")
        if partner.source in CRM_AUTH_REQUIRED:
            _check_partner_crm(partner, key, fail)
    validate_alerts(config.alerts, where, seen)


def _check_partner_crm(partner: PartnerConfig, key: str, fail: Any) -> None:
    crm, modes = partner.crm, CRM_AUTH_REQUIRED[partner.source]
    auth = crm.auth or next(iter(modes))
    if auth not in modes:
        fail(f"{key}.crm.auth", f"must be one of {', '.join(modes)} for source = "
             f"\"{partner.source}\"")
    for required in modes[auth]:
        if not getattr(crm, required):
            fail(f"{key}.crm.{required}", f"is required to read the partner's "
                 f"{partner.source} with auth = \"{auth}\"; set it (secrets as "
                 f"\"${{ENV_VAR}}\")")
    if not 0 < crm.max_api_share <= 1:
        fail(f"{key}.crm.max_api_share", "must be a fraction in (0, 1]")
    for value, population in partner.populations.types.items():
        if population not in POPULATIONS:
            fail(f"{key}.populations.types.{value}",
                 f"must be one of {', '.join(POPULATIONS)}")


def partner_name_key(name: str) -> str:
    """Partner display names compare without case and runs of spaces: "Acme  cloud" and
    "ACME Cloud" are one name to a rep reading a field."""
    return " ".join(name.split()).casefold()


_ISO_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


def attribution_problems(config: AttributionConfig) -> list[str]:
    """Checks of the `[attribution]` rules the generic loader cannot know, one message per
    problem naming the key and the fix: stamps are immutable, so a config that would stamp
    nonsense is refused at start-up (`ecosync config check`, the daemon)."""
    out: list[str] = []
    if not _ISO_CURRENCY.match(config.corporate_currency):
        out.append(f"attribution.corporate_currency '{config.corporate_currency}' must be a "
                   "three-letter ISO 4217 code such as USD")
    for code, rate in config.static_rates.items():
        if not _ISO_CURRENCY.match(code):
            out.append(f"attribution.static_rates.{code} is not a three-letter ISO 4217 code")
        if not rate > 0:
            out.append(f"attribution.static_rates.{code} must be a positive rate "
                       f"(units of {config.corporate_currency} per one {code})")
    for i, source in enumerate(config.sourced_lead_sources):
        if not source.strip():
            out.append(f"attribution.sourced_lead_sources[{i}] is blank; remove it")
    if config.amount_model == "population_weighted" and not any(
            w > 0 for w in config.population_weights.values()):
        out.append("attribution.population_weights are all zero; population_weighted needs "
                   "at least one positive weight (or use amount_model = \"even\")")
    return out


def _secret_keys(obj: Any) -> list[str]:
    """Values of keys named like secrets (client_secret, password, …), in any section."""
    out: list[str] = []
    if is_dataclass(obj) and not isinstance(obj, type):
        client_id, secret = getattr(obj, "client_id", ""), getattr(obj, "client_secret", "")
        if isinstance(client_id, str) and isinstance(secret, str) and client_id and secret:
            # HTTP Basic credentials (Salesforce's client-credentials login) travel base64'd,
            # UTF-8 encoded (simple-salesforce) or Latin-1 (requests' HTTPBasicAuth).
            import base64

            pair = f"{client_id}:{secret}"
            for encoding in ("utf-8", "latin-1"):
                try:
                    out.append(base64.b64encode(pair.encode(encoding)).decode("ascii"))
                except UnicodeEncodeError:
                    continue
        for f in fields(obj):
            value = getattr(obj, f.name)
            if f.name in SECRET_KEYS and isinstance(value, str) and value:
                out.append(value)
            else:
                out += _secret_keys(value)
    elif isinstance(obj, list):
        for item in obj:
            out += _secret_keys(item)
    return out


def _url_password(url: str) -> str | None:
    """The password of a database URL (user:password@host), as written and decoded."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _url_secret_parts(value: str) -> list[str]:
    """The parts of a URL from ${...} that a server may echo alone: its password, and its
    path and query when long enough to be a token (a Slack webhook's /services/T…/B…/…)."""
    from urllib.parse import urlsplit

    if "://" not in value:
        return []
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return []
    found = [p for p in (parts.path, parts.query) if len(p) >= MIN_URL_SECRET]
    password = _url_password(value)
    return [*found, *([password] if password else [])]


MIN_URL_SECRET = 16  # shorter paths ("/ecosync", a database name) are not tokens


def masked(config: Config) -> dict[str, Any]:
    """The resolved config as plain data with every secret replaced by '***': keys named like
    secrets whole, and every ${...} value wherever it was substituted (the password inside a
    URL is masked, the rest of the URL stays readable)."""
    from sync.logs import MASK

    secrets = config.secrets()

    def text(value: str) -> str:
        return _mask_all(value, secrets)

    def walk(obj: Any) -> Any:
        if is_dataclass(obj) and not isinstance(obj, type):
            out: dict[str, Any] = {}
            for f in fields(obj):
                if f.name in HIDDEN_FIELDS:
                    continue
                value = getattr(obj, f.name)
                if f.name in SECRET_KEYS and isinstance(value, str) and value:
                    out[f.name] = MASK
                else:
                    out[f.name] = walk(value)
            return out
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if isinstance(obj, dict):
            return {text(str(k)): walk(v) for k, v in obj.items()}
        if isinstance(obj, str):
            return text(obj)
        return obj

    result = walk(config)
    assert isinstance(result, dict)
    return result
