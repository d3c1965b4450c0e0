"""Builds build/lambda/filegate-lambda.zip: the `filegate` library without its Airflow part (orchestration/)
plus its dependencies as manylinux wheels for Lambda's python3.12 on x86_64, downloaded from PyPI with pip
(never built here), stripped of what no handler loads; then reports the sizes against Lambda's limits.

  python infra/lambda/build.py                      # the deployable zip (python3.12, x86_64)
  python infra/lambda/build.py --verify             # also: the same bundle for this interpreter, run alone

--verify cannot load the cp312 binaries on another Python, so it builds the same bundle (same requirements,
same stripping) for the running interpreter and runs every handler's import plus a CSV conversion and a PDF
split from that bundle alone (boto3 added, as the runtime provides it): proof the stripping removed nothing
the handlers need.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "lambda"
ZIP_PATH = BUILD / "filegate-lambda.zip"
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
ZIPPED_LIMIT = 50 * 2**20  # direct upload; through S3 (CloudFormation) only the unzipped limit binds
UNZIPPED_LIMIT = 250 * 2**20  # function code plus layers
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# Nothing a handler imports: Cython sources/headers, C++ headers, tests, type stubs, Arrow Flight/Gandiva/
# CUDA/ORC bindings and their libraries, the Substrait binding, numpy's f2py and test suites.
STRIP_DIRS = {"tests", "test", "include", "__pycache__", "f2py", "_pyinstaller", "benchmarks"}
STRIP_SUFFIXES = (".pyx", ".pxd", ".pxi", ".pyi", ".h", ".hpp", ".cc", ".c", ".cpp", ".cmake")
# libarrow_substrait.so stays: pyarrow.lib links it (found by --verify); only its Python binding goes.
STRIP_NAME_PARTS = ("flight", "_substrait.cpython", "gandiva", "_cuda", "_orc", "_pyarrow_cpp_tests")
PACKAGE_EXCLUDE = {"orchestration"}


def log(message: str) -> None:
    print(message, flush=True)


def download(wheels: Path, python_version: str | None) -> None:
    """python_version None: wheels for this interpreter's own version and platform (for --verify)."""
    wheels.mkdir(parents=True, exist_ok=True)
    requirements = REQUIREMENTS if python_version else _local_requirements(wheels.parent)
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
               "-d", str(wheels), "-r", str(requirements)]
    if python_version:
        command += ["--python-version", python_version, "--implementation", "cp",
                    "--abi", f"cp{python_version.replace('.', '')}"]
        for platform in PLATFORMS:
            command += ["--platform", platform]
    log("$ " + " ".join(command))
    subprocess.run(command, check=True)


def _local_requirements(folder: Path) -> Path:
    """numpy is pinned per Python version in constraints.txt; the verify bundle takes this interpreter's."""
    import numpy

    path = folder / "requirements-local.txt"
    lines = [line for line in REQUIREMENTS.read_text().splitlines() if not line.startswith("numpy==")]
    path.write_text("\n".join([*lines, f"numpy=={numpy.__version__}"]) + "\n")
    return path


def unpack(wheels: Path, target: Path) -> None:
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)


def strip(target: Path) -> int:
    removed = 0
    for path in sorted(target.rglob("*"), key=lambda p: -len(p.parts)):
        if not path.exists():
            continue
        name = path.name
        top = path.relative_to(target).parts[0]
        if top == "filegate":
            continue
        if path.is_dir() and name in STRIP_DIRS:
            removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
        elif path.is_file() and (name.endswith(STRIP_SUFFIXES) or any(p in name.lower() for p in STRIP_NAME_PARTS)):
            removed += path.stat().st_size
            path.unlink()
    return removed


def copy_library(target: Path) -> None:
    source = ROOT / "include" / "filegate"

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
        if Path(folder) == source:
            skip |= PACKAGE_EXCLUDE & set(names)
        return skip

    shutil.copytree(source, target / "filegate", ignore=ignore)


def make_zip(folder: Path, path: Path) -> tuple[int, int, int]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for file in files:
            info = zipfile.ZipInfo.from_file(file, file.relative_to(folder).as_posix())
            info.date_time = (2020, 1, 1, 0, 0, 0)  # reproducible: same inputs, same zip bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if os.access(file, os.X_OK) else 0o644) << 16
            archive.writestr(info, file.read_bytes(), compresslevel=9)
    unzipped = sum(f.stat().st_size for f in files)
    return path.stat().st_size, unzipped, len(files)


def build(folder: Path, python_version: str | None) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    package = folder / "package"
    package.mkdir(parents=True)
    download(folder / "wheels", python_version)
    unpack(folder / "wheels", package)
    removed = strip(package)
    copy_library(package)
    log(f"stripped {removed / 2**20:.1f} MiB that no handler loads (tests, headers, stubs, Flight/Substrait/…)")
    return package


def report(zipped: int, unzipped: int, files: int) -> bool:
    log(f"{ZIP_PATH.relative_to(ROOT)}: {files} files")
    log(f"  zipped   {zipped / 2**20:7.1f} MiB  (Lambda limit for a direct upload: 50 MiB) "
        + ("ok" if zipped <= ZIPPED_LIMIT else "OVER: deploy it through S3 (infra/aws does), where only the "
                                               "unzipped limit applies"))
    log(f"  unzipped {unzipped / 2**20:7.1f} MiB  (Lambda limit, code + layers: 250 MiB) "
        + ("ok" if unzipped <= UNZIPPED_LIMIT else "OVER: use a container image (10 GB limit) instead"))
    return unzipped <= UNZIPPED_LIMIT


SMOKE = r"""
import importlib, json, os, sys, tempfile
from datetime import date
from pathlib import Path
bundle = sys.argv[1]
import importlib.util
# Only the bundle (and the runtime's boto3) is on the path: pandas and Airflow are simply absent, as on Lambda.
assert all(importlib.util.find_spec(name) is None for name in ("pandas", "airflow")), "bundle path leaks"
from filegate.functions.catalog import FUNCTIONS
for spec in FUNCTIONS.values():
    importlib.import_module(spec["handler"].rpartition(".")[0])
assert all(p.startswith(bundle) for p in (importlib.import_module(m).__file__ for m in
           ("pyarrow", "numpy", "pydantic", "yaml", "pypdf", "jsonschema", "filegate"))), "not loaded from the bundle"
from filegate.functions.events import example, validate_event
from filegate.contracts.model import Contract
from filegate.pipeline.engine import run_engine
from filegate.pipeline.pdf_split import split_pdf
for name in ("process_file", "plan_parts", "convert_part", "merge_parts", "split_pdf"):
    validate_event(name, example(name))
work = Path(tempfile.mkdtemp())
(work / "in.csv").write_text("id,amount,note\n1,2.50,a\n2,-1,b\n3,x,\"two\nlines\"\n")
result = run_engine(Contract.model_validate(example("process_file")["contract"]), work / "in.csv",
                    arrived=date(2026, 11, 20), work_dir=work)
assert result.rows_total == 3 and result.rows_rejected == 2 and result.parquet_files, result
split = split_pdf(Path(sys.argv[2]), {"a": [0], "b": [1, 2]}, work)
assert [p.page_count for p in split.parts] == [1, 2]
import pyarrow.parquet as pq
assert pq.ParquetFile(next(iter(result.parquet_files.values()))).metadata.num_rows == 1
print("bundle smoke test: every handler imports; CSV → Parquet and PDF split work from the bundle alone")
"""


def verify() -> bool:
    folder = BUILD / "verify"
    package = build(folder, None)
    import importlib

    # What the python3.12 runtime provides besides the zip: boto3 and its dependencies, linked in alone.
    runtime = folder / "runtime"
    runtime.mkdir()
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"):
        module = importlib.import_module(name)
        source = Path(module.__file__)
        source = source.parent if source.name == "__init__.py" else source
        (runtime / source.name).symlink_to(source)
    runtime_paths = [str(runtime)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    pdf = ROOT / "include" / "samples" / "pdfs" / "statement_2026-11-20.pdf"
    code = (f"import sys; sys.path[:0] = [{str(package)!r}]; sys.path += {sorted(runtime_paths)!r};\n" + SMOKE)
    result = subprocess.run([sys.executable, "-S", "-c", code, str(package), str(pdf)], env=env, check=False)
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify", action="store_true", help="also smoke-test the same bundle on this Python")
    parser.add_argument("--python-version", default="3.12")
    args = parser.parse_args()
    package = build(BUILD / "python3.12", args.python_version)
    ZIP_PATH.parent.mkdir(parents=True, exist_ok=True)
    within = report(*make_zip(package, ZIP_PATH))
    if args.verify and not verify():
        return 1
    return 0 if within else 2


if __name__ == "__main__":
    sys.exit(main())
