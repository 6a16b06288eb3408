"""The interrupt line is said the moment the signal arrives, by rank 0's herald, even while the main
thread sits in a library call that does not return to Python (as in a MUMPS factorization; `mpirun`
kills the ranks one second after it passes Ctrl-C on), and it is said once."""
import os
import select
import signal
import subprocess
import sys

import pytest

# the main thread waits in C, in read() on the gate (restarted by the kernel after the signal's C
# handler, SA_RESTART), until the test writes to it, so Python's own handler cannot run before then
SCRIPT = """
import ctypes, os, signal, sys
from bcp_hpc.cli.session import Interrupted, end_interrupted, install_signal_handlers, start_herald
install_signal_handlers()
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.siginterrupt(sig, False)
where = "; the last checkpoint in OUT is kept"
herald = start_herald(where)
gate = os.open(sys.argv[1], os.O_RDWR)
try:
    print("waiting", flush=True)
    ctypes.CDLL(None).read(gate, ctypes.create_string_buffer(8), 1)
    print("not interrupted", flush=True)
except Interrupted as exc:
    end_interrupted(exc, herald, where, 0)
"""


def _run(tmp_path, sig):
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    p = subprocess.Popen([sys.executable, "-c", SCRIPT, str(gate)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "waiting"
        p.send_signal(sig)
        said, _, _ = select.select([p.stderr], [], [], 60)
        assert said, "nothing said within 60 s of the signal"
        line = p.stderr.readline()        # said while the main thread is still in C ...
        assert p.poll() is None
    except BaseException:
        p.kill()
        raise
    with open(gate, "w") as fh:           # ... which the gate then lets return
        fh.write("go\n")
    out, err = p.communicate(timeout=60)
    return line, out, err, p.returncode


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_interrupt_is_said_at_once_and_once(tmp_path, sig):
    line, out, err, status = _run(tmp_path, sig)
    name = signal.Signals(sig).name
    assert line == f"[bcp-hpc] interrupted ({name}): stopping; the last checkpoint in OUT is kept\n"
    assert status == 128 + sig
    assert "not interrupted" not in out
    assert err == ""                      # nothing more: no second line, no traceback


def test_without_a_herald_rank_0_says_it_itself_and_other_ranks_stay_silent():
    from bcp_hpc.cli import session
    for rank, said in ((0, "[bcp-hpc] interrupted (SIGTERM): stopping; W\n"), (3, "")):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                      # the child ends through end_interrupted's os._exit
            os.close(r)
            sys.stderr = os.fdopen(w, "w")
            session.end_interrupted(session.Interrupted(signal.SIGTERM), None, "; W", rank)
        os.close(w)
        with os.fdopen(r) as fh:
            text = fh.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 143 and text == said


def test_a_run_without_interrupt_leaves_no_herald_behind():
    script = ("import os\nfrom bcp_hpc.cli.session import start_herald\n"
              "h = start_herald('')\npid = h._process.pid\nh.close()\n"
              "print(os.path.exists(f'/proc/{pid}'))\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "False\n" and r.stderr == "", r.stderr


def test_an_interrupt_while_the_command_line_is_read_is_one_line_too():
    script = ("import os, signal, bcp_hpc.cli.main as m\n"
              "build = m.build_parser\n"
              "def interrupted_build():\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n"
              "    return build()\n"
              "m.build_parser = interrupted_build\n"
              "m.main(['plan'])\n"
              "print('not reached')\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 130 and r.stdout == ""
    assert r.stderr == "[bcp-hpc] interrupted (SIGINT): stopping\n", r.stderr
