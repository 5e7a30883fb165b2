# shellcheck shell=sh
# follow.sh ID OFFSET FOLLOW: the job's output from byte OFFSET, to its end if FOLLOW=yes,
# then its status line (see follow_job)
follow_job "$P_JOBS/$1" "$2" "$3"
