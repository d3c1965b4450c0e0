from __future__ import annotations

import sys

from filegate_deploy.cli import main

sys.exit(main())
