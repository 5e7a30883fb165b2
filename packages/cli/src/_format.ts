import pc from "picocolors";

/** `[Job done: exit N]`, as the spec prints it when a job ends. */
export function doneLine(exitCode: number | null): string {
  if (exitCode === null) return pc.yellow("[Job ended without an exit code: status unknown]");
  const line = `[Job done: exit ${exitCode}]`;
  return exitCode === 0 ? pc.green(line) : pc.red(line);
}

/** Columns padded to their widest cell, like `docker ps`. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
