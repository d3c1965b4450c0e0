"""Filegate's local, Docker-free stand-in for everything Filegate talks to.

Postgres (pgserver), S3/SQS/SNS (moto), Lambda (awslambdaric behind an Invoke/Runtime API endpoint),
FTP/FTPS (pyftpdlib), a stub external API and Airflow's components, all bound to 127.0.0.1.
"""

from __future__ import annotations

from filegate_stack.config import Ports, StackConfig
from filegate_stack.stack import COMPONENT_NAMES, Stack, StackError

__all__ = ["COMPONENT_NAMES", "Ports", "Stack", "StackConfig", "StackError"]
