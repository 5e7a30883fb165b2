import { main } from "../p-exec.ts";

process.exitCode = await main(process.argv.slice(2));
