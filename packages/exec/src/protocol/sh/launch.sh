# shellcheck shell=sh
# launch.sh MODE ID COMMAND CWD WORKER [DIR]
# Records job ID and starts COMMAND for it, detached: the runner has a session of its own,
# so it outlives the SSH connection, and starts the job in another new session (so stop
# can signal the job's whole process group, and the runner survives that), waits, and
# records the job's own exit status. The job runs in DIR (an existing directory, relative
# to the home unless absolute), or else in its own work dir (made if a sync did not).
# MODE is detach (print nothing) or follow (then stream its output, as follow.sh does).
set -e
mode=$1 id=$2 command=$3 cwd=$4 worker=$5 dir=${6-}
job=$PWD/$P_JOBS/$id
if [ -z "$dir" ]; then
  work=$P_WORKDIRS/$id
  mkdir -p "$work"
else
  work=$dir
  [ -d "$work" ] || {
    printf 'no directory %s on the worker\n' "$dir" >&2
    exit 2
  }
fi
user_umask=$(umask)
umask 077
mkdir -p "$job"
put "$job" cmd "$command"
put "$job" cwd "$cwd"
put "$job" worker "$worker"
put "$job" started_at "$(date +%s)"
: >"$job/output.log"
command -v setsid >/dev/null || {
  echo "setsid not found on the worker: install util-linux" >&2
  exit 127
}
# the user's login shell runs the command, if it is one that takes sh's -l -c
case "${SHELL##*/}" in
  bash | zsh | ksh | mksh | dash | sh | ash | yash) shell=$SHELL ;;
  *) shell=/bin/sh ;;
esac
cd "$work"
umask "$user_umask"
# shellcheck disable=SC2016 # the runner's text is for the runner's shell to expand
P_JOB_ID=$id setsid sh -c '
  job=$1
  setsid "$2" -l -c "$3" >>"$job/output.log" 2>&1 </dev/null &
  pid=$!
  printf "%s\n" "$pid" >"$job/.pid.tmp" && mv -f "$job/.pid.tmp" "$job/pid"
  wait "$pid"
  code=$?
  date +%s >"$job/.ended_at.tmp" && mv -f "$job/.ended_at.tmp" "$job/ended_at"
  printf "%s\n" "$code" >"$job/.exitcode.tmp" && mv -f "$job/.exitcode.tmp" "$job/exitcode"
' p-runner "$job" "$shell" "$command" </dev/null >/dev/null 2>&1 &
put "$job" runner "$!"
set +e
[ "$mode" = follow ] || exit 0
follow_job "$job" 0 yes
