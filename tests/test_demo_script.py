"""`make demo` end to end: scripts/demo.sh in a copy of the project, at whatever hour the suite runs.

The demo sends "the edition that carries what was just ingested", which is tomorrow's once today's send time has
passed: a send whose window is still open, the case `digest send --date` asks about. Only a run of the whole
script shows that the two commands the README promises still hold together.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_runs_end_to_end_and_sends_each_active_subscriber_once(tmp_path: Path) -> None:
    for folder in ("scripts", "samples", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "subscribers").mkdir()
    shutil.copy(ROOT / "subscribers" / "demo.csv", tmp_path / "subscribers" / "demo.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DEMO_DIGEST=str(Path(sys.executable).parent / "digest"), DEMO_PYTHON=sys.executable)

    result = subprocess.run(["bash", str(tmp_path / "scripts" / "demo.sh")], cwd=tmp_path, env=env, check=False,
                            capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(tmp_path / "subscribers" / "demo.csv", newline="", encoding="utf-8") as fh:
        active = [row["email"] for row in csv.DictReader(fh) if row["status"] in ("", "active")]
    messages = sorted((tmp_path / "demo-out" / "outbox").glob("*.eml"))
    assert len(messages) == len(active) > 0
    # Step 5 sends the same edition again: nothing more goes out.
    assert f"Still {len(messages)} files in the outbox." in result.stdout
    assert "freezes its articles early" not in result.stdout + result.stderr
