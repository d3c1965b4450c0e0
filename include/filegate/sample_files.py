"""Generates the sample files of every feed (good and broken) into include/samples/<feed>/, deterministically.

    .venv/bin/python -m filegate.sample_files            # rewrite include/samples/ (orders/ and pdfs/ untouched)
    .venv/bin/python -m filegate.sample_files --out DIR  # somewhere else

The same builders serve the unit tests (broken fixtures) and `make run` (include/samples/expected.yaml).
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import io
import json
import random
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DAY = datetime(2026, 11, 20)


# ------------------------------------------------------------------------------------------------ trains (fixed)

def train_record(train_id: str, event: str, location: str, planned: datetime, delay: int | None,
                 platform: str = "4", status: str | None = None) -> str:
    actual = "" if delay is None else (planned + timedelta(minutes=delay)).strftime("%Y%m%d%H%M%S")
    status = status or ("C" if delay is None else "L" if delay > 0 else "E" if delay < 0 else "O")
    return (f"{train_id:<6}{event:<3}{location:<7}{planned:%Y%m%d%H%M%S}{actual:<14}{platform:<3}"
            f"{'' if delay is None else delay:>5}{status}")


def trains(count: int = 120, seed: int = 1, shuffle: bool = False) -> bytes:
    rnd = random.Random(seed)
    locations = ["EUSTON", "CREWE", "PRESTON", "CARLISL", "GLGC", "WATFDJ", "MKNSCEN"]
    records = []
    planned = DAY.replace(hour=6)
    for _i in range(count):
        planned += timedelta(minutes=rnd.randrange(1, 6))
        delay = rnd.choice([0, 0, 0, 2, 5, 12, -1, None])
        records.append(train_record(f"{rnd.randrange(1, 10)}{rnd.choice('ABCS')}{rnd.randrange(10, 99)}"
                                    f"{rnd.choice(['XY', 'QZ', 'M1'])}", rnd.choice(["ARR", "DEP", "PAS"]),
                                    rnd.choice(locations), planned, delay, str(rnd.randrange(1, 16))))
    if not shuffle:
        records[17] = records[17][:47] + "    0L"  # status says late, delay says otherwise: a row rule rejects it
        records[40] = records[40][:30]  # cut short in transmission: a bad record
    else:
        rnd.shuffle(records)
    header = f"HDR TRAIN MOVEMENTS {DAY:%Y%m%d} EXPORT 0800"
    return ("\r\n".join([header, *records]) + "\r\n").encode("ascii")


def trains_truncated() -> bytes:
    lines = trains().decode().splitlines()
    return ("\n".join([lines[0], *(line[:25] for line in lines[1:])]) + "\n").encode()


# ------------------------------------------------------------------------------------------ marketplace (csv.gz)

def marketplace_rows(count: int, seed: int = 2, bad_every: int = 0) -> str:
    rnd = random.Random(seed)
    out = ["transaction_id,seller_id,product_id,sold_at,quantity,unit_price,status,channel"]
    for i in range(1, count + 1):
        sold = DAY + timedelta(seconds=rnd.randrange(0, 2 * 86400))
        price = f"{rnd.randrange(199, 9999) / 100:.2f}"
        if bad_every and i % bad_every == 0:
            price = "n/a"
        status = rnd.choices(["completed", "refunded", "cancelled"], [90, 7, 3])[0]
        out.append(f"{i},S{rnd.randrange(1, 13):04d},P{rnd.randrange(1, 40):05d},{sold:%Y-%m-%d %H:%M:%S},"
                   f"{rnd.randrange(1, 5)},{price},{status},{rnd.choice(['web', 'app'])}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------ events (ndjson)

def events(count: int = 200, seed: int = 3, broken: bool = False, session: bool = False) -> bytes:
    """`session`: every event also carries a session_id, a field the feed has not seen (schema drift)."""
    rnd = random.Random(seed)
    lines = []
    for i in range(count):
        event = {"event_id": f"ev_{rnd.getrandbits(32):08x}",
                 "occurred_at": (DAY + timedelta(seconds=rnd.randrange(86400))).strftime("%Y-%m-%dT%H:%M:%S"),
                 "user_id": rnd.randrange(1, 500), "event_type": rnd.choice(["page_view", "click", "purchase"]),
                 "properties": {"path": f"/p/{rnd.randrange(100)}", "ab": [rnd.random() < 0.5, 1.50]}}
        if event["event_type"] == "purchase":
            event["value"] = round(rnd.uniform(5, 200), 2)
        if session:
            event["session_id"] = f"s_{rnd.getrandbits(24):06x}"
        line = json.dumps(event)
        if broken and i % 3 == 0:
            line = line[: len(line) // 2]  # cut in half: not JSON
        lines.append(line)
    if not broken:
        lines[10] = json.dumps({"event_id": "ev_zz", "occurred_at": "yesterday", "user_id": 0,
                                "event_type": "hover"})
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------------------------------------- shipments (json)

def shipments(count: int = 60, seed: int = 4) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    out: list[dict[str, object]] = []
    for i in range(1, count + 1):
        ordered = DAY + timedelta(minutes=rnd.randrange(0, 1440))
        shipped = ordered + timedelta(hours=rnd.randrange(1, 48))
        out.append({"shipment_id": 5000 + i, "order_id": 1000 + i, "ordered_at": f"{ordered:%Y-%m-%dT%H:%M:%S}",
                    "shipped_at": f"{shipped:%Y-%m-%dT%H:%M:%S}", "carrier": rnd.choice(["DHL", "UPS", "DPD"]),
                    "weight_kg": round(rnd.uniform(0.2, 30), 3), "insured": rnd.random() < 0.3})
    out[5]["shipped_at"] = "2026-11-19T08:00:00"  # before it was ordered: the cross-column rule rejects it
    out[9]["shipped_at"] = None
    return out


# ----------------------------------------------------------------------------------------- stock levels (tsv)

def stock_levels(sorted_rows: bool = True) -> bytes:
    descriptions = ["Crème brûlée Förmchen", "Käsereibe „Profi“", "Señal \u2013 naranja", "Tasse, 0,3 l", "Öl 5 €"]
    rows = []
    for w, warehouse in enumerate(["BER", "HAM", "MUC"]):
        for n in range(5):
            rows.append([warehouse, f"KIT-{1000 + n * 7 + w}", descriptions[n], str(10 * n + w), "2026-11-20"])
    if not sorted_rows:
        rows[3], rows[11] = rows[11], rows[3]
    text = "\r\n".join("\t".join(r) for r in [["warehouse", "sku", "description", "on_hand", "counted_on"], *rows])
    return (text + "\r\n").encode("cp1252")


# ------------------------------------------------------------------------------------------ price lists (xlsx)

def price_list() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Prices"
    sheet.append(["sku", "name", "price", "valid_from", "active"])
    for n in range(12):
        sheet.append([f"KIT-{2000 + n}", f"Kitchen item {n}", 4.5 + n, datetime(2026, 11, 1), n % 4 != 0])
    # A hostile cell: never evaluated, kept as text; inert wherever it is written as text.
    sheet.append(["KIT-2999", "=cmd|' /C calc'!A0", "free", datetime(2026, 11, 1), True])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ uploads (anything)

def customers_utf16() -> bytes:
    rows = ["id;name;city;signed_up;score", "1;Zoë Ångström;Malmö;2026-01-03;4.5", "2;José Núñez;Málaga;2026-02-11;",
            "3;\"Smith; John\";London;2026-03-30;3", "4;Łukasz;Łódź;2026-04-01;5.0"]
    return codecs.BOM_UTF16_LE + ("\r\n".join(rows) + "\r\n").encode("utf-16-le")


def survey_cp1252() -> bytes:
    rows = ["respondent,answered_on,likes_product,comment", "1,2026-11-01,yes,Très bien \u2013 merci",
            "2,2026-11-02,no,\"Zu teuer, leider\"", "3,2026-11-02,yes,\"He said \"\"wow\"\"\"",
            "4,2026-11-03,,\"two\nlines\""]
    return ("\r\n".join(rows) + "\r\n").encode("cp1252")


def measurements_zip() -> bytes:
    rows = ["sensor,taken_at,temperature,ok"] + [
        f"s{n % 4},2026-11-20 {n % 24:02d}:{n % 60:02d}:00,{15 + (n % 17) / 4:.2f},{'true' if n % 9 else 'false'}"
        for n in range(300)]
    return _zip("measurements.csv", ("\n".join(rows) + "\n").encode())


def zip_bomb(inflated_mb: int = 64) -> bytes:
    """One member of zeros that inflates ~1000x: refused before it is inflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive, \
            archive.open("data.csv", "w", force_zip64=True) as member:
        member.write(b"a,b\n")
        chunk = b"\0" * (1 << 20)
        for _ in range(inflated_mb):
            member.write(chunk)
    return buffer.getvalue()


def gzip_bomb(inflated_mb: int = 64) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as out:
        chunk = b"0" * (1 << 20)
        for _ in range(inflated_mb):
            out.write(chunk)
    return buffer.getvalue()


def _zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name, date_time=(2026, 11, 20, 0, 0, 0))
        archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def binary_garbage(size: int = 4096, seed: int = 5) -> bytes:
    return random.Random(seed).randbytes(size)


def nul_bytes() -> bytes:
    return b"a,b\n" + b"".join(b"1,\0\0\0\0x\0\0\n" for _ in range(200))


def mixed_encoding() -> bytes:
    head = "".join(f"{n},caf\u00e9 {n}\n" for n in range(5000)).encode("utf-8")
    return b"id,name\n" + head + "5000,caf\u00e9 latin\n".encode("latin-1")


def unterminated_quote() -> bytes:
    return b'id,comment\n1,fine\n2,"this quote never closes\n3,lost\n4,lost too\n'


def wide_line(columns: int = 100_000) -> bytes:
    return (",".join(f"c{n}" for n in range(columns)) + "\n").encode()


def duplicate_headers() -> bytes:
    return b"id,name,id\n1,a,2\n"


def ragged() -> bytes:
    rows = ["id,name,amount"] + [f"{n},n{n}" if n % 3 else f"{n},n{n},{n}.5" for n in range(1, 61)]
    return ("\n".join(rows) + "\n").encode()


SAMPLES_BY_PATH: dict[str, Callable[[], bytes]] = {
    "trains/trains_20261120_0800.txt": trains,
    "trains/trains_20261120_0805_out_of_order.txt": lambda: trains(40, seed=9, shuffle=True),
    "trains/trains_20261120_0810_truncated.txt": trains_truncated,
    "marketplace/marketplace_2026-11-20.csv.gz": lambda: gzip.compress(marketplace_rows(3000).encode(), mtime=0),
    "marketplace/marketplace_2026-11-21_bad_prices.csv": lambda: marketplace_rows(200, seed=6, bad_every=4).encode(),
    "events/events_2026-11-20.ndjson": events,
    "events/events_2026-11-20_broken.ndjson": lambda: events(90, seed=7, broken=True),
    "events/events_2026-11-21_with_session.ndjson": lambda: events(120, seed=11, session=True),
    "shipments/shipments_2026-11-20.json": lambda: json.dumps(shipments(), indent=1).encode(),
    "shipments/shipments_2026-11-20_truncated.json": lambda: json.dumps(shipments(), indent=1).encode()[:-900],
    "stock_levels/stock_2026-11-20.tsv": stock_levels,
    "stock_levels/stock_2026-11-20_unsorted.tsv": lambda: stock_levels(sorted_rows=False),
    "price_lists/prices_2026-11.xlsx": price_list,
    "price_lists/prices_2026-12_not_a_workbook.xlsx": lambda: binary_garbage(3000, seed=8),
    "uploads/customers_utf16_semicolon.csv": customers_utf16,
    "uploads/survey_cp1252.csv": survey_cp1252,
    "uploads/measurements.zip": measurements_zip,
    "uploads/zip_bomb.zip": zip_bomb,
    "uploads/binary_garbage.csv": binary_garbage,
    "uploads/nul_bytes.csv": nul_bytes,
    "uploads/mixed_encoding.csv": mixed_encoding,
    "uploads/unterminated_quote.csv": unterminated_quote,
    "uploads/wide_line_100000_columns.csv": wide_line,
    "uploads/duplicate_headers.csv": duplicate_headers,
    "uploads/header_only.csv": lambda: b"id,name,amount\n",
    "uploads/ragged_rows.csv": ragged,
}


def write_samples(out: Path = SAMPLES) -> list[Path]:
    written = []
    for relative, build in SAMPLES_BY_PATH.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(build())
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=SAMPLES)
    args = parser.parse_args()
    for path in write_samples(args.out):
        print(f"{path.stat().st_size:>9,} bytes  {path}")


if __name__ == "__main__":
    main()
