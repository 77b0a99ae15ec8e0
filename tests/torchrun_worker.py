"""``sansa`` as one torchrun worker that also checks it really left the process group.

Run as ``python -m torch.distributed.run ... tests/torchrun_worker.py ARGS`` (ARGS as for
``sansa``). On Linux, after the command returns, any gloo thread still running means the
process group outlived ``destroy_process_group``; such a worker can abort at exit (SIGABRT)
after finishing its work, so the worker exits with code 3 and names the threads.
"""

import os
import sys


def gloo_threads() -> list[str]:
    """Names of this process's threads that belong to a gloo process group (Linux only)."""
    if not os.path.isdir("/proc/self/task"):
        return []
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                names.append(f.read().strip())
        except OSError:  # the thread ended meanwhile
            pass
    return [name for name in names if "gloo" in name]


def run(args: list[str]) -> int:
    from sansa_cli.cli.app import main

    sys.argv = ["sansa", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    left = gloo_threads()
    if left:
        print(f"rank {os.environ.get('RANK')}: threads of the process group still running "
              f"after the command: {left}", file=sys.stderr)
        code = code or 3
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
