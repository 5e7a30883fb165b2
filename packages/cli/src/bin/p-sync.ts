import { main } from "../p-sync.ts";

process.exitCode = await main(process.argv.slice(2));
