# shellcheck shell=sh
# stop.sh GRACE_TENTHS ID: stop the job (see stop_job), then say what came of it: a first
# line "stopped" or "finished" (it ended by itself), then its state line. Exit 3 if there
# is no such job.
grace=$1 id=$2
stop_job "$P_JOBS/$id" "$grace"
case $? in
  0) echo stopped ;;
  1) echo finished ;;
  *) exit 3 ;;
esac
job_state "$P_JOBS/$id"
