# shellcheck shell=sh
# launch.sh MODE ID COMMAND CWD WORKER DIR TTY TIMEOUT CAPACITY NEEDS AFTER SECRETS BATCH INPUT [NAME=VALUE...]
# Records job ID and starts COMMAND for it, detached: the runner has a session of its own,
# so it outlives the SSH connection, and starts the job in another new session (so stop
# can signal the job's whole process group, and the runner survives that), waits, and
# records the job's own exit status. The job runs in DIR (an existing directory, relative
# to the home unless absolute) or, if DIR is empty, in its own work dir (made if a sync did
# not). TTY is - or COLSxROWS: the job's pseudo-terminal. TIMEOUT is - or the seconds after
# which the job's process group gets TERM (KILL 10 s later), and it ends with 124, as GNU
# timeout ends. The job waits in the worker's queue (see queue.sh) until it fits:
# CAPACITY is the worker's, "<slots|-> <gpu,list|->"; NEEDS the job's, "<1|all> <gpus>";
# AFTER is - or "<ok|any> <id>...", the jobs it runs after. It then gets P_SLOT and, with
# GPUs, CUDA_VISIBLE_DEVICES. NAME=VALUE pairs are set in its environment (before its
# login shell reads the profile, as ssh's SendEnv does). SECRETS is the number of bytes
# to read from stdin first: "export NAME='value'" lines (quoted by the client), which go
# into the job's environment and nowhere else: no argv, no file.
# BATCH is - or, on a Slurm worker, the sbatch options (one per line): the job is then
# submitted to Slurm, which is its queue and runs batch.sh (see slurm_submit), instead.
# INPUT is yes where the client passes its stdin to the job (see job_input), else -.
# MODE is detach (then print the job's state line) or follow (then say "p-queued <why>"
# on stderr if it waits, and stream its output, as follow.sh does). Either may be sent
# ahead (ahead-detach, ahead-follow), while the job's sync still runs: it then does
# nothing until the client says "go" on stdin (after the secrets), and nothing at all if
# stdin ends first (the sync failed or was cancelled).
# Nothing is started as an asynchronous list (cmd &): a non-interactive shell makes those
# ignore SIGINT and SIGQUIT, and a job could never undo that.
set -e
mode=$1 id=$2 command=$3 cwd=$4 worker=$5 dir=$6 tty=$7 timeout=$8 capacity=$9 needs=${10} after=${11}
secret_bytes=${12} batch=${13} input=${14}
shift 14
secrets=
[ "$secret_bytes" -eq 0 ] || secrets=$(head -c "$secret_bytes")
case $mode in
  ahead-*)
    mode=${mode#ahead-}
    IFS= read -r go || go=
    [ "$go" = go ] || exit 4
    ;;
esac
root=$PWD
abs "$P_JOBS"
# shellcheck disable=SC2154 # set by abs
jobs=$abs
job=$jobs/$id
# the job's files are written in a dir of their own (private: 700, as p's dirs are), which
# one rename makes the job's: they appear at once, all whole. The job keeps the umask ssh
# gives: this shell never changes it.
new=$jobs/.$id.new
if [ ! -d "$P_JOBS" ] || [ ! -d "$P_WORKDIRS" ]; then
  (umask 077 && mkdir -p "$P_JOBS" "$P_WORKDIRS")
fi
if [ -z "$dir" ]; then
  work=$P_WORKDIRS/$id
  # shellcheck disable=SC2174 # the parents exist: -m is for these two
  mkdir -p -m 700 "$work" "$new"
else
  work=$dir
  [ -d "$work" ] || {
    printf 'no directory %s on the worker\n' "$dir" >&2
    exit 2
  }
  mkdir -m 700 "$new"
fi
printf '%s' "$command" >"$new/cmd"
printf '%s' "$cwd" >"$new/cwd"
printf '%s' "$worker" >"$new/worker"
printf '%s\n' "$needs" >"$new/needs"
[ "$after" = - ] || printf '%s\n' "$after" >"$new/after"
: >"$new/output.log"
[ "$input" != yes ] || [ "$batch" != - ] || mkfifo -m 600 "$new/stdin"
mv "$new" "$job"
if [ "$batch" != - ]; then
  set +e
  slurm_submit "$job" "$work" "$timeout" "$tty" "$after" "$batch" "$@" || {
    status=$?
    rm -rf "$job"
    exit "$status"
  }
  if [ "$mode" != follow ]; then
    job_state "$job"
    exit 0
  fi
  # followed: Slurm's id for it; a job Slurm starts at its next scheduling pass is not
  # said to wait
  read -r sid <"$job/slurm"
  [ "$sid" = - ] || printf 'p-slurm %s\n' "$sid" >&2
  n=0
  while [ ! -f "$job/started_at" ] && [ ! -f "$job/exitcode" ] && [ "$n" -lt 10 ]; do
    sleep 0.1
    n=$((n + 1))
  done
  state=$(job_state "$job")
  case $state in
    *" queued "*) printf 'p-queued %s\n' "${state#* queued }" >&2 ;;
  esac
  follow_job "$job" 0 yes
  exit
fi
eval "$secrets"
unset secrets
command -v setsid >/dev/null || {
  echo "setsid not found on the worker: install util-linux" >&2
  exit 127
}
if [ "$tty" != - ] && ! command -v script >/dev/null; then
  echo "script not found on the worker, which -t needs: install util-linux (bsdutils)" >&2
  exit 127
fi
login_shell
# shellcheck disable=SC2154 # set by login_shell
shell=$login_shell
cd "$work"

# the runner: records its pid, waits for the job in the foreground, records how it ended
# (what its shell says of a job a signal ended goes nowhere: the job's output is the job's)
# shellcheck disable=SC2016 # the runner's text is for the runner's shell to expand
runner_text='
  job=$1 timeout=$2 root=$3 P_ROOT=$4
  # its turn: a dispatch grants it a place and wakes it (USR1, taken from before anyone
  # knows its pid until it ends). The first job waiting also dispatches each second, for
  # a job killed with its runner, whose place nothing else frees. The wake ends the nap
  # itself: a signal handled after "woke" was looked at and before wait began would
  # otherwise leave the job asleep for the whole nap.
  woke= nap=
  trap "woke=1; [ -z \"\$nap\" ] || kill \"\$nap\" 2>/dev/null" USR1
  eval "$5"
  shift 5
  # its pid, and when it started: by the time it is read, the pid may name another process.
  # The file is locked while the runner lives (locked before it appears under its name),
  # so that a follower waits for the end on the lock, with no polling; nothing the runner
  # starts inherits the lock.
  # (the launch opened and locked it as fd 7, which the runner inherits)
  proc_start $$
  printf "%s\n%s\n" "$$" "$proc_start" >&7 && mv -f "$job/.runner.tmp" "$job/runner"
  work=$PWD
  cd "$root"
  while [ ! -f "$job/granted" ] && [ ! -f "$job/exitcode" ]; do
    # a job removed while it waited (its dir is gone) never runs
    [ -d "$job" ] || exit 0
    if queue_first_waiting "$job"; then first=yes nap_s=1; else first=no nap_s=5; fi
    sleep "$nap_s" &
    nap=$!
    if [ -n "$woke" ]; then kill "$nap" 2>/dev/null; fi
    wait "$nap"
    nap= woke=
    # (not when woken by its grant: the job starts at once)
    [ "$first" = no ] || [ -f "$job/granted" ] || queue_locked queue_dispatch
  done
  cd "$work"
  # stopped or skipped while it waited (its input, if any, is never read)
  [ ! -f "$job/exitcode" ] || {
    release_input "$job"
    exit 0
  }
  # (written in one go, but it may be caught between its creation and that write)
  until read -r slot gpus <"$job/granted" && [ -n "$gpus" ]; do sleep 0.01; done
  # (read by no one before the job ends: written as it is, and beside the start of the job;
  # its end is counted from it on the boot clock, see end_job)
  read -r began _ 2>/dev/null </proc/uptime || began=
  date +%s >"$job/started_at" 7>&- &
  set -- "$@" P_SLOT="$slot"
  [ "$gpus" = - ] || set -- "$@" CUDA_VISIBLE_DEVICES="$gpus"
  run_job "$job" "$timeout" "$@"
  end_job "$job" "$run_code" "$began"
  exec 7>&-
  # its place is free
  cd "$root" && queue_locked queue_dispatch
'
set -- "$job" "$timeout" "$root" "$P_ROOT" "$P_LIB" "$shell" "$command" "$tty" "$@"
export P_JOB_ID="$id"
# the runner's lock, taken here and handed to it as fd 7: held from before the runner
# starts until it ends, so that a follow (fd 8, opened here) waits on it at once
exec 7>"$job/.runner.tmp"
runner_lock=
if flock 7 2>/dev/null; then
  runner_lock=locked
  [ "$mode" != follow ] || exec 8<"$job/.runner.tmp"
fi
if ! setsid -f sh -c "$runner_text" p-runner "$@" </dev/null >/dev/null 2>&1 8<&-; then
  # a setsid without -f (util-linux before 2.30): the job then starts ignoring SIGINT
  setsid sh -c "$runner_text" p-runner "$@" </dev/null >/dev/null 2>&1 8<&- &
fi
exec 7>&-
# in the queue, while the runner starts: it starts now if it fits
cd "$root"
# shellcheck disable=SC2034 # (read by runner_live: this job's runner is starting)
launching=$id
queue_locked queue_enqueue "$job" "$capacity"
set +e
# detached: the job's state (running, or queued and why), the runner still starting
if [ "$mode" != follow ]; then
  if [ -f "$job/runner" ] || [ -f "$job/exitcode" ]; then
    job_state "$job"
  elif queue_waiting "$job" && read -r why 2>/dev/null <"$job/waiting"; then
    echo "$id queued $why"
  else
    echo "$id running"
  fi
  exit 0
fi
# followed: on the runner's lock (fd 8), while the runner may still be starting
if queue_waiting "$job" && read -r why 2>/dev/null <"$job/waiting"; then
  printf 'p-queued %s\n' "$why" >&2
fi
follow_job "$job" 0 yes $runner_lock
