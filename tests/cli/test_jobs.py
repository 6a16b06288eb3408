import glob
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(HERE)), "jobs", "*.slurm")))


def test_job_scripts_exist_and_parse():
    names = {os.path.basename(j) for j in JOBS}
    assert {"bench_operators.slurm", "p_inversion.slurm", "sigma2_sweep.slurm", "forward.slurm",
            "bench_pmodel.slurm", "joint_inversion.slurm"} <= names
    for j in JOBS:
        r = subprocess.run(["bash", "-n", j], capture_output=True, text=True)
        assert r.returncode == 0, (j, r.stderr)
        text = open(j).read()
        assert "#SBATCH --ntasks" in text and "bcp-hpc" in text
