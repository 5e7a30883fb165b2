# shellcheck shell=sh
# A Slurm worker's side of the job functions (functions only; see lib.sh). Its jobs have
# the same job dirs as any (their batch script, batch.sh, records their end there) plus
# a file slurm: Slurm's job id ("-" while the submission is under way). Slurm is asked
# once per operation: squeue, for the user's jobs, pending, running or recently ended.
# After Slurm has forgotten a job, the job dir's own files are the truth; what only Slurm
# knew (a job cancelled before it ran, or killed with its batch script) is written there
# as soon as an operation sees it (slurm_settle).

# slurm_submit DIR WORK TIMEOUT TTY AFTER OPTIONS [NAME=VALUE...]: submit the job of DIR
# (written whole, with its secrets in $secrets) to run in WORK; OPTIONS are sbatch options,
# one per line, from the client. AFTER is - or "<ok|any> <id>...": jobs of this worker,
# as Slurm dependencies. A job whose dependency already failed is skipped at once.
slurm_submit() {
  s_job=$1 s_work=$2 s_timeout=$3 s_tty=$4 s_after=$5 s_options=$6
  shift 6
  command -v sbatch >/dev/null || {
    echo "sbatch not found on the worker: is it a Slurm login node?" >&2
    return 127
  }
  put "$s_job" slurm -
  # (BATCH_SCRIPT in scripts.ts: the shared functions, then batch.sh)
  printf '#!/bin/sh\n%s%s' "$P_LIB" "$P_BATCH" >"$s_job/batch"
  if [ -n "${secrets:-}" ]; then
    (umask 077 && printf '%s' "$secrets" >"$s_job/secrets")
  fi
  s_dep=
  if [ "$s_after" != - ]; then
    s_mode=${s_after%% *}
    for s_id in ${s_after#* }; do
      if [ -f "$P_JOBS/$s_id/exitcode" ]; then
        [ "$s_mode" = any ] || [ "$(cat "$P_JOBS/$s_id/exitcode")" = 0 ] || {
          : >"$s_job/skipped"
          end_job "$s_job" -
          return 0
        }
      elif [ -f "$P_JOBS/$s_id/slurm" ] && read -r s_sid <"$P_JOBS/$s_id/slurm" && [ "$s_sid" != - ]; then
        s_dep=$s_dep:$s_sid
      else
        echo "job ${s_id%%-*} is not a Slurm job of this worker: --after takes jobs of the same worker" >&2
        return 2
      fi
    done
    [ -z "$s_dep" ] || s_dep=--dependency=after$s_mode$s_dep
  fi
  abs "$s_work"
  # shellcheck disable=SC2154 # abs is set by abs
  s_work=$abs
  # the client's options are one per line, each one word: no shell ever reads them
  s_ifs=$IFS
  IFS='
'
  # shellcheck disable=SC2086 # split on newlines only, and never globbed
  s_sid=$(
    set -f
    sbatch $s_options --chdir="$s_work" $s_dep "$s_job/batch" "$s_job" "$s_timeout" "$s_tty" "$@"
  ) || {
    IFS=$s_ifs
    return 1
  }
  IFS=$s_ifs
  # (sbatch --parsable says "<id>" or "<id>;<cluster>")
  put "$s_job" slurm "${s_sid%%;*}"
}

# slurm_load: read what Slurm says of the user's jobs into slurm_table, once per
# operation (slurm_loaded= asks again): "<id>|<state>|<nodes>|<reason>" lines; slurm_ok is
# no if Slurm did not answer (slurmctld down or restarting)
slurm_load() {
  [ -z "${slurm_loaded:-}" ] || return 0
  slurm_loaded=yes
  if slurm_table=$(squeue -h -t all -u "$(id -un)" -o '%i|%T|%N|%r' 2>/dev/null); then
    slurm_ok=yes
  else
    slurm_ok=no slurm_table=
  fi
}

# slurm_of DIR: sets slurm_id, and from Slurm slurm_state, slurm_node, slurm_reason
# (empty when Slurm does not know the job, or did not answer)
slurm_of() {
  slurm_id='' slurm_state='' slurm_node='' slurm_reason=''
  read -r slurm_id 2>/dev/null <"$1/slurm" || return 0
  [ "$slurm_id" != - ] || return 0
  slurm_load
  slurm_line=${slurm_table#*"
$slurm_id|"}
  if [ "$slurm_line" = "$slurm_table" ]; then
    # (the first line has no newline before it)
    case $slurm_table in "$slurm_id|"*) slurm_line=${slurm_table#"$slurm_id|"} ;; *) return 0 ;; esac
  fi
  slurm_line=${slurm_line%%"
"*}
  slurm_state=${slurm_line%%|*}
  slurm_line=${slurm_line#*|}
  slurm_node=${slurm_line%%|*}
  slurm_reason=${slurm_line#*|}
}

# slurm_job_state DIR: job_state's line for a Slurm job that has no exit code yet
slurm_job_state() {
  slurm_of "$1"
  case $slurm_state in
    PENDING | REQUEUED | REQUEUE_HOLD | REQUEUE_FED | RESV_DEL_HOLD)
      # (None: Slurm has not looked at it yet)
      [ "$slurm_reason" != None ] || slurm_reason=submitted
      echo "${1##*/} queued $slurm_reason"
      return
      ;;
    RUNNING | CONFIGURING | COMPLETING | SUSPENDED | STOPPED | RESIZING | SIGNALING | STAGE_OUT)
      echo "${1##*/} running"
      return
      ;;
  esac
  if [ "$slurm_id" = - ] || [ "${slurm_ok:-no}" = no ]; then
    # submitting, or Slurm did not answer: what the job dir says
    if [ "$slurm_id" = - ] && [ -n "$(find "$1/slurm" -mmin +1 2>/dev/null)" ]; then
      echo "${1##*/} lost"
    elif [ "$slurm_id" = - ]; then
      echo "${1##*/} queued submitting"
    elif [ -f "$1/started_at" ]; then
      echo "${1##*/} running"
    else
      echo "${1##*/} queued Slurm not answering"
    fi
    return
  fi
  # ended, or forgotten: the batch script records the end, unless it was never run or
  # was killed; (it may have just now)
  slurm_settle "$1" || [ -f "$1/exitcode" ] || {
    echo "${1##*/} lost"
    return
  }
  job_state "$1"
}

# slurm_settle DIR: write the end Slurm says a job had (in slurm_state) that its batch
# script could not record: cancelled (before it ran, or killed with its batch script),
# or killed at its time limit. Fails if there is none to write.
slurm_settle() {
  [ ! -f "$1/exitcode" ] || return 0
  case $slurm_state in
    CANCELLED)
      if [ -f "$1/started_at" ]; then
        : >"$1/stopped"
        end_job "$1" 137
      elif [ "$slurm_reason" = DependencyNeverSatisfied ] && [ ! -f "$1/stopped" ]; then
        : >"$1/skipped"
        end_job "$1" -
      else
        : >"$1/stopped"
        end_job "$1" -
      fi
      ;;
    TIMEOUT | DEADLINE)
      : >"$1/timedout"
      if [ -f "$1/started_at" ]; then end_job "$1" 124; else end_job "$1" -; fi
      ;;
    *) return 1 ;;
  esac
}

# slurm_info DIR: for a Slurm job, "<id> slurm <job id> <state|-> <node|-> <reason|->"
# (state, node and reason as Slurm last said them; - once it has forgotten the job)
slurm_info() {
  [ -f "$1/slurm" ] || return 0
  slurm_of "$1"
  echo "${1##*/} slurm ${slurm_id:--} ${slurm_state:--} ${slurm_node:--} ${slurm_reason:--}"
}

# slurm_live DIR: the job may still run (pending, running, or Slurm not answering)
slurm_live() {
  [ ! -f "$1/exitcode" ] || return 1
  slurm_loaded=
  case $(slurm_job_state "$1") in
    *" queued "* | *" running") return 0 ;;
    *) return 1 ;;
  esac
}

# slurm_stop DIR GRACE_TENTHS: stop_job for a Slurm job: scancel (every process of the
# job; Slurm kills what is left after its KillWait), then give the batch script the grace
# to record the end, or settle it from what Slurm says
slurm_stop() {
  n=0
  while read -r slurm_id <"$1/slurm" && [ "$slurm_id" = - ] && [ "$n" -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
  done
  [ "$slurm_id" != - ] || return 1
  # marked first, so that no reader sees the end the cancel causes without the mark
  : >"$1/stopped"
  if ! scancel "$slurm_id" 2>/dev/null; then
    # Slurm has ended it: it ended by itself
    rm -f "$1/stopped"
    wait_exit "$1"
    return 1
  fi
  n=0
  until [ -f "$1/exitcode" ] || [ "$n" -ge "$2" ]; do
    sleep 0.1
    n=$((n + 1))
    if [ $((n % 5)) -eq 0 ]; then
      slurm_loaded=
      slurm_of "$1"
      slurm_settle "$1" 2>/dev/null || :
    fi
  done
  [ -f "$1/exitcode" ] && [ ! -f "$1/stopped" ] && return 1
  return 0
}
