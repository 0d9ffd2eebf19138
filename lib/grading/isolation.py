"""How the batch grader isolates the process that runs a submission's code.

Three layers, the strongest the machine offers is used (``GRADER_SANDBOX`` picks one by name):

``bubblewrap``
    Needs the ``bwrap`` command (Debian package ``bubblewrap``) and root. The child sees a new
    mount namespace holding only the system folders (``/usr``, ``/lib``, ``/etc`` with a
    minimal ``passwd``), the Python interpreter, the virtual environment and the book's package,
    all read-only, plus its own writable work folder; nothing else of the machine (other
    submissions, the project, the results, the hidden checks, ``/root``, ``/home``) exists in it.
    It has its own PID namespace (it cannot see or signal other processes, and every process it
    starts, ``setsid`` or not, dies with it), no network, no IPC with the host, and runs as a
    dedicated unprivileged uid (no capabilities) with resource limits.
``uid``
    Root without ``bwrap``: the child runs as a dedicated unprivileged uid with resource limits,
    so file permissions keep it out of root's files and the project; every process of that uid is
    killed after each run. It can still see the rest of the machine's world-readable files and
    other processes in ``/proc``.
``none``
    Not root: resource limits only, the child runs as the grading user. The README says to grade
    untrusted submissions in a container or a throw-away account in that case.

Every layer sets memory (address space), process-count, file-size, open-file and CPU-time
limits, and gives the child a minimal environment (none of the grader's variables).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

__all__ = ["Limits", "Jail", "choose_layer", "LAYERS"]

LAYERS = ("bubblewrap", "uid", "none")

#: First of the dedicated uids (one per parallel grading slot); ``GRADER_UID_BASE`` overrides.
UID_BASE = int(os.environ.get("GRADER_UID_BASE", "64000"))
#: How many dedicated uids the graders of one machine share (``UID_BASE`` onwards).
UID_COUNT = 256

MINIMAL_PASSWD = "root:x:0:0:root:/root:/usr/sbin/nologin\nstudent:x:{uid}:{uid}::/work:/bin/sh\n"
MINIMAL_GROUP = "root:x:0:\nstudent:x:{uid}:\n"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run (each enforced with setrlimit)."""

    memory_bytes: int = 6 * 1024**3  # address space: torch alone maps about 1.5 GB
    processes: int = 256  # processes + threads of the dedicated uid
    file_bytes: int = 256 * 1024**2  # largest file the child may write
    open_files: int = 1024
    cpu_seconds: int = 900  # per process; the wall-clock limit usually acts first

    def apply(self) -> None:
        """Set the limits on the calling process (run in the child before exec)."""
        for what, value in ((resource.RLIMIT_AS, self.memory_bytes),
                            (resource.RLIMIT_FSIZE, self.file_bytes),
                            (resource.RLIMIT_NOFILE, self.open_files),
                            (resource.RLIMIT_CPU, self.cpu_seconds),
                            (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(what, (value, value))

    def apply_nproc(self) -> None:
        """RLIMIT_NPROC counts every process of the real uid: set only before dropping to a
        dedicated uid (root itself ignores it, and the limit carries over the uid change)."""
        resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))


def _is_root() -> bool:
    return os.geteuid() == 0


def _bwrap() -> Optional[str]:
    return shutil.which("bwrap")


_LAYER_CACHE: Dict[str, str] = {}


def choose_layer(requested: Optional[str] = None) -> str:
    """The layer to use: ``requested`` (or ``GRADER_SANDBOX``) if it works here, else the best.

    Each candidate is tried once with a real run of the interpreter (cached), so a layer that
    cannot start Python here (for example a uid that cannot read an interpreter kept under
    ``/root``) is skipped rather than failing every submission.
    """
    requested = requested or os.environ.get("GRADER_SANDBOX") or None
    if requested is not None and requested not in LAYERS:
        raise ValueError(f"GRADER_SANDBOX must be one of {', '.join(LAYERS)}; got {requested!r}")
    order = list(LAYERS)
    if requested:
        order = order[order.index(requested):]
    for layer in order:
        if layer in _LAYER_CACHE:
            if _LAYER_CACHE[layer] == "ok":
                return layer
            continue
        ok = _works(layer)
        _LAYER_CACHE[layer] = "ok" if ok else "no"
        if ok:
            return layer
    return "none"


def _works(layer: str) -> bool:
    if layer == "none":
        return True
    if not _is_root() or (layer == "bubblewrap" and _bwrap() is None):
        return False
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="grade-probe-"))
    jail = Jail(layer, work, slot=0)
    try:
        cmd, preexec, env = jail.command([sys.executable, "-c", "import numpy, lib"])
        done = subprocess.run(cmd, preexec_fn=preexec, env=env, cwd=work, timeout=120,
                              stdin=subprocess.DEVNULL, capture_output=True)
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        jail.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def _readable_roots() -> List[Path]:
    """What the child must read: the interpreter, the environment and the book's package."""
    import lib

    roots = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix),
             Path(os.path.realpath(sys.executable)).parent.parent,
             Path(lib.__file__).resolve().parent}
    for entry in sys.path:  # site-packages of the environment (never the project root)
        p = Path(entry) if entry else None
        if p is not None and p.is_dir() and "site-packages" in p.parts:
            roots.add(p.resolve())
    out: List[Path] = []
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if not any(root == o or o in root.parents for o in out):
            out.append(root)
    return out


SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")


@dataclass
class Jail:
    """One sandboxed run's settings: ``command`` wraps a command, ``cleanup`` kills leftovers."""

    layer: str
    work: Path
    slot: int = 0
    limits: Limits = field(default_factory=Limits)
    _claim: Optional[tuple[int, int]] = field(default=None, init=False, repr=False)

    @property
    def uid(self) -> int:
        """The dedicated uid of this run, held by this process alone until ``cleanup()``.

        Every run kills all processes of its uid afterwards, so two graders on one machine (two
        terminals, two pytest workers) must never share one: the first free uid from
        ``UID_BASE + slot`` on is claimed with an exclusive ``flock`` on a root-only lock file,
        which the kernel releases if this process dies.
        """
        if self._claim is None:
            self._claim = _claim_uid(self.slot)
        return self._claim[0]

    def environment(self) -> Dict[str, str]:
        """The child's whole environment: nothing of the grader's is passed on."""
        work = str(self.work)
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work + "/tmp",
            "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": work + "/.mpl",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        }

    def prepare(self) -> None:
        (self.work / "tmp").mkdir(exist_ok=True)
        if self.layer in ("bubblewrap", "uid"):
            for p in [self.work, *self.work.rglob("*")]:
                os.chown(p, self.uid, self.uid, follow_symlinks=False)
            os.chmod(self.work, 0o700)
        if self.layer == "bubblewrap":
            etc = self.work.parent / (self.work.name + "-etc")
            etc.mkdir(exist_ok=True)
            (etc / "passwd").write_text(MINIMAL_PASSWD.format(uid=self.uid))
            (etc / "group").write_text(MINIMAL_GROUP.format(uid=self.uid))
            for f in etc.iterdir():
                os.chmod(f, 0o644)

    def command(self, argv: Sequence[str]
                ) -> tuple[List[str], Callable[[], None], Dict[str, str]]:
        """``(command, preexec_fn, env)`` running ``argv`` inside this layer's sandbox."""
        self.prepare()
        limits, uid = self.limits, self.uid

        if self.layer == "bubblewrap":
            etc = self.work.parent / (self.work.name + "-etc")
            cmd = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid",
                   "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                   "--hostname", "sandbox", "--clearenv"]
            for d in SYSTEM_DIRS:
                if os.path.islink(d):
                    cmd += ["--symlink", os.readlink(d), d]
                elif os.path.isdir(d):
                    cmd += ["--ro-bind", d, d]
            cmd += ["--ro-bind", str(etc / "passwd"), "/etc/passwd",
                    "--ro-bind", str(etc / "group"), "/etc/group",
                    "--ro-bind", "/dev/null", "/etc/shadow"]
            made = set()
            for root in _readable_roots():
                for parent in reversed(root.parents[:-1]):  # traversable, nothing else in them
                    if parent not in made and not os.path.islink(parent) and \
                            str(parent) not in SYSTEM_DIRS:
                        made.add(parent)
                        cmd += ["--perms", "0755", "--dir", str(parent)]
                cmd += ["--ro-bind", str(root), str(root)]
            cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
            for parent in reversed(self.work.parents[:-1]):
                if parent not in made and str(parent) != "/tmp":
                    cmd += ["--perms", "0755", "--dir", str(parent)]
            cmd += ["--bind", str(self.work), str(self.work), "--chdir", str(self.work)]
            for key, value in self.environment().items():
                cmd += ["--setenv", key, value]
            # bwrap runs as root to build the mounts, then setpriv drops to the dedicated uid
            # with no capabilities at all, so file permissions and RLIMIT_NPROC apply.
            cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                    "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *argv]

            def preexec() -> None:
                limits.apply()
                limits.apply_nproc()

            return cmd, preexec, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

        if self.layer == "uid":
            def preexec() -> None:
                limits.apply()
                limits.apply_nproc()
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.setsid()

            return list(argv), preexec, self.environment()

        def preexec_none() -> None:
            limits.apply()
            os.setsid()

        return list(argv), preexec_none, self.environment()

    def cleanup(self, proc: Optional[subprocess.Popen] = None) -> None:
        """Kill the child and everything it started (whatever its session or process group)."""
        if proc is not None:
            for target in (lambda: os.killpg(proc.pid, signal.SIGKILL),
                           lambda: proc.kill()):
                try:
                    target()
                except (ProcessLookupError, PermissionError, OSError):
                    pass
            proc.wait()
        if self.layer in ("bubblewrap", "uid"):
            kill_uid(self.uid)
        etc = self.work.parent / (self.work.name + "-etc")
        shutil.rmtree(etc, ignore_errors=True)
        if proc is None and self._claim is not None:  # the end of this jail: free the uid
            os.close(self._claim[1])
            self._claim = None


def _lock_dir() -> Path:
    import tempfile

    folder = Path(tempfile.gettempdir()) / "book-grader-uids"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if folder.is_symlink() or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise RuntimeError(f"{folder} must be a folder owned by the grader with mode 0700")
    return folder


def kill_free_uids(count: int = 4) -> None:
    """Kill leftovers of the first ``count`` dedicated uids that no running grader holds."""
    import fcntl

    if not _is_root():
        return
    folder = _lock_dir()
    for uid in range(UID_BASE, UID_BASE + count):
        fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            kill_uid(uid)
        except BlockingIOError:
            pass  # another grader's run: its own cleanup kills it
        finally:
            os.close(fd)


def _claim_uid(slot: int) -> tuple[int, int]:
    """``(uid, fd)``: the first uid from ``UID_BASE + slot`` that no other grader holds."""
    import fcntl

    folder = _lock_dir()
    for k in range(UID_COUNT):
        uid = UID_BASE + (slot + k) % UID_COUNT
        fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise RuntimeError(f"all {UID_COUNT} grader uids from {UID_BASE} are in use")


def kill_uid(uid: int, rounds: int = 20) -> None:
    """SIGKILL every process owned by ``uid`` (kill(-1) from a child that has become ``uid``)."""
    if not _is_root():
        return
    for _ in range(rounds):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked child
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
        if not _owned_by(uid):
            return
        time.sleep(0.05)


def _owned_by(uid: int) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    return True
            except OSError:
                pass
    return False
