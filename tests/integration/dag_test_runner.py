"""Runs one DAG with `dag.test()` in its own interpreter (Airflow reads its configuration at import) and
prints the task states as JSON on the last line. Used by the DAG integration tests.
Usage: dag_test_runner.py DAG_FOLDER DAG_ID [RUN_CONF_JSON]"""

from __future__ import annotations

import json
import sys

from airflow.dag_processing.dagbag import DagBag


def main(dag_folder: str, dag_id: str, conf: str | None = None) -> None:
    bag = DagBag(dag_folder=dag_folder)
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    run = bag.dags[dag_id].test(run_conf=json.loads(conf) if conf else None)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print(json.dumps({"run_id": run.run_id, "state": str(run.state), "tasks": states}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
