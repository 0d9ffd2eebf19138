"""Attacks on the batch grader, each run for real: every one must fail to gain points and must
leave every other submission's grade unchanged.

These need a real isolation layer (bubblewrap, or a dedicated uid), so they run as root; a
non-root run skips them (the grader then says it runs with no isolation). The attack snippets
use absolute paths the attacker could learn (from /proc or from knowing the layout), which is
the strongest form of each attack.
"""

import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib.grading.isolation import Jail, choose_layer
from lib.grading.runner import grade_folder, grade_notebook

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ROOT / "tests" / "fixtures" / "hidden_gumbel_checks.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or choose_layer() == "none",
                       reason="needs root for a real isolation layer (bubblewrap or a uid)"),
]

RIGHT_Q1 = (
    "import numpy as np\n"
    "def sample_gumbel(n):\n"
    "    u = np.random.uniform(1e-300, 1.0, size=n)\n"
    "    return -np.log(-np.log(u))\n"
)
WRONG_Q1 = "import numpy as np\ndef sample_gumbel(n):\n    return -np.log(np.random.rand(n))\n"


def notebook(*cells, exercise_set="gumbel_max"):
    sources = [f'from lib.grading import Checker\ngrader = Checker("{exercise_set}")', *cells]
    return {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"exercise_set": exercise_set},
        "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                   "source": s} for s in sources],
    }


def write(folder, name, *cells, **kw):
    path = Path(folder) / name
    path.write_text(json.dumps(notebook(*cells, **kw)))
    return path


def scores(folder, tmp_path, **options):
    subs = grade_folder(folder, tmp_path / "grades.csv", quiet=True, **options)
    return {s.path.name: s for s in subs}


def q(sub, name="q1"):
    return next(r for r in sub.results if r.question == name)


def test_code_planted_in_the_package_never_runs_and_never_reaches_disk(tmp_path):
    targets = [ROOT / "lib" / "vae.py", ROOT / "lib" / "grading" / "sets" / "gumbel_max.py",
               ROOT / "lib" / "grading" / "core.py"]
    before = {t: t.read_bytes() for t in targets}
    payload = ("PAYLOAD = '''\\nimport lib.grading.core as c\\n"
               "c.decide = lambda q, d: c.Result(q.name, q.points, q.points, 'passed')\\n'''\n"
               "import lib.vae, lib.grading.core, lib.grading.sets.gumbel_max as g\n"
               "done = []\n"
               "for f in (lib.vae.__file__, lib.grading.core.__file__, g.__file__,\n"
               f"          {str(targets[0])!r}):\n"
               "    try:\n"
               "        open(f, 'a').write(PAYLOAD)\n"
               "        done.append(f)\n"
               "    except OSError as e:\n"
               "        pass\n"
               "assert not done, done\n")
    folder = tmp_path / "subs"
    folder.mkdir()
    write(folder, "a_attacker.ipynb", payload)
    write(folder, "b_wrong.ipynb", WRONG_Q1)
    write(folder, "c_right.ipynb", RIGHT_Q1)
    subs = scores(folder, tmp_path)
    assert {t: t.read_bytes() for t in targets} == before
    assert subs["a_attacker.ipynb"].total == 0
    assert q(subs["b_wrong.ipynb"]).points == 0 and q(subs["c_right.ipynb"]).passed
    assert not any("AssertionError" in n for n in subs["a_attacker.ipynb"].notes)


def test_fake_probe_data_written_to_the_pipe_is_ignored(tmp_path):
    fake = (
        "import os, json, numpy as np\n"
        "x = np.random.default_rng(0).gumbel(size=20000)\n"
        "import base64\n"
        "b64 = lambda a: base64.b64encode(a.tobytes()).decode()\n"
        "arr = {'dtype': '<f8', 'shape': [20000], 'b64': b64(x)}\n"
        "small = {'dtype': '<f8', 'shape': [3], 'b64': b64(x[:3])}\n"
        "event = {'question': 'q1', 'state': 'data', 'data': {'small': {'__array__': 's'},\n"
        "         'samples': {'__array__': 'a'}, 'uses_library': False},\n"
        "         'arrays': {'a': arr, 's': small}}\n"
        "lines = (json.dumps(event) + '\\n' + json.dumps({'state': 'finished'}) + '\\n').encode()\n"
        "for fd in map(int, os.listdir('/proc/self/fd')):\n"
        "    try:\n"
        "        os.write(fd, lines)\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n"
    )
    folder = tmp_path / "subs"
    folder.mkdir()
    write(folder, "fake.ipynb", fake)
    write(folder, "honest.ipynb", RIGHT_Q1)
    subs = scores(folder, tmp_path)
    assert subs["fake.ipynb"].total == 0
    assert q(subs["honest.ipynb"]).passed


def test_a_submission_cannot_see_or_run_a_classmates_answers(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    spy = (
        "import os, json, glob\n"
        "found = []\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n"
        "        found += open(f'/proc/{pid}/cmdline').read().split('\\0')\n"
        "    except Exception:\n"
        "        pass\n"
        f"found += glob.glob({str(folder)!r} + '/*.ipynb') + glob.glob('/tmp/*/*/*.ipynb')\n"
        "for path in found:\n"
        "    if path.endswith('.ipynb') and os.path.exists(path):\n"
        "        try:\n"
        "            cells = json.load(open(path))['cells']\n"
        "        except Exception:\n"
        "            continue\n"
        "        for cell in cells:\n"
        "            src = ''.join(cell['source'])\n"
        "            if 'def sample_gumbel' in src and 'import glob' not in src:\n"
        "                exec(src)\n"
    )
    write(folder, "alice.ipynb", RIGHT_Q1)
    write(folder, "mallory.ipynb", spy)
    subs = scores(folder, tmp_path, jobs=2)  # alice may be graded at the same time
    assert q(subs["alice.ipynb"]).passed
    assert q(subs["mallory.ipynb"]).status == "missing"


def test_a_submission_cannot_vandalise_a_classmates_notebook(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    vandal = (
        "import glob, os\n"
        f"for f in glob.glob({str(folder)!r} + '/*') + glob.glob('/tmp/*/*/*.ipynb'):\n"
        "    try:\n"
        "        open(f, 'w').close()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    write(folder, "a_vandal.ipynb", vandal)
    victim = write(folder, "b_victim.ipynb", RIGHT_Q1)
    original = victim.read_bytes()
    subs = scores(folder, tmp_path)
    assert victim.read_bytes() == original
    assert q(subs["b_victim.ipynb"]).passed and subs["b_victim.ipynb"].status == "ok"


def _processes_with(marker):
    found = []
    for pid in os.listdir("/proc"):
        try:
            if marker in open(f"/proc/{pid}/cmdline").read():
                found.append(pid)
        except OSError:
            pass
    return found


def test_no_process_survives_grading_even_with_setsid(tmp_path):
    marker = f"survivor-{os.getpid()}-{time.time_ns()}"
    escape = (
        "import subprocess, os\n"
        f"subprocess.Popen(['setsid', 'sh', '-c', 'sleep 600; : {marker}'],\n"
        "                 start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execvp('sh', ['sh', '-c', 'sleep 600; : {marker}-2'])\n"
        "    os._exit(0)\n"
        "import time\n"
        "time.sleep(1)\n"
    )
    sub = grade_notebook(write(tmp_path, "s.ipynb", escape, RIGHT_Q1))
    assert q(sub).passed
    time.sleep(0.5)
    assert _processes_with(marker) == []


def test_gradescope_results_cannot_be_rewritten_by_a_detached_process(tmp_path):
    from lib.grading.gradescope import run

    results = tmp_path / "results" / "results.json"
    attack = (
        "import subprocess, os\n"
        "script = ('sleep 3; for i in 1 2 3 4 5; do '\n"
        f"          'echo {{\\\"score\\\": 99}} > {results}; sleep 1; done')\n"
        "subprocess.Popen(['setsid', 'nohup', 'sh', '-c', script], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )
    (tmp_path / "submission").mkdir()
    write(tmp_path / "submission", "answers.ipynb", attack)
    res = run(tmp_path / "submission", results, exercise_set="gumbel_max")
    time.sleep(5)
    assert res["score"] == 0
    assert json.loads(results.read_text())["score"] == 0
    # The detached shell is dead (looked up by its script, not by uid: a grader running beside
    # this test, such as another pytest worker, may hold a dedicated uid right now).
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, str(results))]


def _cmdline_has(pid: str, text: str) -> bool:
    try:
        return text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_gradescope_grades_only_the_assignments_exercise_set(tmp_path):
    from lib.grading.gradescope import run

    (tmp_path / "submission").mkdir()
    nb = json.loads((ROOT / "solutions" / "07_reinforce.ipynb").read_text())
    (tmp_path / "submission" / "reinforce.ipynb").write_text(json.dumps(nb))
    res = run(tmp_path / "submission", tmp_path / "results.json", exercise_set="gumbel_max")
    assert res["score"] == 0 and "wrong exercise set" in res["output"]


def test_a_pipe_flood_keeps_the_grader_small_and_loses_no_grade(tmp_path):
    flood = (
        "import os\n"
        "chunk = b'x' * (16 * 2**20)\n"
        "fds = [int(f) for f in os.listdir('/proc/self/fd')]\n"
        "for _ in range(96):  # 1.5 GB without a newline, to every descriptor\n"
        "    for fd in fds:\n"
        "        try:\n"
        "            os.write(fd, chunk)\n"
        "        except OSError:\n"
        "            pass\n"
    )
    folder = tmp_path / "subs"
    folder.mkdir()
    write(folder, "a_right.ipynb", RIGHT_Q1)
    write(folder, "b_flood.ipynb", RIGHT_Q1, flood)
    write(folder, "c_right.ipynb", RIGHT_Q1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    subs = scores(folder, tmp_path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 300, f"the grader grew by {grown_mb:.0f} MB"
    assert q(subs["a_right.ipynb"]).passed and q(subs["c_right.ipynb"]).passed
    rows = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert [r["submission"] for r in rows] == ["a_right.ipynb", "b_flood.ipynb", "c_right.ipynb"]


def test_the_gradebook_is_written_after_each_submission(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    write(folder, "a.ipynb", RIGHT_Q1)
    write(folder, "b.ipynb", "import time\ntime.sleep(600)")
    out = tmp_path / "grades.csv"
    code = ("import sys; from lib.grading.runner import grade_folder; "
            f"grade_folder({str(folder)!r}, {str(out)!r}, quiet=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not out.exists():
            time.sleep(0.5)
        assert out.exists(), "no gradebook after the first submission"
        rows = list(csv.DictReader(open(out)))
        assert [r["submission"] for r in rows] == ["a.ipynb"] and rows[0]["q1"] == "2"
    finally:
        proc.kill()
        proc.wait()


LIMITS_PROBE = (
    "import os, resource\n"
    "report = [f'uid={os.getuid()}']\n"
    "for name in ('RLIMIT_AS', 'RLIMIT_NPROC', 'RLIMIT_FSIZE', 'RLIMIT_CPU'):\n"
    "    report.append(f'{name}={resource.getrlimit(getattr(resource, name))[0]}')\n"
    "try:\n"
    "    big = bytearray(8 * 2**30)\n"
    "    report.append('alloc=ok')\n"
    "except MemoryError:\n"
    "    report.append('alloc=MemoryError')\n"
    "try:\n"
    "    with open('big.bin', 'wb') as fh:\n"
    "        for _ in range(1024):\n"
    "            fh.write(b'0' * 2**20)\n"
    "    report.append('file=ok')\n"
    "except OSError as exc:\n"
    "    report.append(f'file={type(exc).__name__}')\n"
    "pids = []\n"
    "for _ in range(1000):\n"
    "    try:\n"
    "        pid = os.fork()\n"
    "    except OSError:\n"
    "        break\n"
    "    if pid == 0:\n"
    "        import time; time.sleep(60); os._exit(0)\n"
    "    pids.append(pid)\n"
    "report.append(f'forks={len(pids)}')\n"
    "raise RuntimeError(' '.join(report))\n"
)


def test_memory_processes_file_size_and_cpu_are_limited(tmp_path):
    import signal

    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the child inherits SIG_IGN
    try:
        sub = grade_notebook(write(tmp_path, "limits.ipynb", LIMITS_PROBE, RIGHT_Q1))
    finally:
        signal.signal(signal.SIGXFSZ, old)
    note = next(n for n in sub.notes if "uid=" in n)
    fields = dict(kv.split("=", 1) for kv in note.split("RuntimeError: ")[1].split())
    assert fields["uid"] != "0"
    assert fields["alloc"] == "MemoryError"
    assert fields["file"] != "ok"
    assert 0 < int(fields["forks"]) < 300
    assert all(int(fields[k]) > 0 for k in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE",
                                              "RLIMIT_CPU"))
    assert q(sub).passed


def test_nothing_of_the_grader_leaks_into_feedback(tmp_path, monkeypatch):
    from lib.grading import get_set
    from lib.grading.sets import load_extra

    monkeypatch.setenv("GRADER_SECRET_TOKEN", "hunter2-do-not-leak")
    # load_extra registers the hidden question in this process's gumbel_max set; give the set
    # a copy to register into, so that the tests that run after this one in the same worker
    # see the public set (CI failed when they graded the solution against the hidden question).
    gumbel = get_set("gumbel_max")
    monkeypatch.setattr(gumbel, "questions", dict(gumbel.questions))
    load_extra(HIDDEN)
    leak = (
        "import os, glob, inspect\n"
        "found = [repr(dict(os.environ))]\n"
        "for path in ['/etc/passwd', '/etc/shadow', '/root/.bashrc', "
        f"{str(HIDDEN)!r}, {str(ROOT / 'solutions' / '03_gumbel_max.ipynb')!r}] + "
        "glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        found.append(open(path).read())\n"
        "    except OSError:\n"
        "        pass\n"
        "from lib.grading import get_set\n"
        "for question in get_set('gumbel_max').questions.values():\n"
        "    for fn in (question.probe, question.judge):\n"
        "        try:\n"
        "            found.append(inspect.getsource(fn))\n"
        "        except (OSError, TypeError):\n"
        "            pass\n"
        "def sample_gumbel(n):\n"
        "    raise RuntimeError(' '.join(found)[-100000:])\n"
    )
    sub = grade_notebook(write(tmp_path, "leak.ipynb", leak), extra=[HIDDEN])
    feedback = sub.feedback() + " ".join(r.message for r in sub.results)
    assert "hunter2" not in feedback
    assert "daemon:" not in feedback and "root:x:0:0:root:/root:/bin/bash" not in feedback
    assert "BEGIN SOLUTION" not in feedback  # the solutions folder
    assert "P(G > 8)" not in feedback and "def probe" not in feedback  # the hidden checks
    assert "def _" not in feedback  # no judge's source
    assert "q1_tail" in gumbel.questions  # the hidden check was loaded and graded


def test_the_public_sets_hold_no_hidden_question():
    """Run after the test above in one process, this fails if the hidden check leaked."""
    from lib.grading import get_set

    assert not any(q.hidden for q in get_set("gumbel_max").questions.values())


def test_the_isolation_layer_is_reported(tmp_path):
    sub = grade_notebook(write(tmp_path, "a.ipynb", RIGHT_Q1))
    assert sub.layer in ("bubblewrap", "uid") and f"Isolation: {sub.layer}" in sub.feedback()


def test_the_uid_fallback_reports_itself_when_it_cannot_run_here(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SANDBOX", "uid")
    layer = choose_layer()
    assert layer in ("uid", "none")  # "none" where the interpreter is unreadable to the uid
    sub = grade_notebook(write(tmp_path, "a.ipynb", RIGHT_Q1), layer=layer)
    assert q(sub).passed and f"Isolation: {layer}" in sub.feedback()


def test_graders_running_side_by_side_never_share_a_dedicated_uid(tmp_path):
    """Each run kills every process of its uid afterwards, so two graders on one machine (two
    pytest workers, two terminals) must hold different uids; a uid is free again after cleanup,
    and a uid held by another process is skipped."""
    slot = 200  # far above the slots of graders that may run beside this test
    first, second = Jail("uid", tmp_path / "a", slot), Jail("uid", tmp_path / "b", slot)
    try:
        assert first.uid != second.uid
        held = first.uid
    finally:
        first.cleanup()
    other = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        "from lib.grading.isolation import _lock_dir\n"
        f"fd = os.open(_lock_dir() / '{held}.lock', os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert other.stdout.readline().strip() == "held"
        third = Jail("uid", tmp_path / "c", slot)
        try:
            assert third.uid not in (held, second.uid)
        finally:
            third.cleanup()
    finally:
        other.kill()
        other.wait()
        second.cleanup()
    fourth = Jail("uid", tmp_path / "d", slot)
    try:
        assert fourth.uid == held  # released by the cleanup and by the other process's death
    finally:
        fourth.cleanup()
