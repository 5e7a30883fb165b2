# shellcheck shell=sh
# probe.sh [slurm]: what the worker has, one "<name> <value>" line each; with slurm, also
# whether Slurm's tools are there and its controller answers (asked only then: squeue may
# take a while, and --any probes often)
what=${1:-}
have() {
  if command -v "$1" >/dev/null 2>&1; then echo "$1 yes"; else echo "$1 no"; fi
}
have rsync
have setsid
have flock
echo "cores $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo -)"
echo "mem_kib $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || echo -)"
# the GPUs' indexes, comma-separated, where nvidia-smi is
gpus=$(nvidia-smi -L 2>/dev/null | sed -n 's/^GPU \([0-9][0-9]*\):.*/\1/p' | paste -sd, -)
echo "gpus ${gpus:--}"
# how busy: the load, and p's jobs running or queued (the queue's entries)
echo "load1 $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -)"
set -- "$P_QUEUE"/*.*
if [ -e "$1" ]; then echo "active $#"; else echo "active 0"; fi
# who and where: a root given as /scratch/$USER/p is the worker's user's
echo "user $(id -un)"
echo "home $PWD"
# Slurm, where it is: its tools, and whether its controller answers
if [ "$what" = slurm ] && command -v sbatch >/dev/null 2>&1; then
  have squeue
  have scancel
  echo "slurm $(sbatch --version 2>/dev/null | awk '{ print $2 }')"
  if squeue -h -u "$(id -un)" -o %i >/dev/null 2>&1; then echo "slurm_answers yes"; else echo "slurm_answers no"; fi
fi
