"""A stand-in for AWS's ``aws_signing_helper``: prints credential_process JSON from a plan.

The real helper is on no package registry reachable here. This one reads a JSON plan named by
``$STUB_SIGNING_HELPER_PLAN``; call N (counted in the plan file) plays step N (the last step
repeats). A step is one of::

    {"credentials": {"AccessKeyId": ..., "SecretAccessKey": ..., "SessionToken": ...},
     "expires_in": 3.0, "delay": 0.0}     print the JSON (Expiration = now + expires_in)
    {"fail": "message", "status": 1}      print the message on stderr and exit with status
    {"hang": true}                        sleep until killed
    {"raw": "text"}                       print text as is

Every call appends ``{"argv", "pid", "started", "finished"}`` to the plan's ``calls`` list.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def _record(path: Path, plan: dict[str, Any], index: int, **fields: Any) -> None:
    plan["calls"][index].update(fields)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(plan))
    tmp.replace(path)


def main() -> int:
    path = Path(os.environ["STUB_SIGNING_HELPER_PLAN"])
    plan = json.loads(path.read_text())
    calls: list[dict[str, Any]] = plan.setdefault("calls", [])
    index = len(calls)
    step = plan["steps"][min(index, len(plan["steps"]) - 1)]
    calls.append({"argv": sys.argv[1:], "pid": os.getpid(), "started": time.time()})
    _record(path, plan, index)
    if step.get("hang"):
        time.sleep(3600)
    time.sleep(step.get("delay", 0.0))
    if "fail" in step:
        print(step["fail"], file=sys.stderr)
        _record(path, plan, index, finished=time.time())
        return int(step.get("status", 1))
    if "raw" in step:
        out = step["raw"]
    else:
        document = {"Version": 1, **step["credentials"]}
        if "expires_in" in step:
            expiry = datetime.now(UTC) + timedelta(seconds=step["expires_in"])
            document["Expiration"] = expiry.isoformat(timespec="milliseconds")
        out = json.dumps(document)
    _record(path, plan, index, finished=time.time())
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
