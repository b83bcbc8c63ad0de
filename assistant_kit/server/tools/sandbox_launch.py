"""How a sandbox worker is started on this machine: which namespaces it can have, the view of the
file system it gets, and its lifetime tied to the server's.

``probe_isolation()`` finds out once what ``unshare`` can do here. The launcher (a shell script
run as root inside the new namespaces) builds a root of its own for the worker and execs it; see
``_LAUNCHER``. Every worker process carries a marker naming its server (pid and start time), so
that ``reap_orphans()`` can find the workers of a server that is gone; each worker also gets a
parent-death signal, so that ``kill -9`` on the server ends it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: New network (only a downed loopback), pid, IPC, UTS and mount namespaces; the worker (init of
#: the pid namespace: every process in it dies with it) dies with `unshare`.
_UNSHARE_FLAGS = ("--net", "--pid", "--ipc", "--uts", "--mount", "--fork", "--kill-child")
#: The first argument of every worker process: ``kit-sandbox:<server pid>:<server start time>``,
#: so that a server starting up finds workers whose server is gone (``reap_orphans()``).
_MARKER = "kit-sandbox:"
_PR_SET_PDEATHSIG = 1
#: Host folders the sandbox sees, read-only (with the interpreter's own folders); nothing else.
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


@dataclass(frozen=True, slots=True)
class Isolation:
    """What this machine lets the local sandbox do (see ``probe_isolation()``)."""

    namespaces: bool  # network + pid + IPC + mount namespaces and a private root through `unshare`
    separate_uid: bool  # the code runs under its own unprivileged uid
    unshare: str | None = None

    def describe(self) -> str:
        view = "no network, own pids and IPC, read-only system folders, private tmpfs"
        if self.namespaces and self.separate_uid:
            return f"namespaces ({view}) + separate uid + rlimits"
        if self.namespaces:
            return f"namespaces ({view}) + rlimits; same uid"
        return "rlimits only: NOT isolated from the network or the host's files"


def _kept_paths() -> list[str]:
    """The interpreter's folders the worker needs (base install, virtualenv, executable's
    folder), outermost only: each is bound read-only into the sandbox where it lives."""
    paths = sorted(
        {str(Path(p).resolve()) for p in (sys.base_prefix, sys.prefix, Path(sys.executable).parent)}
    )
    outermost: list[str] = []
    for path in paths:  # sorted, so a parent comes before what it holds
        if not any(path == kept or path.startswith(kept + "/") for kept in outermost):
            outermost.append(path)
    return outermost


# The launcher runs as root inside the new namespaces, builds the sandbox's whole view of the
# file system and execs the worker (which drops to its uid before running any cell). Arguments:
# $1 a staging folder, $2 disk quota in MB, $3 size of the tmpfs holding the captured output
# (apart, so that a full disk does not silence the cell), $4 the host folders to show read-only
# (newline separated), $5 the uid that owns /mnt/data (may be empty), then the worker's argv.
# The new root is a tmpfs, read-only once built, holding: the host folders (bound read-only),
# /proc of the new pid namespace, a few device nodes, and one writable tmpfs of $2 MB whose
# folders are /tmp, /var/tmp, /dev/shm and /mnt/data (the working folder); /run holds only the
# root-only capture folder. pivot_root then drops the host's tree from the namespace. Folders to
# show are bound last, so that an interpreter under /tmp (a virtualenv there) stays visible.
_LAUNCHER = r"""
set -e
stage="$1"; disk_mb="$2"; out_mb="$3"; show="$4"; owner="$5"
shift 5
cell_path="$PATH"
PATH="/usr/sbin:/sbin:/usr/bin:/bin"
IFS='
'
mount --make-rprivate /
root="$stage/root"
mkdir -p "$root" "$stage/disk"
mount -t tmpfs -o mode=755,size=1m kit-root "$root"
mkdir -p "$root/proc" "$root/dev/shm" "$root/tmp" "$root/var/tmp" "$root/mnt/data" \
  "$root/run/kit" "$root/.old"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
for d in null zero full random urandom; do
  touch "$root/dev/$d"
  mount --bind "/dev/$d" "$root/dev/$d"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o "mode=755,size=${disk_mb}m,nosuid,nodev" kit-disk "$stage/disk"
mkdir -m 1777 "$stage/disk/tmp" "$stage/disk/var-tmp" "$stage/disk/shm"
mkdir -m 700 "$stage/disk/data"
if [ -n "$owner" ]; then chown "$owner:$owner" "$stage/disk/data"; fi
mount --bind "$stage/disk/tmp" "$root/tmp"
mount --bind "$stage/disk/var-tmp" "$root/var/tmp"
mount --bind "$stage/disk/shm" "$root/dev/shm"
mount --bind "$stage/disk/data" "$root/mnt/data"
umount "$stage/disk"
for p in $show; do
  if [ -L "$p" ]; then
    mkdir -p "$root$(dirname "$p")"
    ln -s "$(readlink "$p")" "$root$p"
  elif [ -d "$p" ]; then
    mkdir -p "$root$p"
    mount --bind "$p" "$root$p"
    mount -o remount,bind,ro,nosuid,nodev "$root$p"
  fi
done
mount -t tmpfs -o "mode=700,size=${out_mb}m,nosuid,nodev,noexec" kit-output "$root/run/kit"
mount -o remount,bind,ro "$root"
cd "$root"
pivot_root . .old
umount -l /.old
cd /
unset IFS
PATH="$cell_path"
exec "$@"
"""


def launcher_argv(
    unshare: str, stage: Path, disk_mb: int, output_mb: int, owner: int | None
) -> list[str]:
    """``unshare`` and the launcher with its arguments: the worker's argv goes after these."""
    flags = list(_UNSHARE_FLAGS)
    if os.geteuid() != 0:
        flags.insert(0, "--map-root-user")
    shown = "\n".join([*_SYSTEM_PATHS, *_kept_paths()])
    return [
        unshare,
        *flags,
        "--",
        "/bin/sh",
        "-c",
        _LAUNCHER,
        server_marker(),
        str(stage),
        str(disk_mb),
        str(output_mb),
        shown,
        "" if owner is None else str(owner),
    ]


@functools.lru_cache(maxsize=1)
def probe_isolation() -> Isolation:
    """Find out once whether ``unshare`` can build the sandbox's namespaces and view here."""
    unshare = shutil.which("unshare")
    if unshare is None or sys.platform != "linux":
        return Isolation(namespaces=False, separate_uid=False)
    with tempfile.TemporaryDirectory(prefix="kit-probe-") as folder:
        argv = launcher_argv(unshare, Path(folder), 16, 1, None)
        try:
            done = subprocess.run(
                [*argv, "/bin/true"],
                capture_output=True,
                timeout=10,
                check=False,
                cwd=folder,
                env={"PATH": "/usr/bin:/bin"},
            )
        except (OSError, subprocess.SubprocessError):
            return Isolation(namespaces=False, separate_uid=False)
    if done.returncode != 0:
        return Isolation(namespaces=False, separate_uid=False)
    return Isolation(namespaces=True, separate_uid=os.geteuid() == 0, unshare=unshare)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[19]


@functools.lru_cache(maxsize=1)
def server_marker() -> str:
    return f"{_MARKER}{os.getpid()}:{_start_time(os.getpid())}"


def reap_orphans() -> list[int]:
    """Kill the sandbox workers whose server is gone (e.g. killed with ``kill -9`` by an older
    version, or before its workers' parent-death signal was set); returns their pids."""
    killed: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return killed
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            if not arg.startswith(_MARKER.encode()):
                continue
            server, _, started = arg[len(_MARKER) :].decode("ascii", "replace").partition(":")
            if not server.isdigit() or _start_time(int(server)) == started:
                break  # its server is alive
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            break
    return killed


@functools.lru_cache(maxsize=1)
def reap_orphans_once() -> None:
    reap_orphans()


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


#: Looked up here, not between fork and exec, where loading a library could deadlock.
_PRCTL = _load_prctl()


def die_with_parent() -> None:  # pragma: no cover - runs between fork and exec
    """The worker's ``unshare`` (or, without namespaces, its supervisor) dies with the server:
    ``kill -9`` on the server ends every worker (``unshare --kill-child`` ends the rest)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
