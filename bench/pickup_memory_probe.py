"""Peak memory of one pickup from a server to S3, measured in a fresh process (the caller's memory must not count).

Run: python bench/pickup_memory_probe.py '<json args>'; prints {"peak_kb", "before_kb", "seconds"} as its last line.
Args: protocol (ftp | sftp), port, user, password, host_key (sftp), moto, bucket, db, directory, name, naive
(true: the whole file read into memory and PUT at once, for comparison), feed; imports_only (true: only import
what a pickup imports and report that peak: the floor a pickup's memory is compared with). Used by
bench_ingest.py (c) and by the pickup tests' bounded-memory checks (tests/integration/test_ingest_sftp.py).
"""

from __future__ import annotations

import io
import json
import resource
import sys
import time
from typing import Any


def high_water_kb() -> int:
    # VmHWM is this process's own peak. ru_maxrss is not: Linux carries the pre-exec high-water mark of the
    # forking parent into it, so a child of a big process reports the parent's size.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def endpoint(args: dict[str, Any]) -> Any:
    if args["protocol"] == "sftp":
        from filegate.ingestion.sftp import SftpEndpoint

        return SftpEndpoint(host="127.0.0.1", host_key=args["host_key"], port=args["port"], user=args["user"],
                            password=args["password"])
    from filegate.ingestion.ftp import FtpEndpoint

    return FtpEndpoint(host="127.0.0.1", port=args["port"], user=args["user"], password=args["password"])


def main(args: dict[str, Any]) -> dict[str, Any]:
    import boto3

    from filegate.contracts.model import Contract
    from filegate.ingestion.pickup import pick_up
    from filegate.status.store import Actor, StatusStore

    server = endpoint(args)  # imports the protocol's client library
    if args.get("imports_only"):
        return {"peak_kb": high_water_kb(), "before_kb": high_water_kb(), "seconds": 0.0}
    s3 = boto3.client("s3", endpoint_url=args["moto"], region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    before = high_water_kb()
    started = time.monotonic()
    session = server.session()
    session.connect()
    try:
        remote = [f for f in session.list_files(args["directory"], "*.bin") if f.name == args["name"]]
        if args["naive"]:
            buffer = io.BytesIO()
            session.retrieve(remote[0].path, buffer.write)
            s3.put_object(Bucket=args["bucket"], Key="bench/naive/" + args["name"], Body=buffer.getvalue())
    finally:
        session.close()
    if not args["naive"]:
        contract = Contract.model_validate({
            "name": args["feed"], "description": "pickup memory probe", "owner": "bench",
            "source": {"kind": args["protocol"], "pattern": "*.bin",
                       args["protocol"]: {"directory": args["directory"], "stable_seconds": 0,
                                          "after_download": "keep"}}})
        report = pick_up(server, contract, remote, s3=s3, bucket=args["bucket"], store=StatusStore(args["db"]),
                         actor=Actor(task_id="bench_memory"))
        assert report.downloaded or report.duplicates, report.as_dict()
    return {"peak_kb": high_water_kb(), "before_kb": before, "seconds": time.monotonic() - started}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
