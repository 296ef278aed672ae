"""Run a command; write its exit status and peak RSS, as the kernel accounted them, to a
JSON file: `python -I -S rss_launcher.py RESULT.json PROGRAM ARG...`.

Why a launcher: Linux keeps a process's peak-RSS record across fork and exec, so a child
started straight from the bench (hundreds of MB after decoding 24 MP photos) would report
the bench's peak as its own. Started from this small process, the inherited floor is the
launcher's ~10 MB. Two readings: `ru_maxrss` from `wait4` (the child alone, after it
exited) and the highest `VmHWM` seen in /proc while it ran (a cross-check).
"""

import json
import os
import sys
import time


def _vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    result_path, argv = sys.argv[1], sys.argv[2:]
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    hwm = 0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        hwm = max(hwm, _vm_hwm_kib(pid))
        time.sleep(0.01)
    with open(result_path, "w") as out:
        json.dump(
            {
                "exit": os.waitstatus_to_exitcode(status),
                "ru_maxrss_kib": usage.ru_maxrss,
                "vm_hwm_kib": hwm,
            },
            out,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
