"""After an interrupt, a rank other than 0 gives rank 0 time to report it (mpirun ends the job when the
first process exits): a further signal meanwhile ends it at once and silently, and without one it
returns after the grace period so that it reports the interrupt itself."""
import signal
import subprocess
import sys
import time

from bcp_hpc.cli.session import INTERRUPT_GRACE_S

# "waiting" is printed when the wait starts, i.e. after the handlers are in place
SCRIPT = """
import time
from bcp_hpc.cli.session import await_first_rank
real_sleep = time.sleep
def sleep(seconds):
    print("waiting", flush=True)
    real_sleep(seconds)
time.sleep = sleep
await_first_rank(143)
print("returned", flush=True)
"""


def test_a_further_signal_ends_the_waiting_rank_silently():
    p = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "waiting"
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 143 and time.time() - t0 < INTERRUPT_GRACE_S
    assert "returned" not in out and err == ""


def test_without_a_signal_the_rank_reports_after_the_grace_period():
    t0 = time.time()
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ["waiting", "returned"]
    assert time.time() - t0 >= INTERRUPT_GRACE_S
