import { keeperOr } from "../lib/keep.ts";
import { main } from "../main.ts";

const argv = process.argv.slice(2);
process.exitCode = (await keeperOr(argv)) ?? (await main(argv));
