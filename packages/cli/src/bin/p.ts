import { RSH_ARG, rshClient } from "../lib/rsh.ts";

// rsync's remote shell over p's own connection (see lib/rsh.ts): it starts without the
// rest of p, which is loaded only for p's commands
if (process.argv[2] === RSH_ARG) process.exit(await rshClient(process.argv.slice(3)));
const { main } = await import("../main.ts");
process.exitCode = await main(process.argv.slice(2));
