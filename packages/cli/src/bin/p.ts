import { RSH_ARG, rshClient } from "../lib/rsh.ts";
import { main } from "../main.ts";

// (rsync's remote shell over p's own connection: see lib/rsh.ts)
if (process.argv[2] === RSH_ARG) process.exit(await rshClient(process.argv.slice(3)));
process.exitCode = await main(process.argv.slice(2));
