"""Run one command and write its resource usage as JSON: a tiny go-between for measure.py.

    python3 bench/launch.py RESULT.json COMMAND [ARG ...]

Why not measure from the bench process directly: Linux carries a process's peak-RSS mark
across exec, so a child spawned by a big parent (the bench holds the corpus audio while
building it) reports at least the parent's size as its own ru_maxrss. This launcher is
small; its child's ru_maxrss is the child's own (plus at most the launcher's ~10 MB).
Deliberately standard-library only and import-light. stdin, stdout and stderr are inherited.
"""

import json
import os
import sys
import time


def main() -> int:
    result, command = sys.argv[1], sys.argv[2:]
    spawned = time.monotonic()  # system-wide clock: the bench compares it with its own
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(result, "w", encoding="utf-8") as out:
        json.dump(
            {
                "spawned_monotonic": spawned,
                "user_seconds": usage.ru_utime,
                "system_seconds": usage.ru_stime,
                "max_rss_kb": usage.ru_maxrss,
                "returncode": code,
            },
            out,
        )
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
