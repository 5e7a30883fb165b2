import { randomBytes } from "node:crypto";
import { loadConfig } from "@p/store";
import { defineCommand } from "citty";
import { strictArgs } from "../_args.ts";
import { pc } from "../_color.ts";
import { EXIT, usage } from "../_errors.ts";
import { Dashboard } from "../lib/ui/server.ts";

const args = {
  port: { type: "string", description: "The port to serve on, on 127.0.0.1 (default: any free port)" },
  "no-open": { type: "boolean", description: "Print the address only; do not open a browser" },
} as const;

/** Open `url` in the user's browser, where there is one to open; quietly nothing otherwise. */
function openBrowser(url: string): void {
  const linux = process.platform === "linux";
  // (on Linux with no display, xdg-open would start a text browser in this terminal)
  if (linux && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return;
  const opener = process.platform === "darwin" ? "open" : linux ? "xdg-open" : undefined;
  if (!opener || !Bun.which(opener)) return;
  try {
    Bun.spawn([opener, url], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }).unref();
  } catch {} // the address is printed: the user can open it
}

export default defineCommand({
  meta: {
    name: "ui",
    description: "Serve a live dashboard of the workers and jobs on 127.0.0.1 while it runs. Example: p ui --no-open",
  },
  args,
  async run({ rawArgs }) {
    const { values, positionals } = strictArgs(args, rawArgs, "ui");
    if (positionals.length) throw usage("usage: p ui [--port N] [--no-open]");
    const given = values.port as string | undefined;
    const port = given === undefined ? 0 : Number(given);
    if (!/^\d+$/.test(given ?? "0") || port > 65535)
      throw usage(`--port ${JSON.stringify(given)} is not a port: give a number from 1 to 65535, or none for any`);
    loadConfig(); // a broken config is said now, not on the first request
    const token = randomBytes(24).toString("base64url");
    const dashboard = new Dashboard({ token, config: loadConfig });
    let server: ReturnType<typeof Bun.serve>;
    try {
      server = Bun.serve({ hostname: "127.0.0.1", port, fetch: dashboard.fetch, idleTimeout: 60 });
    } catch (err) {
      const why = (err as { code?: string }).code === "EADDRINUSE" ? "it is in use" : (err as Error).message;
      throw usage(`cannot serve on 127.0.0.1:${port} (${why}); give another --port, or none for any free one`);
    }
    const url = `http://127.0.0.1:${server.port}/?token=${token}`;
    process.stdout.write(`${url}\n`);
    process.stderr.write(`${pc.dim("Serving the dashboard on 127.0.0.1 only; Ctrl+C stops it.")}\n`);
    if (!values["no-open"]) openBrowser(url);
    await new Promise<void>((resolve) => {
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => resolve());
    });
    dashboard.close();
    await server.stop(true);
    return EXIT.ok;
  },
});
