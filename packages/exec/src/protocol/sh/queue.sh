# shellcheck shell=sh
# The queue: capacity, first come first served, with no agent on the worker. Functions
# only, read before each script (and by a job's runner, which waits in the queue).
#
# Every job has an entry $P_QUEUE/<ticket>.<id> (tickets in the order the jobs came) from
# its launch until a dispatch sees it has ended. A job waits in its runner until a
# dispatch grants it a place: the file "granted" in its job dir, "<slot> <gpus|->", or
# "skip" (a job it runs after did not succeed). Whatever frees a place dispatches: a
# launch, a job's end, a stop; a waiting runner also dispatches now and then, for a job
# that was killed with its runner (nothing else says it has gone).
#
# Job files: "needs" ("<1|all> <gpus>": one slot, or the whole worker with --exclusive;
# the number of GPUs), "after" ("<ok|any> <id>...", or none), "waiting" (why it waits).
# $P_QUEUE/capacity is "<slots|-> <gpu,list|->" as the last launch gave it.

# queue_locked COMMAND...: run a command of these functions under the queue's lock
# (in this shell, not a subshell: a fork saved; closing fd 9 lets the lock go, and nothing
# started meanwhile holds it)
queue_locked() {
  [ -d "$P_QUEUE" ] || mkdir -p "$P_QUEUE"
  case $- in *e*) queue_errexit=yes && set +e ;; *) queue_errexit='' ;; esac
  exec 9>>"$P_QUEUE/lock"
  if flock 9; then
    "$@"
    queue_status=$?
  else
    queue_status=1
  fi
  exec 9>&-
  # the entries a dispatch found done with go once the lock has: an rm is a process, and
  # under the lock every other job's start would wait for it (an entry seen again before
  # it goes is found done again)
  if [ -n "${q_drop:-}" ]; then
    set --
    for q_name in $q_drop; do set -- "$@" "$P_QUEUE/$q_name"; done
    q_drop=
    rm -f "$@"
  fi
  [ -z "$queue_errexit" ] || set -e
  return "$queue_status"
}

# queue_enqueue DIR CAPACITY: give the job an entry after every other (under the lock)
queue_enqueue() {
  queue_was=
  [ -f "$P_QUEUE/capacity" ] && read -r queue_was <"$P_QUEUE/capacity"
  if [ "$queue_was" != "$2" ]; then
    printf '%s\n' "$2" >"$P_QUEUE/.capacity.tmp" && mv -f "$P_QUEUE/.capacity.tmp" "$P_QUEUE/capacity"
  fi
  # tickets count up from 10^12, so that their names sort as their numbers do
  queue_seq=1000000000000
  [ -f "$P_QUEUE/seq" ] && read -r queue_seq <"$P_QUEUE/seq"
  queue_seq=$((queue_seq + 1))
  printf '%s\n' "$queue_seq" >"$P_QUEUE/seq"
  : >"$P_QUEUE/$queue_seq.${1##*/}"
  queue_dispatch
}

# queue_waiting DIR: the job is in the queue and has been granted nothing yet
queue_waiting() {
  [ -f "$1/needs" ] && [ ! -f "$1/granted" ] && [ ! -f "$1/exitcode" ]
}

# queue_cancel DIR: a waiting job ends as stopped, without running (under the lock).
# Fails if the job is not waiting.
queue_cancel() {
  queue_waiting "$1" || return 1
  : >"$1/stopped"
  queue_never_ran "$1"
  queue_dispatch
}

# queue_first_waiting DIR: no job waits before this one (no lock: a glance, which the
# next one corrects; a job not yet in the queue has none before it either)
queue_first_waiting() {
  for q_entry in "$P_QUEUE"/*.*; do
    [ -e "$q_entry" ] || continue
    q_dir=$P_JOBS/${q_entry##*.}
    if [ -f "$q_dir/granted" ] || [ -f "$q_dir/exitcode" ] || [ ! -d "$q_dir" ]; then continue; fi
    [ "${q_entry##*.}" = "${1##*/}" ]
    return
  done
  return 0
}

# queue_never_ran DIR: record the end of a job that never started ("-" for its exit code)
# and wake its runner, which then leaves
queue_never_ran() {
  end_job "$1" -
  queue_wake "$1"
}

queue_wake() {
  # shellcheck disable=SC2154 # runner_pid is set by runner_alive (lib.sh)
  runner_alive "$1" && kill -USR1 "$runner_pid" 2>/dev/null
  return 0
}

# queue_dispatch: grant what is free to the jobs waiting, in order (under the lock).
# A job that does not fit yet holds back what it waits for from the jobs after it, so a
# later job never overtakes one that fits, and an exclusive job is not starved.
queue_dispatch() {
  q_slots=- q_gpus=-
  [ -f "$P_QUEUE/capacity" ] && read -r q_slots q_gpus <"$P_QUEUE/capacity"
  # what the jobs that run hold; the entries of jobs that have ended go (a few file
  # tests per job: this runs often, and on some machines each is slow)
  q_used=0 q_taken=' ' q_taken_gpus=, q_closed='' q_running=0 q_waiting='' q_drop=''
  for q_entry in "$P_QUEUE"/*.*; do
    [ -e "$q_entry" ] || continue
    q_dir=$P_JOBS/${q_entry##*.}
    if [ -f "$q_dir/exitcode" ] || [ ! -d "$q_dir" ]; then
      # ended, or removed
      q_drop="$q_drop ${q_entry##*/}"
    elif [ ! -f "$q_dir/granted" ]; then
      q_waiting="$q_waiting $q_entry"
    elif q_gone "$q_dir"; then
      q_drop="$q_drop ${q_entry##*/}"
    else
      read -r q_slot q_held <"$q_dir/granted"
      read -r q_need _ <"$q_dir/needs"
      [ "$q_need" = all ] && q_closed=exclusive
      q_used=$((q_used + 1)) q_running=$((q_running + 1))
      q_taken="$q_taken$q_slot "
      q_take_gpus "$q_held"
    fi
  done
  # the jobs that wait, first come first served
  for q_entry in $q_waiting; do
    q_dir=$P_JOBS/${q_entry##*.}
    # once nothing more can start, only what runs after other jobs may change (be skipped)
    q_full=
    if [ -n "$q_closed" ] || { [ "$q_slots" != - ] && [ "$q_used" -ge "$q_slots" ]; }; then
      [ -f "$q_dir/after" ] || continue
      q_full=yes
    fi
    q_after "$q_dir"
    if [ "$q_dep" = failed ]; then
      : >"$q_dir/skipped"
      queue_never_ran "$q_dir"
      continue
    fi
    if [ -n "$q_dep" ]; then
      q_why "$q_dir" "after $q_dep"
      continue
    fi
    [ -z "$q_full" ] || continue
    read -r q_need q_ngpus <"$q_dir/needs"
    q_free_gpus
    if [ "$q_need" = all ] && [ "$q_running" -gt 0 ]; then
      q_why "$q_dir" exclusive
    elif [ "$q_ngpus" -gt "$q_nfree" ]; then
      q_why "$q_dir" gpu
    elif q_gone "$q_dir"; then
      # killed while it waited: it never runs
      q_drop="$q_drop ${q_entry##*/}"
      continue
    else
      # granted: the lowest slot number free, the first GPUs free
      q_slot=1
      while case $q_taken in *" $q_slot "*) true ;; *) false ;; esac; do q_slot=$((q_slot + 1)); done
      q_mine=-
      # shellcheck disable=SC2086 # the free GPUs, one word each
      [ "$q_ngpus" -eq 0 ] || q_mine=$(q_first "$q_ngpus" $q_free)
      # (one write: its reader waits for the whole line)
      printf '%s %s\n' "$q_slot" "$q_mine" >"$q_dir/granted"
      queue_wake "$q_dir"
      q_used=$((q_used + 1)) q_running=$((q_running + 1))
      q_taken="$q_taken$q_slot "
      q_take_gpus "$q_mine"
      [ "$q_need" = all ] && q_closed=exclusive
      continue
    fi
    # not yet: what it waits for is held back for it
    if [ "$q_need" = all ]; then
      q_closed=exclusive
    else
      q_used=$((q_used + 1))
      # shellcheck disable=SC2086 # the free GPUs, one word each
      [ "$q_ngpus" -eq 0 ] || q_take_gpus "$(q_first "$q_ngpus" $q_free)"
    fi
  done
  # why the rest wait, for status: said once, when a job first waits
  [ -n "$q_closed" ] || q_closed=slot
  for q_entry in $q_waiting; do
    q_dir=$P_JOBS/${q_entry##*.}
    [ -f "$q_dir/waiting" ] || [ -f "$q_dir/granted" ] || [ -f "$q_dir/exitcode" ] || q_why "$q_dir" "$q_closed"
  done
}

# q_gone DIR: the job's runner has died (see runner_live: one still starting has not)
q_gone() {
  if runner_live "$1"; then return 1; fi
}

# q_why DIR REASON: why the job waits, for status
q_why() {
  [ -f "$1/waiting" ] && read -r q_was <"$1/waiting" && [ "$q_was" = "$2" ] && return 0
  printf '%s\n' "$2" >"$1/.waiting.tmp" && mv -f "$1/.waiting.tmp" "$1/waiting"
}

# q_take_gpus LIST: GPUs of a comma-separated list (or -) are taken
q_take_gpus() {
  [ -n "$1" ] && [ "$1" != - ] || return 0
  q_taken_gpus="$q_taken_gpus$1,"
}

# q_free_gpus: q_free, the worker's GPUs not taken (space-separated), and q_nfree
q_free_gpus() {
  q_free='' q_nfree=0
  [ "$q_gpus" = - ] && return 0
  q_ifs=$IFS
  IFS=,
  for q_gpu in $q_gpus; do
    case $q_taken_gpus in *",$q_gpu,"*) continue ;; esac
    q_free="$q_free $q_gpu" q_nfree=$((q_nfree + 1))
  done
  IFS=$q_ifs
}

# q_first N WORD...: the first N words, comma-separated
q_first() {
  q_n=$1
  shift
  q_list=
  while [ "$q_n" -gt 0 ] && [ $# -gt 0 ]; do
    q_list="${q_list:+$q_list,}$1"
    q_n=$((q_n - 1))
    shift
  done
  printf '%s' "$q_list"
}

# q_after DIR: q_dep is empty if the jobs the job runs after have ended as it needs,
# "failed" if one did not succeed (with "ok"), else the short id of one still to end
q_after() {
  q_dep=
  [ -f "$1/after" ] || return 0
  read -r q_mode q_ids <"$1/after"
  for q_id in $q_ids; do
    q_of=$P_JOBS/$q_id
    if [ -f "$q_of/exitcode" ]; then
      read -r q_code <"$q_of/exitcode"
      [ "$q_mode" = any ] || [ "$q_code" = 0 ] || { q_dep=failed; return 0; }
    elif [ -d "$q_of" ] && runner_alive "$q_of"; then
      [ -n "$q_dep" ] || q_dep=$(printf '%.8s' "$q_id")
    elif [ "$q_mode" != any ]; then
      # gone, or lost with its runner: it did not succeed
      q_dep=failed
      return 0
    fi
  done
}
