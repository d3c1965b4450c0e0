"""Turns a delivered file into plain bytes the readers can stream: gzip and zip are unpacked with bounds (a zip
bomb is refused, never inflated), and the first bytes tell the encoding and whether the file is text at all."""

from __future__ import annotations

import codecs
import gzip
import logging
import posixpath
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from filegate.contracts.model import Format
from filegate.parsers.base import ParseError, shown

log = logging.getLogger(__name__)

SNIFF_BYTES = 64 << 10
CHUNK = 1 << 20
RATIO_FLOOR_BYTES = 16 << 20  # below this much output, any ratio is harmless (a small file of blanks)
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
BINARY_MAGICS = {
    b"%PDF": "a PDF document", b"\x89PNG": "a PNG image", b"GIF8": "a GIF image", b"\xff\xd8\xff": "a JPEG image",
    b"\x7fELF": "an executable (ELF)", b"MZ": "a Windows executable", b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive", b"PAR1": "a Parquet file", b"\xd0\xcf\x11\xe0": "a legacy Office file (.xls/.doc)",
    b"BZh": "a bzip2 archive", b"\xfd7zXZ": "an xz archive", b"\x28\xb5\x2f\xfd": "a zstd archive",
}
BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
]
IGNORED_MEMBERS = ("__MACOSX/", ".DS_Store", "Thumbs.db")


@dataclass(frozen=True)
class Prepared:
    """A plain (uncompressed) file, the name to judge its type by, and how it was packed."""

    path: Path
    name: str
    packed: str | None = None  # "gzip" | "zip" | None


def _is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGICS)


# What zipfile raises for a broken archive: a bad structure, a version it cannot read, a member name that is
# not UTF-8 although flagged so, a damaged extra field.
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, NotImplementedError,
              UnicodeDecodeError, ValueError, IndexError, KeyError, struct.error, RuntimeError)
TAR_BLOCK = 512


def open_zip(path: Path, what: str = "the zip archive") -> zipfile.ZipFile:
    """The archive, or a ParseError saying why it cannot be opened."""
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError as exc:
        raise ParseError(f"{what} cannot be opened: a member name is not valid UTF-8 although the archive says "
                         f"so (byte 0x{exc.object[exc.start]:02x})") from exc
    except ZIP_ERRORS as exc:
        raise ParseError(f"{what} cannot be opened: {shown(str(exc))}") from exc


def is_xlsx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except ZIP_ERRORS:
        return False


def is_tar(head: bytes) -> bool:
    """A tar header block: the POSIX magic, or (old v7 archives) a checksum that adds up."""
    if len(head) < TAR_BLOCK:
        return False
    if head[257:262] == b"ustar":
        return True
    field = head[148:156].replace(b"\0", b" ").strip()
    if not field or not all(48 <= c <= 55 for c in field):
        return False
    return int(field, 8) == sum(head[:148]) + 8 * 32 + sum(head[156:TAR_BLOCK])


def refuse_archive(head: bytes, where: str) -> None:
    """Archives inside archives (and tar, which Filegate does not unpack) are refused, never read as text."""
    if is_tar(head):
        raise ParseError(f"{where} a tar archive: tar is not unpacked; deliver the file alone, gzipped (.gz) or "
                         "as the only file of a zip archive")


def _copy_bounded(source: BinaryIO, target: Path, *, packed_size: int, fmt: Format, what: str) -> None:
    """Inflates `source` into `target`, refusing output beyond the absolute limit or the compression ratio."""
    limit_ratio = fmt.max_compression_ratio
    written = 0
    with target.open("wb") as out:
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > fmt.max_uncompressed_bytes:
                raise ParseError(f"{what} inflates beyond {fmt.max_uncompressed_bytes:,} bytes "
                                 "(format.max_uncompressed_bytes): refused as a possible decompression bomb")
            if written > RATIO_FLOOR_BYTES and written > limit_ratio * max(packed_size, 1):
                raise ParseError(f"{what} inflates more than {limit_ratio:g}x ({packed_size:,} bytes → over "
                                 f"{written:,}): refused as a possible decompression bomb "
                                 "(format.max_compression_ratio)")
            out.write(chunk)


def _gunzip(path: Path, name: str, work_dir: Path, fmt: Format) -> Prepared:
    target = work_dir / "decompressed"
    inner = name[:-3] if name.lower().endswith(".gz") else name
    try:
        with gzip.open(path, "rb") as source:
            head = source.read(TAR_BLOCK)
        refuse_archive(head, "the gzip file holds")
        if head.startswith(GZIP_MAGIC) or (_is_zip(head) and not _xlsx_wanted(fmt)):
            kind = "gzip" if head.startswith(GZIP_MAGIC) else "zip"
            raise ParseError(f"the gzip file holds a {kind} archive: nested archives are refused")
        with gzip.open(path, "rb") as source:
            _copy_bounded(source, target, packed_size=path.stat().st_size, fmt=fmt, what="the gzip file")
    except (OSError, EOFError, zlib.error) as exc:
        raise ParseError(f"the gzip file is corrupt or truncated: {shown(str(exc))}") from exc
    if _is_zip(head) and not is_xlsx(target):
        raise ParseError("the gzip file holds a zip archive: nested archives are refused")
    return Prepared(target, inner, "gzip")


def _xlsx_wanted(fmt: Format) -> bool:
    """A gzipped workbook is a zip inside gzip that is read, as long as the feed may be a workbook."""
    return fmt.type in ("auto", "xlsx")


def _unzip(path: Path, work_dir: Path, fmt: Format) -> Prepared:
    with open_zip(path) as archive:
        nameless = [m for m in archive.infolist() if not m.filename]
        if nameless:
            raise ParseError("the zip archive holds a member with an empty name: refused as a broken archive")
        members = [m for m in archive.infolist()
                   if not m.is_dir() and not any(part in m.filename for part in IGNORED_MEMBERS)]
        if not members:
            raise ParseError("the zip archive holds no file")
        if len(members) > 1:
            listed = ", ".join(shown(m.filename, 80) for m in members[:5]) + (" …" if len(members) > 5 else "")
            raise ParseError(f"the zip archive holds {len(members)} files ({listed}); exactly one is expected")
        member = members[0]
        name = shown(member.filename, 120)
        if member.flag_bits & 0x1:
            raise ParseError(f"{name} in the zip archive is encrypted")
        if member.file_size > fmt.max_uncompressed_bytes:
            raise ParseError(f"{name} in the zip archive declares {member.file_size:,} bytes, more than "
                             f"{fmt.max_uncompressed_bytes:,} (format.max_uncompressed_bytes): refused as a possible "
                             "decompression bomb")
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR_BYTES // 16 and ratio > fmt.max_compression_ratio:
            raise ParseError(f"{name} in the zip archive inflates {ratio:,.0f}x ({member.compress_size:,}"
                             f" → {member.file_size:,} bytes), more than {fmt.max_compression_ratio:g}x: refused as "
                             "a possible decompression bomb (format.max_compression_ratio)")
        target = work_dir / "decompressed"
        try:
            with archive.open(member) as source:
                head = source.read(TAR_BLOCK)
                refuse_archive(head, f"{name} in the zip archive is")
                if _is_zip(head) or head.startswith(GZIP_MAGIC):
                    raise ParseError(f"{name} in the zip archive is itself an archive: nested archives "
                                     "are refused")
            with archive.open(member) as source:
                _copy_bounded(source, target, packed_size=member.compress_size, fmt=fmt,
                              what=f"{name} in the zip archive")
        except ZIP_ERRORS as exc:
            raise ParseError(f"{name} in the zip archive cannot be read: {shown(str(exc))}") from exc
    return Prepared(target, posixpath.basename(member.filename), "zip")


def prepare(path: Path, fmt: Format, work_dir: Path, name: str | None = None) -> Prepared:
    """Unpacks gzip/zip (bounded) into `work_dir`; other files are used in place."""
    name = name or path.name
    if path.stat().st_size == 0:
        raise ParseError("the file is empty (0 bytes)")
    head = head_bytes(path, 4)
    wants = fmt.compression
    if wants == "gzip" or (wants == "auto" and head.startswith(GZIP_MAGIC)):
        prepared = _gunzip(path, name, work_dir, fmt)
    elif (wants == "zip" or (wants == "auto" and _is_zip(head))) and fmt.type != "xlsx" and not (
            fmt.type == "auto" and is_xlsx(path)):
        prepared = _unzip(path, work_dir, fmt)
    else:
        refuse_archive(head_bytes(path, TAR_BLOCK), "the file is")
        return Prepared(path, name)
    if prepared.path.stat().st_size == 0:
        raise ParseError(f"the file inside the {prepared.packed} archive is empty (0 bytes)")
    return prepared


def head_bytes(path: Path, size: int = SNIFF_BYTES) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def _utf16_without_bom(sample: bytes) -> str | None:
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _wide_order_fits(sample: bytes, name: str) -> bool:
    """Whether `sample` can be text in the byte-ordered wide encoding `name`. Delimited and JSON text always holds
    ASCII (line breaks, delimiters, digits), whose UTF-16 units have a NUL high byte, and every UTF-32 unit has a
    NUL top byte: UTF-8 or single-byte text (no NUL at all) or the other byte order does not fit."""
    sample = sample[:len(sample) - len(sample) % (4 if name.startswith("utf-32") else 2)]
    if not sample:
        return True
    if name == "utf-32-le":
        return sample[3::4].count(0) == len(sample[3::4])
    if name == "utf-32-be":
        return sample[0::4].count(0) == len(sample[0::4])
    low, high = (sample[0::2], sample[1::2]) if name == "utf-16-le" else (sample[1::2], sample[0::2])
    return high.count(0) > 0 and high.count(0) >= low.count(0)


def _without_bom(sample: bytes, declared: str) -> str:
    """`utf-16`/`utf-32` name no byte order: without a BOM, the order is told from the bytes, or the file refused.
    A declared byte order (`utf-16-le`, ...) must fit the bytes, or the file is refused naming the mismatch
    (rather than read as one enormous line of CJK-looking characters)."""
    try:
        name = codecs.lookup(declared).name
    except LookupError as exc:
        raise ParseError(f"the feed declares the unknown encoding {declared!r} (format.encoding)") from exc
    if name in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        if _wide_order_fits(sample, name):
            return declared
        looks = detect_encoding(sample)
        raise ParseError(f"the feed declares {declared} (format.encoding), but the file is not {name.upper()} text: "
                         f"its first {len(sample):,} bytes hold {sample.count(0):,} NUL bytes where that encoding "
                         f"needs them; it looks like {looks}: fix format.encoding (or use auto)")
    if name not in ("utf-16", "utf-32"):
        return declared
    wide = _utf16_without_bom(sample) if name == "utf-16" else None
    if wide:
        return wide
    raise ParseError(f"the feed declares {declared} (format.encoding), but the file has no byte-order mark and "
                     f"does not look like {name} text; declare {name}-le or {name}-be, or check the file")


def detect_encoding(sample: bytes, declared: str = "auto") -> str:
    """The codec to read the file with. A BOM always wins; `declared` is trusted otherwise."""
    for bom, codec in BOMS:
        if sample.startswith(bom):
            return codec
    if declared != "auto":
        return _without_bom(sample, declared)
    wide = _utf16_without_bom(sample)
    if wide:
        return wide
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:  # cp1252 leaves five bytes undefined; Latin-1 maps every byte
        return "latin-1"


def is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def refuse_binary(sample: bytes, encoding: str) -> None:
    """Raises when the first bytes are plainly not delimited/JSON text (an image, an executable, noise)."""
    for magic, what in BINARY_MAGICS.items():
        if sample.startswith(magic) and not (magic == b"MZ" and sample[:64].isascii()):
            raise ParseError(f"the file is {what}, not a text file")
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        return
    if not sample:
        return
    nul = sample.count(0)
    controls = sum(sample.count(b) for b in range(32) if b not in (9, 10, 12, 13))
    if nul > 0.01 * len(sample) or controls > 0.05 * len(sample):
        raise ParseError(f"the file looks binary, not text: {controls:,} control bytes ({nul:,} NUL) in its first "
                         f"{len(sample):,} bytes")


@dataclass(frozen=True)
class InvalidUtf8:
    line: int
    offset: int
    byte: int
    cut_at_end: bool  # the file ends inside a multi-byte character (a truncated transfer), not a foreign byte

    def reason(self) -> str:
        if self.cut_at_end:
            return (f"the file ends inside a UTF-8 character (line {self.line}, byte {self.offset:,}): it was "
                    "probably cut short in transfer")
        return (f"the file mixes encodings: line {self.line} (byte {self.offset:,}) has byte 0x{self.byte:02x}, "
                "which is not UTF-8 although the start of the file is; export the file in one encoding")


def first_invalid_utf8(path: Path) -> InvalidUtf8 | None:
    """The first byte that is not UTF-8 (its line and offset), and whether the file simply ends inside a
    character; only called once a read failed."""
    leftover, base, lines = b"", 0, 1
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            buf = leftover + chunk
            try:
                buf.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.reason != "unexpected end of data" or exc.end != len(buf):
                    return InvalidUtf8(lines + buf.count(b"\n", 0, exc.start), base + exc.start, buf[exc.start],
                                       cut_at_end=False)
                lines += buf.count(b"\n", 0, exc.start)  # a character cut by the chunk boundary: read on
                leftover, base = buf[exc.start:], base + exc.start
                continue
            lines += buf.count(b"\n")
            leftover, base = b"", base + len(buf)
    return InvalidUtf8(lines, base, leftover[0], cut_at_end=True) if leftover else None
