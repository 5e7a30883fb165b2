# shellcheck shell=sh
# A job of p's, as Slurm runs it: the shared functions above, then this.
# batch.sh JOB TIMEOUT TTY [NAME=VALUE...]: a Slurm worker's job, as Slurm runs it on a
# compute node, in the job's work dir (sbatch --chdir), with the user's own environment
# and nothing of the login node's (--export=NONE). It does what an SSH worker's runner
# does (see launch.sh) with Slurm as the queue: reads the job's secrets and removes their
# file before anything runs, runs the command (in JOB/cmd) in the user's login shell
# under its time limit, and records its end in JOB, so that no accounting is needed.
# Slurm ends a job with TERM to each of its processes, this one too: a cancel (p stop
# marks it first; a cancel by hand is a stop too) or Slurm's own time limit, which is
# never shorter than TIMEOUT, so a TERM once TIMEOUT seconds have passed is a timeout.
job=$1 timeout=$2 tty=$3
shift 3
# (removed while it waited in Slurm's queue: nothing to run)
[ -f "$job/cmd" ] || exit 0
if [ -f "$job/secrets" ]; then
  # shellcheck disable=SC1091 # "export NAME='value'" lines, quoted by the client
  . "$job/secrets"
  rm -f "$job/secrets"
fi
export P_JOB_ID="${job##*/}"
termed=
trap 'termed=yes' TERM
started=$(date +%s)
printf '%s\n' "$started" >"$job/started_at"
login_shell
# shellcheck disable=SC2154 # set by login_shell
run_job "$job" "$timeout" "$login_shell" "$(cat "$job/cmd")" "$tty" "$@"
# shellcheck disable=SC2154 # set by run_job
code=$run_code
# Slurm's TERM reaches every process of the job, this one too, but maybe a moment after the
# job: one that a signal ended gives it half a second to arrive
n=0
while [ "$code" -gt 128 ] && [ -z "$termed" ] && [ "$n" -lt 10 ]; do
  sleep 0.05
  n=$((n + 1))
done
if [ -n "$termed" ] && [ ! -f "$job/timedout" ]; then
  if [ "$timeout" != - ] && [ $(($(date +%s) - started)) -ge "$timeout" ]; then
    : >"$job/timedout"
    code=124
  else
    : >"$job/stopped"
  fi
fi
end_job "$job" "$code"
# (Slurm's own word on the job, which its dependencies go by, is the job's exit status)
exit "$code"
