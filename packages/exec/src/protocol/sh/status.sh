# shellcheck shell=sh
# status.sh ID...: one state line per job, in one round trip (see job_state)
for id in "$@"; do
  job_state "$P_JOBS/$id"
done
