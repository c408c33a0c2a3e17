"""The docs site's generated files, written from what they describe:

- docs/benchmarks.md   from bench/results/*.json (bench/report.py renders it)
- docs/openapi.json    the ingestion API's OpenAPI schema, from the FastAPI app

`python scripts/generate_docs.py` (`make docs-generate`, and every `make bench*`) writes them;
`--check` exits 1 when one is stale. mkdocs.yml loads this file as a hook, so `mkdocs build
--strict` (in `make test`) fails on a stale file too.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = REPO_ROOT / "docs"
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def _benchmarks() -> str:
    sys.path.insert(0, str(REPO_ROOT))
    from bench.report import benchmarks_page

    return benchmarks_page(RESULTS_DIR)


def _openapi() -> str:
    from dagster_billing.api.app import create_app
    from dagster_billing.api.settings import ApiSettings

    with tempfile.TemporaryDirectory() as data_dir:
        schema = create_app(ApiSettings(data_dir=Path(data_dir))).openapi()
    return json.dumps(schema, indent=2) + "\n"


def generated() -> dict[Path, str]:
    return {
        DOCS_DIR / "benchmarks.md": _benchmarks(),
        DOCS_DIR / "openapi.json": _openapi(),
    }


def stale() -> list[Path]:
    return [
        path for path, text in generated().items() if not path.exists() or path.read_text() != text
    ]


def on_pre_build(config, **kwargs) -> None:
    """mkdocs hook: refuse to build the site from stale generated files."""
    from mkdocs.exceptions import PluginError

    outdated = stale()
    if outdated:
        names = ", ".join(str(path.relative_to(REPO_ROOT)) for path in outdated)
        raise PluginError(f"{names} out of date: run `make docs-generate` and commit the result")


def main(argv: list[str]) -> int:
    if "--check" in argv:
        outdated = stale()
        for path in outdated:
            print(f"{path.relative_to(REPO_ROOT)} is out of date: run `make docs-generate`")
        return 1 if outdated else 0
    for path, text in generated().items():
        path.write_text(text)
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
