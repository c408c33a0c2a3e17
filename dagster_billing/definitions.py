"""The code location: every asset, check, job, sensor and resource found under defs/."""

import dagster as dg

import dagster_billing.defs
from dagster_billing.paths import REPO_ROOT

defs = dg.components.load_defs(dagster_billing.defs, project_root=REPO_ROOT)
