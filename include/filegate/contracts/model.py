"""Feed contracts: one YAML file per feed describes its source, format, schema, rules and destinations."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ColumnType = Literal["int", "float", "decimal", "bool", "date", "datetime", "string"]
FEED_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class FtpSource(_Strict):
    """Where a partner's FTP/FTPS server drops the feed's files, and what to do with them once in S3."""

    conn_id: str = "filegate_ftp"
    directory: str = "/"
    tls: bool = False
    stable_seconds: int = Field(default=10, ge=0, description="size unchanged this long means fully written")
    after_download: Literal["archive", "delete", "keep"] = "archive"
    archive_directory: str = "archive"
    schedule: str = Field(default="*/5 * * * *", description="cron for the ingest_ftp_<feed> DAG")


class Source(_Strict):
    kind: Literal["s3", "ftp", "upload"] = "s3"
    pattern: str = "*"
    queue: str | None = Field(default=None, description="SQS queue fed by S3 ObjectCreated events")
    sensed_schedule: str | None = Field(
        default=None, description="cron of the backfillable sense_<feed> DAG that lists the raw prefix per interval")
    ftp: FtpSource | None = None

    @model_validator(mode="after")
    def _ftp_needs_settings(self) -> Source:
        if self.kind == "ftp" and self.ftp is None:
            raise ValueError("source.kind ftp needs a source.ftp block (directory, conn_id, ...)")
        return self


class Heavy(_Strict):
    """When a file's processing goes to AWS Lambda instead of the Airflow worker."""

    size_threshold_bytes: int | None = Field(default=None, ge=0)
    always_formats: list[str] = Field(default_factory=list)
    function: str = "filegate-process-file"


class Format(_Strict):
    type: Literal["csv", "tsv"] = "csv"
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: str = "utf-8"
    header: bool = True
    quote_char: str = Field(default='"', min_length=1, max_length=1)


class Thresholds(_Strict):
    max_rejected_share: float = Field(default=0.05, ge=0.0, le=1.0)


class Rename(_Strict):
    rename: dict[str, str]


class Derive(_Strict):
    derive: str = Field(description="name of the new column")
    expr: str = Field(description="arithmetic over columns, e.g. 'quantity * unit_price'")


class Filter(_Strict):
    filter: str = Field(description="a comparison kept rows satisfy, e.g. 'status != \"test\"'")


Transform = Annotated[Rename | Derive | Filter, Field(union_mode="left_to_right")]


class ParquetDestination(_Strict):
    partition_by: str | None = Field(default=None, description="a date column; default: the arrival date")
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"


class ApiDestination(_Strict):
    endpoint: str = Field(pattern=r"^/", description="path on the filegate_api connection's host")
    batch_size: int = Field(default=500, ge=1, le=10_000)
    payload: dict[str, str] = Field(default_factory=dict, description="JSON field -> column; empty: all")
    conn_id: str = "filegate_api"


class Destinations(_Strict):
    parquet: ParquetDestination = Field(default_factory=ParquetDestination)
    api: ApiDestination | None = None


class Contract(_Strict):
    name: str
    description: str
    owner: str = "data-engineering"
    tags: list[str] = Field(default_factory=list)
    source: Source = Field(default_factory=Source)
    format: Format = Field(default_factory=Format)
    schema_: Schema = Field(default_factory=Schema, alias="schema")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    transforms: list[Transform] = Field(default_factory=list)
    destinations: Destinations = Field(default_factory=Destinations)
    heavy: Heavy = Field(default_factory=Heavy)

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

    @property
    def raw_prefix(self) -> str:
        return f"raw/{self.name}/"

    @property
    def queue_name(self) -> str:
        return self.source.queue or f"filegate-arrivals-{self.name}"

    @property
    def delimiter(self) -> str:
        return self.format.delimiter or ("\t" if self.format.type == "tsv" else ",")

    @model_validator(mode="after")
    def _references_exist(self) -> Contract:
        names = {c.name for c in self.schema_.columns}
        partition = self.destinations.parquet.partition_by
        if partition and names and partition not in names and not self._derived(partition):
            raise ValueError(f"destinations.parquet.partition_by names unknown column {partition!r}")
        return self

    def _derived(self, name: str) -> bool:
        for step in self.transforms:
            if isinstance(step, Derive) and step.derive == name:
                return True
            if isinstance(step, Rename) and name in step.rename.values():
                return True
        return False
