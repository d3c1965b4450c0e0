"""What the MWAA 3.3.1 image does with a bundle, reproduced on this machine without Docker.

Every rule below is read from the image's own sources (aws/amazon-mwaa-docker-images, images/airflow/3.3.1):

- Dockerfiles/Dockerfile.base: AIRFLOW_HOME=/usr/local/airflow, WORKDIR $AIRFLOW_HOME, PYTHONPATH=/python (the
  image's own `mwaa` package, nothing of the user's), Python 3.12, everything installed by pip as the airflow user.
- docker-compose.yaml: the S3 objects land in $AIRFLOW_HOME/dags, $AIRFLOW_HOME/plugins (plugins.zip unpacked),
  $AIRFLOW_HOME/requirements/requirements.txt and $AIRFLOW_HOME/startup/startup.sh.
- bootstrap/02-airflow/001-install-required-pip-packages.sh: the packages the image installs
  (infra/mwaa/image-requirements.txt).
- python/mwaa/utils/user_requirements.py: `safe-pip-install -r requirements.txt`, with Airflow's constraints forced
  only when the file has no constraint line.
- python/mwaa/config/setup_environment.py: startup.sh runs before every component; the variables it exports are
  kept except the protected ones (PROTECTED_VARIABLES, and every MWAA__*).
- python/mwaa/config/airflow.py: the essential and opinionated Airflow settings (ESSENTIAL_CONFIG, OPINIONATED_CONFIG).

Where this differs from the image, on purpose: Python is this machine's (3.11 here, 3.12 on MWAA); the executor is
LocalExecutor (the image supports it: MWAA__CORE__EXECUTOR_TYPE) instead of Celery on SQS; the `--constraint` URL
(GitHub, unreachable here) is replaced by the project's lock, which tests/infra/test_mwaa_versions.py holds to
MWAA's versions; users sign in with a password instead of everyone being an admin (ESSENTIAL_CONFIG says why);
psycopg2 is the prebuilt psycopg2-binary of the same constraints; pycurl, celery's SQS extra and
boto3-stubs (Celery's transport and type stubs) are left out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from filegate_deploy import cfn_yaml
from filegate_deploy.bundle import REPO, check_requirements

AIRFLOW_VERSION = "3.3.1"
# bootstrap/02-airflow/001-install-required-pip-packages.sh, as a requirements file the lock also resolves.
IMAGE_REQUIREMENTS = Path(__file__).resolve().parents[1] / "image-requirements.txt"
# setup_environment._is_protected_os_environ: what startup.sh may not change.
PROTECTED_VARIABLES = frozenset({
    "AIRFLOW_ENV_ID", "AIRFLOW_ENV_NAME", "AIRFLOW_HOME", "AIRFLOW_TASK_REVISION_ID", "AIRFLOW_VERSION",
    "AIRFLOW__AWS_MWAA__REDIRECT_URL", "JWT_PUBLIC_KEY", "AIRFLOW__WEBSERVER__BASE_URL", "AIRFLOW__API__BASE_URL",
    "AWS_DEFAULT_REGION", "AWS_REGION", "CUSTOMER_ACCOUNT_ID", "ECS_AGENT_URI", "ECS_CONTAINER_METADATA_URI",
    "ECS_CONTAINER_METADATA_URI_V4", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EXECUTION_ENV", "PYTHONPATH",
    "PYTHONUNBUFFERED", "WATCHTOWER_VERSION", "USE_NON_CRITICAL_LOGGING", "AIRFLOW__CORE__DATABASE_ACCESS_ISOLATION",
})
# config/airflow.py, the parts that do not depend on the AWS account (executor as for LocalExecutor).
ESSENTIAL_CONFIG = {
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__MULTI_TEAM": "False",
    "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
    "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
    # The image's login when no IAM auth is configured: SimpleAuthManager with these users. The image also sets
    # ALL_ADMINS=True, which signs every request in as an admin (a middleware adds the token), so no route could
    # ever be seen refusing an anonymous caller; real MWAA signs users in through IAM. Here users sign in.
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    "AIRFLOW__API_AUTH__JWT_ALGORITHM": "HS256",
    "AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME": "86400",
    "AIRFLOW__TRIGGERER__QUEUES_ENABLED": "False",
}
OPINIONATED_CONFIG = {
    "AIRFLOW__CORE__EXECUTE_TASKS_NEW_PYTHON_INTERPRETER": "True",
    "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "proxy,proxies",
    "AIRFLOW__API__SERVER_TYPE": "gunicorn",
    "AIRFLOW__API__WORKER_REFRESH_INTERVAL": "43200",
    "AIRFLOW__API__WORKER_REFRESH_BATCH_SIZE": "1",
    "AIRFLOW__SCHEDULER__SCHEDULE_AFTER_TASK_EXECUTION": "False",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
}
_CONSTRAINT_LINE = re.compile(r"^\s*(-c|--constraint)[\s=]+\S+\s*$", re.MULTILINE)


class ImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class Layout:
    """The image's folders under `root` (root stands for the container's /)."""

    root: Path

    @property
    def airflow_home(self) -> Path:
        return self.root / "usr" / "local" / "airflow"

    @property
    def dags(self) -> Path:
        return self.airflow_home / "dags"

    @property
    def plugins(self) -> Path:
        return self.airflow_home / "plugins"

    @property
    def requirements(self) -> Path:
        return self.airflow_home / "requirements" / "requirements.txt"

    @property
    def startup_script(self) -> Path:
        return self.airflow_home / "startup" / "startup.sh"

    @property
    def image_python(self) -> Path:
        """The image's /python: its own `mwaa` package. Empty here; what matters is that it is all PYTHONPATH holds."""
        return self.root / "python"


def lay_out(bundle: Path, root: Path) -> Layout:
    """Places a built bundle (build/mwaa/) where the image finds it, as MWAA's sync does."""
    layout = Layout(root)
    if layout.airflow_home.exists():
        shutil.rmtree(layout.airflow_home)
    shutil.copytree(bundle / "dags", layout.dags)
    layout.plugins.mkdir(parents=True)
    with zipfile.ZipFile(bundle / "plugins.zip") as archive:
        archive.extractall(layout.plugins)
    layout.requirements.parent.mkdir(parents=True)
    shutil.copyfile(bundle / "requirements.txt", layout.requirements)
    layout.startup_script.parent.mkdir(parents=True)
    shutil.copyfile(bundle / "startup.sh", layout.startup_script)
    layout.image_python.mkdir(parents=True, exist_ok=True)
    return layout


def local_requirements(requirements: str, constraints: Path) -> str:
    """The bundle's requirements.txt with its --constraint URL pointed at a local file (nothing here reaches GitHub)."""
    check_requirements(requirements)
    return _CONSTRAINT_LINE.sub(f"--constraint {constraints}", requirements, count=1)


def _venv_key(requirements: str, constraints: Path) -> str:
    digest = hashlib.sha256()
    for part in (sys.version, IMAGE_REQUIREMENTS.read_text(), requirements, constraints.read_text()):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def install(layout: Layout, constraints: Path, venvs: Path, uv: Path | None = None) -> Path:
    """A virtual environment holding the image's packages and then the bundle's requirements.txt, both under
    `constraints`; nothing of the repository (no editable install, no .pth). Reused while its inputs are unchanged.
    Returns the environment's folder."""
    requirements = layout.requirements.read_text()
    venv = venvs / f"mwaa-{_venv_key(requirements, constraints)}"
    ready = venv / ".filegate-ready"
    if ready.is_file():
        return venv
    # Environments of earlier inputs are never used again: keep only the one being built.
    for stale in venvs.glob("mwaa-*") if venvs.is_dir() else ():
        shutil.rmtree(stale, ignore_errors=True)
    venvs.mkdir(parents=True, exist_ok=True)
    uv = uv or Path(sys.executable).with_name("uv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "create the virtual environment")
    python = venv / "bin" / "python"
    rewritten = venv / "requirements.txt"
    rewritten.write_text(local_requirements(requirements, constraints))
    # The image's layer first (bootstrap), then the user's requirements on top (user_requirements.py).
    image = ["-r", str(IMAGE_REQUIREMENTS)]
    _run([str(uv), "pip", "install", "--quiet", "--python", str(python), "-c", str(constraints), *image],
         "install the image's packages")
    # safe-pip-install always passes the image's packages again, so the user's file cannot remove or move them.
    _run([str(uv), "pip", "install", "--quiet", "--python", str(python), "-c", str(constraints), *image,
          "-r", str(rewritten)], "install requirements.txt")
    ready.write_text(json.dumps({"constraints": str(constraints)}))
    return venv


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise ImageError(f"could not {what}: {' '.join(argv[:4])} … exited {done.returncode}\n{done.stderr[-4000:]}")


def startup_environment(layout: Layout, environ: Mapping[str, str]) -> dict[str, str]:
    """Runs startup.sh as the image does before a component starts and returns what it exported, less what the
    image protects."""
    script = '. "$1" && python3 -c "import json, os; print(json.dumps(dict(os.environ)))"'
    done = subprocess.run(["bash", "-c", script, "startup", str(layout.startup_script)], env=dict(environ),
                          capture_output=True, text=True, check=False, timeout=300, cwd=layout.airflow_home)
    if done.returncode != 0:
        raise ImageError(f"startup.sh failed with exit code {done.returncode}:\n{done.stderr[-4000:]}")
    after: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        key: value for key, value in after.items()
        if environ.get(key) != value and key not in PROTECTED_VARIABLES and not key.startswith("MWAA__")
        and key not in {"_", "SHLVL", "PWD", "OLDPWD"}
    }


def component_environment(layout: Layout, venv: Path, *, settings: Mapping[str, str],
                          user_config: Mapping[str, str]) -> dict[str, str]:
    """The environment an Airflow component runs with, merged in the image's order (setup_environment.py):
    opinionated config < startup.sh exports < the user's Airflow config < protected < essential. `settings` are the
    account-specific essentials (database, secrets, URLs); `user_config` what the environment's Airflow configuration
    options would hold."""
    base = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(layout.airflow_home)),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(layout.airflow_home),
        "AIRFLOW_VERSION": AIRFLOW_VERSION,
        "PYTHONPATH": str(layout.image_python),
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
    }
    essential = {**ESSENTIAL_CONFIG, **settings}
    exported = startup_environment(layout, {**base, **OPINIONATED_CONFIG, **user_config, **essential})
    protected = {key: value for key, value in base.items() if key in PROTECTED_VARIABLES}
    return {**base, **OPINIONATED_CONFIG, **exported, **user_config, **protected, **essential}


def configuration_options(template: Path, values: Mapping[str, str]) -> dict[str, str]:
    """The environment's AirflowConfigurationOptions in a CloudFormation template, as MWAA hands them to every
    container: AIRFLOW__<SECTION>__<KEY>. An option whose value is an intrinsic function (a !Ref, a !Sub) takes
    its value from `values`, keyed by the option's name."""
    resources = cfn_yaml.load(template)["Resources"]
    environments = [r for r in resources.values() if r.get("Type") == "AWS::MWAA::Environment"]
    if len(environments) != 1:
        raise ImageError(f"{template} defines {len(environments)} MWAA environments; expected one")
    options: dict[str, object] = environments[0]["Properties"].get("AirflowConfigurationOptions", {})
    env = {}
    for name, value in options.items():
        section, _, key = name.partition(".")
        if not isinstance(value, str):
            if name not in values:
                raise ImageError(f"configuration option {name} is {value}: give its value")
            value = values[name]
        env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = str(value)
    return env


def repository_lock() -> Path:
    return REPO / "constraints.txt"
