"""A DAG file's parse imports only what building its DAGs needs: the clients the tasks use (HTTP, Postgres, AWS)
and Airflow's server-side trigger machinery are imported inside the tasks, or named in the DAG file itself so
that the dag-processor pre-imports them once, before it forks the parses (docs/benchmarks.md, DAG file parse time).

Deterministic, not timed: one interpreter imports Airflow, then forks one child per DAG file, as the
dag-processor does; the child pre-imports the `airflow.*` modules the file names, parses it and reports which of
the heavy modules the parse itself added.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"

# Each costs 0.2-0.7 s of every parse that imports it (python -X importtime, docs/benchmarks.md); the last two
# 0.02-0.05 s, the PythonOperator of every @task and the s3:// asset URI handler, named in the DAG files instead.
HEAVY = ["requests", "psycopg", "boto3", "botocore", "airflow.api.common.trigger_dag",
         "airflow.providers.standard.operators.python", "airflow.providers.amazon.aws.assets.s3"]

PROBE = """
import importlib, json, os, runpy, sys
import airflow, airflow.sdk  # what the dag-processor has imported before it forks a parse
from airflow.utils.file import iter_airflow_imports

heavy, files = json.loads(sys.argv[1]), sys.argv[2:]
found = {}
for path in files:
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        for module in iter_airflow_imports(path):  # [dag_processor] parsing_pre_import_modules, on by default
            importlib.import_module(module)
        before = set(sys.modules)
        runpy.run_path(path, run_name="dag_parse")
        os.write(write, json.dumps([m for m in heavy if m in sys.modules and m not in before]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        found[os.path.basename(path)] = json.loads(pipe.read() or '["the parse failed: see stderr"]')
    os.wait()
print(json.dumps(found))
"""


def test_no_dag_file_imports_a_client_or_airflows_trigger_machinery_at_parse_time() -> None:
    files = sorted(str(p) for p in DAGS.glob("*.py"))
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), *files], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(imported) == {p.rsplit("/", 1)[1] for p in files}
    assert {name: modules for name, modules in imported.items() if modules} == {}
