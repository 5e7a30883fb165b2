import { log } from "../_log.ts";

// Standalone use arrives with its own issue; until then say so rather than do nothing.
log.error("p-exec is not available yet; use p, which syncs and runs: p -- <command>");
process.exitCode = 70;
