"""Feed contracts: one YAML file per feed describes its source, format, schema, rules and destinations."""

from __future__ import annotations

import codecs
import itertools
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from filegate.schema_drift import DEFAULT_POLICY as DEFAULT_DRIFT_POLICY
from filegate.schema_drift import Policy as DriftPolicy
from filegate.storage import keys

ColumnType = Literal["int", "float", "decimal", "bool", "date", "datetime", "string"]
FEED_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Texts that mean "no value": pandas' read_csv defaults (its STR_NA_VALUES). Empty and all-blank cells are
# always missing besides these.
DEFAULT_NULL_VALUES: tuple[str, ...] = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
)
NULL_VALUES_SHAPE = ("give {extend: [...]} to add markers to the default ones, or {replace: [...]} to use only "
                     "the listed ones")


class NullValues(_Strict):
    """Which cell texts mean a missing value: `extend` adds markers to the inherited set (pandas' defaults, or
    the contract's for a column), `replace` stands instead of it. Markers are exact, case-sensitive text."""

    extend: list[str] | None = None
    replace: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"{NULL_VALUES_SHAPE}; got {type(data).__name__} {data!r}"[:300])
        given = [key for key in ("extend", "replace") if data.get(key) is not None]
        if len(given) == 2:
            raise ValueError("give extend or replace, not both")
        if not given and not (set(data) - {"extend", "replace"}):
            raise ValueError(NULL_VALUES_SHAPE)
        for key in given:
            markers = data[key]
            if not isinstance(markers, list):
                raise ValueError(f"{key} takes a list of texts, got {markers!r}"[:300])
            for i, marker in enumerate(markers):
                if marker is None:
                    raise ValueError(f"{key}[{i}] is no value (YAML reads a bare null or ~ so): quote the marker, "
                                     "e.g. 'null'")
                if isinstance(marker, bool):
                    raise ValueError(f"{key}[{i}] is the boolean {marker} (YAML reads a bare yes/no/true/false/on/off "
                                     "so): quote the marker, e.g. 'no'")
                if not isinstance(marker, str):
                    raise ValueError(f"{key}[{i}]: {marker!r} is not text: quote it ('{marker}') so that the marker "
                                     "is the exact text of the cell"[:300])
        return data

    def apply(self, inherited: frozenset[str]) -> frozenset[str]:
        if self.replace is not None:
            return frozenset(self.replace)
        return inherited | frozenset(self.extend or ())


class Column(_Strict):
    name: str = Field(min_length=1)
    type: ColumnType = "string"
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    regex: str | None = None
    enum: list[str] | None = None
    unique: bool = False
    format: str | None = Field(default=None, description="strptime format for date/datetime columns")
    scale: int = Field(default=2, ge=0, le=18, description="digits after the point for decimal columns")
    null_values: NullValues | None = Field(
        default=None, description="missing-value markers of this column; a string column has none unless set")
    description: str = ""

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _range_fits_type(self) -> Column:
        if (self.min is not None or self.max is not None) and self.type not in {"int", "float", "decimal"}:
            raise ValueError(f"min/max apply to numeric columns, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class Schema(_Strict):
    columns: list[Column] = Field(default_factory=list)
    allow_extra_columns: bool = True

    @field_validator("columns")
    @classmethod
    def _unique_names(cls, columns: list[Column]) -> list[Column]:
        seen: set[str] = set()
        for column in columns:
            if column.name in seen:
                raise ValueError(f"column {column.name!r} is declared twice")
            seen.add(column.name)
        return columns


class ServerDirectory(_Strict):
    """A directory on a partner's server that the ingest_<kind>_<feed> DAG watches, and what to do with each file
    once it is safely in S3. Shared by FTP/FTPS and SFTP feeds."""

    directory: str = "/"
    stable_seconds: int = Field(default=10, ge=0, description="size unchanged this long means fully written")
    after_download: Literal["archive", "delete", "keep"] = "archive"
    archive_directory: str = "archive"
    schedule: str = Field(default="*/5 * * * *", description="cron for the ingest_<kind>_<feed> DAG")


class FtpSource(ServerDirectory):
    """Where a partner's FTP/FTPS server drops the feed's files."""

    conn_id: str = "filegate_ftp"
    tls: bool = False


class SftpSource(ServerDirectory):
    """Where a partner's SFTP server drops the feed's files. The Airflow SSH/SFTP connection `conn_id` gives the
    login, a password and/or `private_key`, and the server's `host_key` (verified, never learned)."""

    conn_id: str = "filegate_sftp"


class Source(_Strict):
    kind: Literal["s3", "ftp", "sftp", "upload"] = "s3"
    pattern: str = "*"
    queue: str | None = Field(default=None, description="SQS queue fed by S3 ObjectCreated events")
    sensed_schedule: str | None = Field(
        default=None, description="cron of the backfillable sense_<feed> DAG that lists the raw prefix per interval")
    ftp: FtpSource | None = None
    sftp: SftpSource | None = None

    @model_validator(mode="after")
    def _server_needs_settings(self) -> Source:
        if self.kind == "ftp" and self.ftp is None:
            raise ValueError("source.kind ftp needs a source.ftp block (directory, conn_id, ...)")
        if self.kind == "sftp" and self.sftp is None:
            raise ValueError("source.kind sftp needs a source.sftp block (directory, conn_id, ...)")
        return self

    @property
    def remote(self) -> FtpSource | SftpSource | None:
        """The server directory an ingest DAG picks files up from; None for S3 and upload feeds."""
        return {"ftp": self.ftp, "sftp": self.sftp}.get(self.kind)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessDays(_Strict):
    """Slots at fixed local times on the listed weekdays (holidays excepted): the usual partner calendar."""

    at: list[str] = Field(min_length=1, description="local times HH:MM, e.g. ['06:00'] or ['06:00', '18:00']")
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])

    @field_validator("at")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        for text in value:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
                raise ValueError(f"{text!r} is not a local time HH:MM (00:00 to 23:59); quote it in YAML, '06:00'")
        return sorted(set(value))


class Expect(_Strict):
    """When files are expected: one *slot* per cron tick or business-day time in the feed's time zone, each
    satisfied by `files` arrivals (matching `pattern`) by its time plus `grace_minutes`; see docs/deliveries.md."""

    timezone: str = Field(default="UTC", description="IANA zone of the slot times, e.g. Europe/London")
    cron: str | None = Field(default=None, description="5-field cron in local time, e.g. '0 6 * * 1-5'")
    business_days: BusinessDays | None = None
    files: int = Field(default=1, ge=1, le=10_000, description="arrivals that satisfy one slot")
    pattern: str | None = Field(
        default=None, description="file-name glob for the slot's files, default source.pattern; {slot:%Y%m%d} "
                                  "is replaced by the slot's local date/time (strftime), so names match one slot")
    grace_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60, description="after the slot time, still on time")
    holidays: list[date] = Field(default_factory=list, description="local dates without slots")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/London") from exc
        return value

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            from filegate.cron import Cron, CronError

            try:
                Cron.parse(value)
            except CronError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _one_calendar(self) -> Expect:
        if (self.cron is None) == (self.business_days is None):
            raise ValueError("give exactly one of expect.cron or expect.business_days")
        return self


class Heavy(_Strict):
    """When a file's processing goes to AWS Lambda instead of the Airflow worker."""

    size_threshold_bytes: int | None = Field(default=None, ge=0)
    always_formats: list[str] = Field(default_factory=list)
    function: str = "filegate-process-file"


FormatType = Literal["auto", "csv", "tsv", "json", "ndjson", "fixed_width", "xlsx", "pdf"]  # pdf: Lambda only
Compression = Literal["auto", "none", "gzip", "zip"]


class FixedField(_Strict):
    """One field of a fixed-width record: characters start .. start + width - 1 (1-based, like record specs)."""

    name: str = Field(min_length=1)
    start: int = Field(ge=1)
    width: int = Field(ge=1)

    @property
    def end(self) -> int:
        return self.start - 1 + self.width


class Format(_Strict):
    type: FormatType = Field(default="csv", description="auto: decided from the file's bytes and name")
    delimiter: str | None = Field(default=None, min_length=1, max_length=1,
                                  description="csv: None sniffs , ; tab | from the first lines")
    encoding: str = Field(default="auto", description="auto: BOM, UTF-16, UTF-8, else cp1252/Latin-1")
    header: bool = True
    quote_char: str = Field(default='"', min_length=1, max_length=1)
    compression: Compression = Field(default="auto", description="auto: gzip and zip recognised by magic bytes")
    skip_lines: int = Field(default=0, ge=0, description="lines before the header/data (e.g. a banner record)")
    fields: list[FixedField] = Field(default_factory=list, description="fixed_width: the record layout")
    sheet: str | None = Field(default=None, description="xlsx: worksheet name; default the first sheet")
    max_uncompressed_bytes: int = Field(default=8 << 30, ge=1, description="refuse archives that inflate more")
    max_compression_ratio: float = Field(default=250.0, gt=1, description="refuse archives inflating more")
    max_columns: int = Field(
        default=2000, ge=1, le=100_000,
        description="refuse a header (or first row) with more fields; counted on a bounded read, before the line "
                    "is split, so one enormous line is refused in a few MB of memory")
    max_record_bytes: int = Field(
        default=16 << 20, ge=1024, le=256 << 20,
        description="json/ndjson: the largest record. An NDJSON line over it is read in bounded pieces and skipped "
                    "to the next line: a rejected row with its line, size and first characters, and the rest of the "
                    "file goes on. A JSON array element over it refuses the file (an array cannot be resynchronised "
                    "past it). Counted in characters of the decoded text, so a record refused is always more bytes "
                    "than this. Memory grows with it: a record of this size costs up to ~25 times as much while it "
                    "is parsed, validated, profiled and written, so the default keeps any file under 1 GB. "
                    "(csv/tsv and fixed_width rows are bounded by the read block instead: a longer row refuses "
                    "the file, naming its line)")
    max_cells: int = Field(
        default=50_000_000, ge=1,
        description="xlsx: the most cells read from the sheet (rows x their width, trailing empty cells beyond "
                    "the header's width included); bounds memory and time whatever the sheet's <dimension> says")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _layout_fits_type(self) -> Format:
        if self.type == "fixed_width":
            if not self.fields:
                raise ValueError("format.type fixed_width needs format.fields: [{name, start, width}, ...]")
            ordered = sorted(self.fields, key=lambda f: f.start)
            for before, after in itertools.pairwise(ordered):
                if after.start <= before.end:
                    raise ValueError(f"fixed-width fields {before.name!r} and {after.name!r} overlap")
            names = [f.name for f in self.fields]
            if len(set(names)) != len(names):
                raise ValueError("fixed-width field names must be unique")
        elif self.fields:
            raise ValueError(f"format.fields applies to fixed_width files, not {self.type}")
        return self


class Thresholds(_Strict):
    max_rejected_share: float = Field(default=0.05, ge=0.0, le=1.0)


class RowRule(_Strict):
    """A check every row must pass, over the typed columns: e.g. `shipped_at >= ordered_at`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    check: str
    message: str = ""

    @field_validator("check")
    @classmethod
    def _parses(cls, value: str) -> str:
        from filegate.expressions import ExpressionError, parse

        try:
            parse(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from exc
        return value


class FileRules(_Strict):
    """Checks on the file as a whole; breaking one quarantines the file."""

    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=1)
    sorted_by: list[str] = Field(default_factory=list, description="rows must be in ascending order of these")
    max_duplicate_share: float | None = Field(default=None, ge=0.0, le=1.0,
                                              description="share of rows that repeat an earlier row exactly")


class Rename(_Strict):
    rename: dict[str, str]


class Cast(_Strict):
    cast: dict[str, ColumnType] = Field(description="column -> new type, e.g. {quantity: float}")


class Derive(_Strict):
    derive: str = Field(description="name of the new column")
    expr: str = Field(description="arithmetic over columns, e.g. 'quantity * unit_price'")


class Filter(_Strict):
    filter: str = Field(description="a comparison kept rows satisfy, e.g. 'status != \"test\"'")


AGGREGATE_FUNCTIONS = ("sum", "count", "min", "max", "mean")
MEASURE = re.compile(r"^\s*(sum|count|min|max|mean)\(\s*([A-Za-z_][A-Za-z0-9_]*|\*)\s*\)\s*$")


class AggregateSpec(_Strict):
    group_by: list[str] = Field(min_length=1)
    measures: dict[str, str] = Field(min_length=1, description="output column -> 'sum(amount)', 'count(*)', ...")

    @field_validator("measures")
    @classmethod
    def _measures_parse(cls, measures: dict[str, str]) -> dict[str, str]:
        for name, spec in measures.items():
            match = MEASURE.match(spec)
            if not match:
                raise ValueError(f"measure {name!r}: {spec!r} is not one of "
                                 f"{', '.join(f + '(column)' for f in AGGREGATE_FUNCTIONS)} or count(*)")
            if match[2] == "*" and match[1] != "count":
                raise ValueError(f"measure {name!r}: only count takes *")
        return measures

    def parsed(self) -> list[tuple[str, str, str]]:
        """(output, function, input column or '*') for each measure."""
        out = []
        for name, spec in self.measures.items():
            match = MEASURE.match(spec)
            assert match is not None
            out.append((name, match[1], match[2]))
        return out


class Aggregate(_Strict):
    aggregate: AggregateSpec


Transform = Annotated[Rename | Cast | Derive | Filter | Aggregate, Field(union_mode="left_to_right")]


class ParquetDestination(_Strict):
    partition_by: str | None = Field(default=None, description="a date column; default: the arrival date")
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"


MAX_RETRY_FOR_MINUTES = 6 * 60


class ApiDestination(_Strict):
    endpoint: str = Field(pattern=r"^/", description="path on the filegate_api connection's host")
    batch_size: int = Field(default=500, ge=1, le=10_000)
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON field -> column name, nested mapping, {$const: v}, {$column: c} or {$meta: feed|file_id|"
                    "file_name|sha256} (see filegate.delivery.template); empty: every column as is")
    envelope: str | None = Field(default=None, min_length=1, description="POST {envelope: [...]} instead of [...]")
    concurrency: int = Field(default=4, ge=1, le=64, description="batches in flight at once")
    rate_limit_per_s: float | None = Field(default=None, gt=0, description="requests per second, token bucket")
    retry_for_minutes: float = Field(
        default=15, gt=0, le=MAX_RETRY_FOR_MINUTES,
        description="how long a file keeps retrying while the API is unavailable (5xx, 429, timeouts, refused "
                    "connections), from its first failed try, before it fails; the task waits between tries "
                    "without holding a worker slot")
    conn_id: str = "filegate_api"

    @field_validator("payload")
    @classmethod
    def _payload_compiles(cls, value: dict[str, Any]) -> dict[str, Any]:
        from filegate.delivery.template import validate_template

        return dict(validate_template(value))


IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"


class PostgresDestination(_Strict):
    """Rows also land in a Postgres table, Write-Audit-Publish: a staging table is loaded and audited, then the
    rows are upserted on the natural key in the same transaction; a failed audit publishes nothing."""

    table: str = Field(pattern=IDENTIFIER)
    db_schema: str = Field(default="feeds", pattern=IDENTIFIER, alias="schema")
    natural_key: list[str] = Field(min_length=1, description="columns that identify a row: the UPSERT key")
    dsn_env: str | None = Field(default=None, description="env var with the DSN; default: the status store's")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Callbacks(_Strict):
    """Uploads to this feed may name a `callback_url`: when the file reaches a terminal status, Filegate POSTs a
    signed JSON body there (filegate.callbacks). Only the hosts listed here may be called back."""

    allowed_hosts: list[str] = Field(min_length=1, description="hosts a callback URL may name: exact, or "
                                                                "'*.example.com' for its subdomains")
    allow_http: bool = Field(default=False, description="also plain http (a local stack); https only otherwise")
    secret_conn_id: str = Field(default="filegate_callbacks",
                                description="Airflow connection whose password is the HMAC-SHA256 signing secret")
    timeout_s: float = Field(default=10.0, gt=0, le=60, description="per request")


class Destinations(_Strict):
    parquet: ParquetDestination = Field(default_factory=ParquetDestination)
    api: ApiDestination | None = None
    postgres: PostgresDestination | None = None


class Contract(_Strict):
    name: str
    description: str
    owner: str = "data-engineering"
    tags: list[str] = Field(default_factory=list)
    source: Source = Field(default_factory=Source)
    format: Format = Field(default_factory=Format)
    schema_: Schema = Field(default_factory=Schema, alias="schema")
    rules: list[RowRule] = Field(default_factory=list, description="row rules across columns")
    file_rules: FileRules = Field(default_factory=FileRules)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    transforms: list[Transform] = Field(default_factory=list)
    destinations: Destinations = Field(default_factory=Destinations)
    heavy: Heavy = Field(default_factory=Heavy)
    expect: Expect | None = Field(default=None, description="when files are expected (delivery slots)")
    null_values: NullValues | None = Field(
        default=None, description="missing-value markers of typed and inferred columns; default pandas' set")
    callbacks: Callbacks | None = Field(default=None, description="uploads may name a callback URL on these hosts")
    schema_drift: DriftPolicy = Field(
        default=DEFAULT_DRIFT_POLICY,
        description="a file whose columns differ from the feed's current schema version: evolve (accept, new "
                    "version), warn (accept, new version, alert) or freeze (quarantine with the diff)")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not FEED_NAME.match(value):
            raise ValueError("must be lower-case letters, digits and underscores, starting with a letter")
        return value

    @property
    def columns(self) -> list[Column]:
        return self.schema_.columns

    def null_markers(self, column: Column | None = None, *, inferred: bool = False) -> frozenset[str]:
        """The texts that are missing values in `column` (None: the contract's own set, which inferred columns
        use). A declared string column keeps its exact text (`NA` may be Namibia) unless it sets its own."""
        markers = frozenset(DEFAULT_NULL_VALUES)
        if self.null_values is not None:
            markers = self.null_values.apply(markers)
        if column is None or inferred:
            return markers
        if column.null_values is not None:
            return column.null_values.apply(markers)
        return frozenset() if column.type == "string" else markers

    @property
    def raw_prefix(self) -> str:
        return keys.raw_prefix(self.name)

    @property
    def queue_name(self) -> str:
        return self.source.queue or f"filegate-arrivals-{self.name}"

    @property
    def delimiter(self) -> str:
        return self.format.delimiter or ("\t" if self.format.type == "tsv" else ",")

    @property
    def aggregate(self) -> AggregateSpec | None:
        for step in self.transforms:
            if isinstance(step, Aggregate):
                return step.aggregate
        return None

    @model_validator(mode="after")
    def _references_exist(self) -> Contract:
        from filegate.expressions import columns_used

        names = [c.name for c in self.schema_.columns]
        if not names:  # inferred schema: names are only known per file
            return self
        known = set(names)
        for i, rule in enumerate(self.rules):
            unknown = sorted(columns_used(rule.check) - known)
            if unknown:
                raise ValueError(f"rules[{i}] ({rule.name}): unknown column(s) {', '.join(unknown)}")
        unknown = [c for c in self.file_rules.sorted_by if c not in known]
        if unknown:
            raise ValueError(f"file_rules.sorted_by: unknown column(s) {', '.join(unknown)}")
        output = self._output_columns(names)
        partition = self.destinations.parquet.partition_by
        if partition and partition not in output:
            raise ValueError(f"destinations.parquet.partition_by names unknown column {partition!r}")
        postgres = self.destinations.postgres
        if postgres is not None:
            unknown = [c for c in postgres.natural_key if c not in output]
            if unknown:
                raise ValueError(f"destinations.postgres.natural_key: unknown column(s) {', '.join(unknown)}; "
                                 f"the output has: {', '.join(output)}")
        return self

    def _output_columns(self, names: list[str]) -> list[str]:
        """The column names after the transforms, checking each step's references on the way."""
        from filegate.expressions import columns_used

        current = list(names)
        for i, step in enumerate(self.transforms):
            where = f"transforms[{i}]"
            if isinstance(step, Rename | Cast):
                mapping = step.rename if isinstance(step, Rename) else step.cast
                unknown = [c for c in mapping if c not in current]
                if unknown:
                    raise ValueError(f"{where}: unknown column(s) {', '.join(unknown)}")
                if isinstance(step, Rename):
                    current = [step.rename.get(c, c) for c in current]
            elif isinstance(step, Derive | Filter):
                expr = step.expr if isinstance(step, Derive) else step.filter
                unknown = sorted(columns_used(expr) - set(current))
                if unknown:
                    raise ValueError(f"{where}: unknown column(s) {', '.join(unknown)} in {expr!r}")
                if isinstance(step, Derive) and step.derive not in current:
                    current.append(step.derive)
            elif isinstance(step, Aggregate):
                if i != len(self.transforms) - 1:
                    raise ValueError(f"{where}: aggregate must be the last transform")
                spec = step.aggregate
                used = spec.group_by + [col for _, _, col in spec.parsed() if col != "*"]
                unknown = [c for c in used if c not in current]
                if unknown:
                    raise ValueError(f"{where}: unknown column(s) {', '.join(unknown)}")
                current = spec.group_by + list(spec.measures)
        return current
