"""Child process of test_bundle_imports: parses the bundle's DAGs the way MWAA does.

Run as `python -S bundle_import_check.py <dags> <plugins> <site-packages>...`: -S skips .pth files, so the
editable install of `filegate` (a meta-path finder installed by a .pth) is absent and only the bundle can provide
the library. Neither dags/ nor plugins/ is put on sys.path here: Airflow adds them itself (settings.initialize adds
plugins/, the DAG bag adds dags/ while parsing), exactly as on MWAA, whose PYTHONPATH holds nothing of the user's.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import tempfile

dags, plugins, *site_dirs = sys.argv[1:]
stdlib = {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib")}
sys.path[:] = [*[p for p in sys.path if p.startswith(tuple(stdlib)) or p.endswith(".zip")], *site_dirs]

home = tempfile.mkdtemp(prefix="filegate-bundle-check-")
os.environ.update(
    {
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__DAGS_FOLDER": dags,
        "AIRFLOW__CORE__PLUGINS_FOLDER": plugins,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "FILEGATE_HOME": home,
        # As startup.sh exports it on MWAA: the contracts live in dags/feeds/.
        "FILEGATE_FEEDS_DIR": os.path.join(dags, "feeds"),
        # As on MWAA (startup.sh): with a queue base URL the DAGs build their S3-event watchers.
        "FILEGATE_SQS_QUEUE_BASE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012",
        "FILEGATE_BUCKET": "filegate-data-123456789012-us-east-1",
    }
)

from airflow import plugins_manager  # noqa: E402
from airflow.dag_processing.dagbag import DagBag  # noqa: E402
from airflow.utils.file import list_py_file_paths  # noqa: E402

# Plugins first, as in the api-server, which never builds a DAG bag (the bag would put dags/ on sys.path).
plugin_objects, plugin_errors = plugins_manager._get_plugins()
bag = DagBag(dag_folder=dags)
import filegate  # noqa: E402

print(
    json.dumps(
        {
            "filegate_file": filegate.__file__,
            "filegate_modules_elsewhere": sorted(
                name
                for name, module in sys.modules.items()
                if name.split(".")[0] == "filegate"
                and not (getattr(module, "__file__", None) or plugins).startswith(plugins)
            ),
            # The plugin manager imports every .py under plugins/ that .airflowignore does not hide, under its bare
            # file name: a library module loaded that way would run twice, outside its package.
            "library_modules_loaded_as_plugins": sorted(
                name
                for name, module in sys.modules.items()
                if name.split(".")[0] != "filegate"
                and (getattr(module, "__file__", None) or "").startswith(os.path.join(plugins, "filegate", ""))
            ),
            "dag_ids": sorted(bag.dag_ids),
            "dag_files": sorted({os.path.relpath(dag.fileloc, dags) for dag in bag.dags.values()}),
            "import_errors": {os.path.relpath(k, dags): v for k, v in bag.import_errors.items()},
            # safe_mode off: every .py file that is not ignored, i.e. what the dag-processor would try to parse.
            "candidate_files": sorted(os.path.relpath(p, dags) for p in list_py_file_paths(dags, safe_mode=False)),
            "plugins": sorted(p.name for p in plugin_objects),
            "plugin_errors": plugin_errors,
            "filegate_stack_importable": __import__("importlib.util").util.find_spec("filegate_stack") is not None,
        }
    )
)
