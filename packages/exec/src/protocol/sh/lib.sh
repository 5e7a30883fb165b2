# shellcheck shell=sh
# Functions shared by p's worker-side scripts, read before each of them (and by a job's
# runner, and by a Slurm job's batch script). Functions and the texts of the processes a
# job starts as: nothing here runs by itself or exits, so one operation can call several.
# The layout variables (P_JOBS, P_LOCK, ...) are set first; see layout.ts.

# abs PATH: sets abs to PATH made absolute (relative paths are the home's: where each
# script starts)
# shellcheck disable=SC2034 # abs is for the caller
abs() {
  case $1 in
    /*) abs=$1 ;;
    *) abs=$PWD/$1 ;;
  esac
}

# rm_tree PATH...: remove each PATH whole, as rm -rf does, even where a job made
# directories in it read-only (Go's module cache, for one, or a build's outputs): those
# are made writable first, then removed
rm_tree() {
  rm -rf -- "$@" 2>/dev/null && return 0
  chmod -R u+w -- "$@" 2>/dev/null
  rm -rf -- "$@"
}

# alive PID: the process exists and is not a zombie (an init that reaps slowly leaves those)
# (read from /proc where there is one: no fork, for the queue's dispatch that asks often)
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  if [ -r "/proc/$1/stat" ]; then
    # "<pid> (<name>) <state> ...", and a name may hold anything
    read -r alive_stat 2>/dev/null <"/proc/$1/stat" || return 1
    alive_stat=${alive_stat##*) }
    [ "${alive_stat%% *}" != Z ]
  else
    ! ps -o stat= -p "$1" 2>/dev/null | grep -q '^Z'
  fi
}

# proc_start PID: sets proc_start to when the process started (clock ticks since boot,
# field 22 of /proc/PID/stat), proc_parent to its parent's pid (field 4) and proc_state
# to its state (field 3: Z for a zombie), or all empty where there is no /proc
proc_start() {
  proc_start='' proc_parent='' proc_state=''
  read -r proc_stat 2>/dev/null <"/proc/$1/stat" || return 0
  # shellcheck disable=SC2086 # the fields after the name, one word each
  set -- ${proc_stat##*) }
  proc_state=$1 proc_parent=${2:-}
  [ $# -lt 20 ] || proc_start=${20}
}

# runner_alive DIR: the job's runner runs. Its runner file names its pid and, on a second
# line, when it started: pids are reused (a busy machine wraps through 32768 of them in
# minutes), and another process with the same pid is not the runner. Sets runner_pid.
runner_alive() {
  runner_pid='' runner_start=''
  { read -r runner_pid && read -r runner_start; } 2>/dev/null <"$1/runner"
  [ -n "$runner_pid" ] && kill -0 "$runner_pid" 2>/dev/null || return 1
  # (its stat read once: the shell reads it a byte at a time, and each read makes it anew,
  # under the queue's lock for every job that runs)
  proc_start "$runner_pid"
  [ -n "$proc_state" ] || {
    alive "$runner_pid"
    return
  }
  [ "$proc_state" != Z ] && { [ -z "$runner_start" ] || [ -z "$proc_start" ] || [ "$proc_start" = "$runner_start" ]; }
}

# runner_live DIR: the job's runner runs, or is still starting: its launch made the job
# moments ago (within a minute, or it is the job the running launch made: launching)
# and the runner has not yet said its pid
runner_live() {
  if [ -f "$1/runner" ]; then
    runner_alive "$1"
  elif [ "${1##*/}" = "${launching:-}" ]; then
    [ -f "$1/needs" ]
  else
    [ -f "$1/needs" ] && [ -z "$(find "$1/needs" -mmin +1 2>/dev/null)" ]
  fi
}

# login_shell: sets login_shell to the user's login shell, which runs the command, if it is one that takes
# sh's -l -c (else /bin/sh)
# shellcheck disable=SC2034 # login_shell is for the caller (set, not printed: no fork)
login_shell() {
  case "${SHELL##*/}" in
    bash | zsh | ksh | mksh | dash | sh | ash | yash) login_shell=$SHELL ;;
    *) login_shell=/bin/sh ;;
  esac
}

# job_exec DIR SHELL COMMAND TTY [NAME=VALUE...]: become the job (run in a subshell of the
# runner, which waits for it): its pid first, then, in a session of its own (setsid, with
# no fork: a subshell is no group leader), the command in the user's login shell, under a
# pseudo-terminal of the client's size with TTY. (A subshell rather than a shell of its
# own: one program fewer as each job starts.)
job_exec() {
  job=$1 shell=$2 command=$3 tty=$4
  shift 4
  # its own pid, read by the subshell itself (its $$ is the runner's); where there is no
  # /proc, its child's parent. Written, then renamed: no reader ever finds it empty.
  read -r job_pid _ 2>/dev/null </proc/self/stat || job_pid=$(exec sh -c 'echo $PPID')
  printf '%s\n' "$job_pid" >"$job/.pid.tmp" && mv -f "$job/.pid.tmp" "$job/pid"
  exec >>"$job/output.log" 2>&1
  if [ "$tty" = - ]; then
    # exported here rather than by env, one program fewer before the job starts; the
    # shell and the command wait at the end of the arguments, where no NAME=VALUE of the
    # job can overwrite them
    set -- "$@" "$shell" "$command"
    while [ $# -gt 2 ]; do
      # shellcheck disable=SC2163 # each is NAME=VALUE
      export "$1"
      shift
    done
    exec setsid "$1" -l -c "$2"
  fi
  # script runs its -c text in $SHELL; the command and its shell travel in the environment
  # shellcheck disable=SC2016 # the text is for script's shell to expand
  exec setsid env "$@" P_TTY_SIZE="$tty" P_SHELL="$shell" P_COMMAND="$command" SHELL=/bin/sh script -qefc '
    stty cols "${P_TTY_SIZE%x*}" rows "${P_TTY_SIZE#*x}" 2>/dev/null
    shell=$P_SHELL command=$P_COMMAND
    unset P_TTY_SIZE P_SHELL P_COMMAND
    exec "$shell" -l -c "$command"' /dev/null
}

# the time limit: TIMEOUT seconds, then the job's group gets TERM, marked first (as a stop
# is) and unmarked if nothing was left to signal; KILL 10 s later. It runs in a session of
# its own, so the runner ends it, whichever sleep it is in, with one KILL to its group: a
# signal a shell could catch might reach a sleep it has just forked before that sleep can
# take it, and be lost.
# shellcheck disable=SC2016 # the timer's text is for the timer's shell to expand
P_TIMER_TEXT='
  job=$1 timeout=$2
  sleep "$timeout"
  { read -r pid && [ -n "$pid" ]; } 2>/dev/null <"$job/pid" || exit 0
  : >"$job/timedout"
  if ! kill -TERM -"$pid" 2>/dev/null && ! kill -TERM "$pid" 2>/dev/null; then
    rm -f "$job/timedout"
    exit 0
  fi
  sleep 10
  kill -KILL -"$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
'

# run_job DIR TIMEOUT SHELL COMMAND TTY [NAME=VALUE...]: run the job (job_exec) in a
# session of its own, in the foreground, under its time limit (TIMEOUT seconds, or -);
# sets run_code to its exit status, 124 if its time limit ended it
run_job() {
  run_dir=$1 run_timeout=$2
  shift 2
  run_timer=
  if [ "$run_timeout" != - ]; then
    # (a background child is no group leader, so setsid makes the session without a fork)
    setsid sh -c "$P_TIMER_TEXT" p-timer "$run_dir" "$run_timeout" </dev/null >/dev/null 2>&1 7>&- &
    run_timer=$!
  fi
  job_input "$run_dir"
  # (fd 7: the runner's lock, which only the runner holds)
  (job_exec "$run_dir" "$@") <"$job_input" 7>&-
  run_code=$?
  # (waited for, so that a limit passing just as the job ended is settled either way)
  if [ -n "$run_timer" ]; then
    { kill -KILL -"$run_timer" 2>/dev/null || kill -KILL "$run_timer"; wait "$run_timer"; } 2>/dev/null
  fi
  # shellcheck disable=SC2034 # run_code is for the caller
  [ ! -f "$run_dir/timedout" ] || run_code=124
}

# job_input DIR: sets job_input to what the job reads on its stdin. Where the client passes
# its own (a followed job whose client's stdin is a pipe or a file), the launch made the
# fifo DIR/stdin, and input.sh writes the client's stdin into it, having said so first
# (DIR/stdin.on): the job reads the fifo once that is said, which it waits 10 s for, then
# goes without (as every other job does: /dev/null).
# shellcheck disable=SC2034 # job_input is for the caller
job_input() {
  job_input=/dev/null
  [ -p "$1/stdin" ] || return 0
  input_n=0
  while [ ! -f "$1/stdin.on" ] && [ "$input_n" -lt 500 ]; do
    sleep 0.02
    input_n=$((input_n + 1))
  done
  if [ -f "$1/stdin.on" ]; then
    job_input=$1/stdin
  else
    release_input "$1"
  fi
}

# release_input DIR: the job will never read its input fifo (see job_input): a writer still
# waiting to open it goes on, to find no reader (and end), and a job yet to open it finds
# it empty
release_input() {
  [ -p "$1/stdin" ] || return 0
  exec 9<>"$1/stdin"
  : >"$1/.stdin.tmp" && mv -f "$1/.stdin.tmp" "$1/stdin"
  exec 9<&-
}

# end_job DIR CODE [SINCE]: record that the job ended with CODE (- if it never ran):
# ended_at (read only once exitcode says the job has ended), then exitcode, which appears
# whole. SINCE is the boot clock's seconds (/proc/uptime) as the job started: ended_at is
# then its started_at plus the seconds since, with no fork (a queue's next job waits for
# this), where both can be read; else date's.
end_job() {
  end_at=
  if [ -n "${3:-}" ] && read -r end_began 2>/dev/null <"$1/started_at" &&
    read -r end_up _ 2>/dev/null </proc/uptime; then
    case $end_began in
      '' | *[!0-9]*) ;;
      *) end_at=$((end_began + ${end_up%.*} - ${3%.*})) ;;
    esac
  fi
  [ -n "$end_at" ] || end_at=$(date +%s)
  printf '%s\n' "$end_at" >"$1/ended_at"
  printf '%s\n' "$2" >"$1/.exitcode.tmp" && mv -f "$1/.exitcode.tmp" "$1/exitcode"
}

# group_alive PGID: a process of the group exists and is not a zombie
group_alive() {
  ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# put DIR NAME VALUE: write a job file, one line, so that it appears whole (write, then rename)
put() {
  printf '%s\n' "$3" >"$1/.$2.tmp" && mv -f "$1/.$2.tmp" "$1/$2"
}

# end_mark DIR: sets end_mark to how a job that has ended was ended: stopped (by stop),
# timeout (by its time limit), skipped (never run: a job it runs after did not succeed)
# or - (by itself). (Set, not printed: no subshell.)
end_mark() {
  if [ -f "$1/skipped" ]; then
    end_mark=skipped
  elif [ -f "$1/stopped" ]; then
    end_mark=stopped
  elif [ -f "$1/timedout" ]; then
    end_mark=timeout
  else
    end_mark=-
  fi
}

# file_line FILE DEFAULT: sets file_line to FILE's first line, or DEFAULT where there is
# none (no file, or an empty one), with no process started
file_line() {
  file_line=
  { IFS= read -r file_line; } 2>/dev/null <"$1"
  [ -n "$file_line" ] || file_line=$2
}

# job_state DIR: one line, "<id> running [<started_at>]", "<id> queued <why>", "<id> lost"
# (gone without an exit code), "<id> gone" (no such job) or "<id> exited <code|-> <ended_at|->
# <stopped|timeout|skipped|-> <started_at|->" (- for the code of a job that never ran, and
# for when it began to run). (started_at is written as it is: read while it is being
# written, it is empty, and so not known yet.)
job_state() {
  state_dir=$1
  state_id=${state_dir##*/}
  if [ ! -d "$state_dir" ]; then
    echo "$state_id gone"
  elif [ -f "$state_dir/exitcode" ]; then
    file_line "$state_dir/started_at" -
    state_began=$file_line
    file_line "$state_dir/ended_at" -
    state_ended=$file_line
    file_line "$state_dir/exitcode" -
    end_mark "$state_dir"
    echo "$state_id exited $file_line $state_ended $end_mark $state_began"
  elif [ -f "$state_dir/slurm" ]; then
    slurm_job_state "$state_dir"
  elif runner_live "$state_dir"; then
    if queue_waiting "$state_dir"; then
      state_why=-
      [ -f "$state_dir/waiting" ] && read -r state_why <"$state_dir/waiting"
      echo "$state_id queued $state_why"
    else
      file_line "$state_dir/started_at" ''
      echo "$state_id running${file_line:+ $file_line}"
    fi
  else
    echo "$state_id lost"
  fi
}

# stop_job DIR GRACE_TENTHS: TERM the job's whole process group, KILL it after the grace.
# Returns 0 if it stopped the job, 1 if the job had ended by itself (before or while
# being stopped: its own exit code stands), 2 if there is no such job.
stop_job() {
  stop_dir=$1
  [ -d "$stop_dir" ] || return 2
  [ -f "$stop_dir/exitcode" ] && return 1
  if [ -f "$stop_dir/slurm" ]; then
    slurm_stop "$stop_dir" "$2"
    return
  fi
  # a job still in the queue leaves it, and never runs
  queue_waiting "$stop_dir" && queue_locked queue_cancel "$stop_dir" && return 0
  # the pid file appears a moment after the launch (see job_exec)
  stop_n=0
  while [ ! -f "$stop_dir/pid" ] && [ "$stop_n" -lt 50 ]; do
    sleep 0.1
    stop_n=$((stop_n + 1))
  done
  stop_pid=
  read -r stop_pid 2>/dev/null <"$stop_dir/pid"
  # marked first, so that no reader sees the exit code the TERM causes without the mark
  : >"$stop_dir/stopped"
  if [ -n "$stop_pid" ]; then
    # a job not yet in its own group (setsid still to come) is ended by its pid
    if ! kill -TERM -"$stop_pid" 2>/dev/null && ! kill -TERM "$stop_pid" 2>/dev/null; then
      # nothing left to signal: the job ended by itself just now
      rm -f "$stop_dir/stopped"
      wait_exit "$stop_dir"
      return 1
    fi
    stop_n=0
    while { group_alive "$stop_pid" || alive "$stop_pid"; } && [ "$stop_n" -lt "$2" ]; do
      sleep 0.1
      stop_n=$((stop_n + 1))
    done
    kill -KILL -"$stop_pid" 2>/dev/null || kill -KILL "$stop_pid" 2>/dev/null
  fi
  wait_exit "$stop_dir"
  return 0
}

# wait_exit DIR: give the runner two seconds to record the job's end
wait_exit() {
  wait_n=0
  while [ ! -f "$1/exitcode" ] && [ "$wait_n" -lt 20 ]; do
    sleep 0.1
    wait_n=$((wait_n + 1))
  done
}

# follow_job DIR OFFSET FOLLOW [locked]: print the job's output from byte OFFSET; with
# FOLLOW=yes keep printing until the job ends (with "locked", the launch that made the
# job holds its runner's lock open as fd 8: see launch.sh). Then the status line on stderr:
# "p-status <exit code|unknown> <ended_at|-> <stopped|timeout|-> <started_at|-> <log size>"
# (started_at: when it began to run, if it ran). The size lets the
# client see whether it has every byte: GNU tail --pid may quit with unread data when it
# lags behind a job that has ended, and the client then fetches the rest.
# When the client goes away (stdin closes), the tail is ended too. Returns 3 where the job
# is not on this worker, or was removed while followed.
follow_job() {
  follow_dir=$1
  follow_from=$(($2 + 1))
  [ -d "$follow_dir" ] || {
    echo "job ${follow_dir##*/} is not on this worker" >&2
    return 3
  }
  # the job is found: after a launch, this tells the client that the job has started
  echo p-follow >&2
  follow_runner=
  if [ "${4:-}" = locked ]; then
    follow_live=:
  elif [ -f "$follow_dir/slurm" ]; then
    # Slurm runs it: squeue says whether it may still run
    follow_live=slurm_live
  else
    # a runner still starting (a detached launch does not wait for it) says its pid soon
    follow_n=0
    while [ ! -f "$follow_dir/runner" ] && [ "$follow_n" -lt 100 ] && runner_live "$follow_dir"; do
      sleep 0.05
      follow_n=$((follow_n + 1))
    done
    follow_live=runner_alive
  fi
  if [ "$3" = yes ] && [ ! -f "$follow_dir/exitcode" ] && "$follow_live" "$follow_dir"; then
    # (its pid, as runner_alive just read it; none where the launch holds its lock)
    [ "$follow_live" != runner_alive ] || follow_runner=$runner_pid
    exec 3<&0
    # tail stops once this watcher (our own child, reaped at once) sees the job end. A
    # runner holds its runner file locked while it lives: then the watcher waits for the
    # lock, and is done the moment the runner is (having recorded the end, or killed).
    # Else (a Slurm job, or a runner that ended or locks nothing) it looks often in the
    # first second (most jobs p follows end soon), then every 0.1 s; asks further (ps or
    # squeue) only every 20 looks, to catch a runner that died and was never reaped, or a
    # Slurm job that ended without recording it.
    follow_locked=
    if [ "${4:-}" = locked ]; then
      follow_locked=yes
    # (command exec: a file gone meanwhile is no reason for this shell to exit)
    elif [ -n "$follow_runner" ] && { command exec 8<"$follow_dir/runner"; } 2>/dev/null; then
      flock -n -E 75 -s 8 2>/dev/null
      [ $? -ne 75 ] || follow_locked=yes
    fi
    if [ -n "$follow_locked" ]; then
      flock -s 8 </dev/null >/dev/null 2>&1 &
    else
      (
        n=0
        while [ ! -f "$follow_dir/exitcode" ]; do
          [ -z "$follow_runner" ] || kill -0 "$follow_runner" 2>/dev/null || break
          if [ "$n" -lt 50 ]; then sleep 0.02; else sleep 0.1; fi
          n=$((n + 1))
          [ $((n % 20)) -ne 0 ] || "$follow_live" "$follow_dir" || break
        done
      ) </dev/null >/dev/null 2>&1 &
    fi
    follow_watcher=$!
    exec 8<&-
    # (looking every 10 ms, as it looks for the watcher anyway, rather than with inotify,
    # whose instance takes the kernel 10 to 20 ms to let go of at exit: the end of every
    # followed job waited that long. GNU's and uutils' tail both take ---disable-inotify.)
    tail -c +"$follow_from" -s 0.01 ---disable-inotify --pid="$follow_watcher" -f "$follow_dir/output.log" &
    follow_tail=$!
    { cat >/dev/null; kill "$follow_tail" "$follow_watcher"; } <&3 >/dev/null 2>&1 &
    wait "$follow_tail" 2>/dev/null
  else
    tail -c +"$follow_from" "$follow_dir/output.log"
  fi
  # (an end only Slurm knows is written down first)
  if [ ! -f "$follow_dir/exitcode" ] && [ -f "$follow_dir/slurm" ]; then
    # shellcheck disable=SC2034 # (read by slurm_load)
    slurm_loaded=
    slurm_job_state "$follow_dir" >/dev/null
  fi
  file_line "$follow_dir/exitcode" unknown
  follow_code=$file_line
  file_line "$follow_dir/started_at" -
  follow_began=$file_line
  file_line "$follow_dir/ended_at" -
  end_mark "$follow_dir"
  follow_size=$(wc -c 2>/dev/null <"$follow_dir/output.log")
  # (removed meanwhile, p rm --force from elsewhere: what was read may be part of nothing)
  [ -d "$follow_dir" ] || return 3
  printf 'p-status %s %s %s %s %s\n' "$follow_code" "$file_line" "$end_mark" "$follow_began" "$follow_size" >&2
}

# sweep DAYS REMOVE: what no job owns, one "leftover <KiB> <path>" line each: work dirs a
# killed sync left half made, and job dirs a killed launch left half made or a killed
# removal half removed (untouched for an hour), and mirrors no sync has used for DAYS days
# (with all that shares their name), skipped while a sync holds them.
# With REMOVE=yes they are deleted.
sweep() {
  for sweep_part in "$P_WORKDIRS"/*"$P_PART" "$P_JOBS"/.*.new "$P_JOBS"/.*.gone; do
    [ -d "$sweep_part" ] || continue
    [ -n "$(find "$sweep_part" -maxdepth 0 -mmin +60)" ] || continue
    sweep_kib=$(du -sk "$sweep_part" | cut -f1)
    [ "$2" = yes ] && rm_tree "$sweep_part"
    echo "leftover $sweep_kib $sweep_part"
  done
  for sweep_lock in "$P_MIRRORS"/*"$P_LOCK"; do
    [ -f "$sweep_lock" ] || continue
    [ -n "$(find "$sweep_lock" -maxdepth 0 -mtime +"$1")" ] || continue
    sweep_mirror=${sweep_lock%"$P_LOCK"}
    (
      if command -v flock >/dev/null; then flock -n 9 || exit 0; fi
      sweep_kib=$(du -sk "$sweep_mirror" "$sweep_mirror".* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
      # (its mark first: a mirror half deleted must not pass for the one it was)
      [ "$2" = yes ] && rm -f "$sweep_mirror$P_TOKEN" && rm_tree "$sweep_mirror" "$sweep_mirror".*
      echo "leftover $sweep_kib $sweep_mirror"
    ) 9>>"$sweep_lock"
  done
}
