// The worker protocol without the SSH client: for code that only builds or reads what a
// worker holds (and must not pay for loading ssh2), e.g. `p ls` with nothing running.
export { type ErrorCode, PError, problem } from "../errors.ts";
export * from "./layout.ts";
export * from "./protocol.ts";
export { commandLine, shJoin, shq } from "./quote.ts";
export * from "./scripts.ts";
