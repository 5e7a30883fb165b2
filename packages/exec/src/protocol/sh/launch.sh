# shellcheck shell=sh
# launch.sh MODE ID COMMAND CWD WORKER DIR TTY TIMEOUT CAPACITY NEEDS AFTER SECRETS [NAME=VALUE...]
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
# MODE is detach (then print the job's state line) or follow (then say "p-queued <why>"
# on stderr if it waits, and stream its output, as follow.sh does).
# Nothing is started as an asynchronous list (cmd &): a non-interactive shell makes those
# ignore SIGINT and SIGQUIT, and a job could never undo that.
set -e
mode=$1 id=$2 command=$3 cwd=$4 worker=$5 dir=$6 tty=$7 timeout=$8 capacity=$9 needs=${10} after=${11}
secret_bytes=${12}
shift 12
if [ "$secret_bytes" -gt 0 ]; then
  secrets=$(head -c "$secret_bytes")
  eval "$secrets"
  unset secrets
fi
root=$PWD
job=$PWD/$P_JOBS/$id
# the job's files are written in a dir of their own (private: 700, as p's dirs are), which
# one rename makes the job's: they appear at once, all whole. The job keeps the umask ssh
# gives: this shell never changes it.
new=$PWD/$P_JOBS/.$id.new
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
mv "$new" "$job"
command -v setsid >/dev/null || {
  echo "setsid not found on the worker: install util-linux" >&2
  exit 127
}
if [ "$tty" != - ] && ! command -v script >/dev/null; then
  echo "script not found on the worker, which -t needs: install util-linux (bsdutils)" >&2
  exit 127
fi
# the user's login shell runs the command, if it is one that takes sh's -l -c
case "${SHELL##*/}" in
  bash | zsh | ksh | mksh | dash | sh | ash | yash) shell=$SHELL ;;
  *) shell=/bin/sh ;;
esac
cd "$work"

# the job itself: its pid (its process group and session) first, then the command, in
# the user's login shell, under a pseudo-terminal of the client's size with TTY
# shellcheck disable=SC2016 # the job's text is for the job's own shell to expand
job_text='
  job=$1 shell=$2 command=$3 tty=$4
  shift 4
  printf "%s\n" "$$" >"$job/.pid.tmp" && mv -f "$job/.pid.tmp" "$job/pid"
  exec >>"$job/output.log" 2>&1
  [ "$tty" = - ] && exec env "$@" "$shell" -l -c "$command"
  # script runs its -c text in $SHELL; the command and its shell travel in the environment
  exec env "$@" P_TTY_SIZE="$tty" P_SHELL="$shell" P_COMMAND="$command" SHELL=/bin/sh script -qefc "
    stty cols \"\${P_TTY_SIZE%x*}\" rows \"\${P_TTY_SIZE#*x}\" 2>/dev/null
    shell=\$P_SHELL command=\$P_COMMAND
    unset P_TTY_SIZE P_SHELL P_COMMAND
    exec \"\$shell\" -l -c \"\$command\"" /dev/null
'
# the time limit: TIMEOUT seconds, then the job's group gets TERM, marked first (as a stop
# is) and unmarked if nothing was left to signal; KILL 10 s later. It runs in a session of
# its own, so the runner ends it, whichever sleep it is in, with one KILL to its group: a
# signal a shell could catch might reach a sleep it has just forked before that sleep can
# take it, and be lost.
# shellcheck disable=SC2016 # the timer's text is for the timer's shell to expand
timer_text='
  job=$1 timeout=$2
  sleep "$timeout"
  pid=$(cat "$job/pid" 2>/dev/null) || exit 0
  : >"$job/timedout"
  if ! kill -TERM -"$pid" 2>/dev/null && ! kill -TERM "$pid" 2>/dev/null; then
    rm -f "$job/timedout"
    exit 0
  fi
  sleep 10
  kill -KILL -"$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
'
# the runner: records its pid, waits for the job in the foreground, records how it ended
# (what its shell says of a job a signal ended goes nowhere: the job's output is the job's)
# shellcheck disable=SC2016 # the runner's text is for the runner's shell to expand
runner_text='
  job=$1 timeout=$2 timer_text=$3 root=$4
  # its turn: a dispatch grants it a place and wakes it (USR1, taken from before anyone
  # knows its pid until it ends). The first job waiting also dispatches each second, for
  # a job killed with its runner, whose place nothing else frees.
  woke=
  trap "woke=1" USR1
  eval "$5"
  shift 5
  # its pid, and when it started: by the time it is read, the pid may name another process
  proc_start $$
  printf "%s\n%s\n" "$$" "$proc_start" >"$job/.runner.tmp" && mv -f "$job/.runner.tmp" "$job/runner"
  work=$PWD
  cd "$root"
  while [ ! -f "$job/granted" ] && [ ! -f "$job/exitcode" ]; do
    # a job removed while it waited (its dir is gone) never runs
    [ -d "$job" ] || exit 0
    if queue_first_waiting "$job"; then first=yes nap_s=1; else first=no nap_s=5; fi
    sleep "$nap_s" &
    nap=$!
    [ -n "$woke" ] || wait "$nap"
    woke=
    # (not when woken by its grant: the job starts at once)
    [ "$first" = no ] || [ -f "$job/granted" ] || queue_locked queue_dispatch
  done
  [ -z "${nap:-}" ] || kill "$nap" 2>/dev/null
  cd "$work"
  # stopped or skipped while it waited
  [ ! -f "$job/exitcode" ] || exit 0
  # (written in one go, but it may be caught between its creation and that write)
  until read -r slot gpus <"$job/granted" && [ -n "$gpus" ]; do sleep 0.01; done
  # (read by no one before the job ends: written as it is, and beside the start of the job)
  date +%s >"$job/started_at" &
  set -- "$@" P_SLOT="$slot"
  [ "$gpus" = - ] || set -- "$@" CUDA_VISIBLE_DEVICES="$gpus"
  timer=
  if [ "$timeout" != - ]; then
    # (a background child is no group leader, so setsid makes the session without a fork)
    setsid sh -c "$timer_text" p-timer "$job" "$timeout" </dev/null >/dev/null 2>&1 &
    timer=$!
  fi
  setsid -w sh -c "$@" </dev/null
  code=$?
  # (waited for, so that a limit passing just as the job ended is settled either way)
  [ -z "$timer" ] || { kill -KILL -"$timer" 2>/dev/null || kill -KILL "$timer"; wait "$timer"; } 2>/dev/null
  [ -f "$job/timedout" ] && code=124
  # (read only once exitcode, which appears whole, says the job has ended)
  date +%s >"$job/ended_at"
  printf "%s\n" "$code" >"$job/.exitcode.tmp" && mv -f "$job/.exitcode.tmp" "$job/exitcode"
  # its place is free
  cd "$root" && queue_locked queue_dispatch
'
set -- "$job" "$timeout" "$timer_text" "$root" "$P_LIB" "$job_text" p-job "$job" "$shell" "$command" "$tty" "$@"
export P_JOB_ID="$id"
if ! setsid -f sh -c "$runner_text" p-runner "$@" </dev/null >/dev/null 2>&1; then
  # a setsid without -f (util-linux before 2.30): the job then starts ignoring SIGINT
  setsid sh -c "$runner_text" p-runner "$@" </dev/null >/dev/null 2>&1 &
fi
# in the queue, while the runner starts: it starts now if it fits
cd "$root"
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
# followed: the runner says it runs before the follow looks for it
n=0
while [ ! -f "$job/runner" ] && [ "$n" -lt 1000 ]; do
  sleep 0.01
  n=$((n + 1))
done
if queue_waiting "$job" && read -r why 2>/dev/null <"$job/waiting"; then
  printf 'p-queued %s\n' "$why" >&2
fi
follow_job "$job" 0 yes
