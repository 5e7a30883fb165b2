import { describe, expect, test } from "bun:test";
import { bytes, doneLine, table } from "../src/_format.ts";

describe("table", () => {
  test("pads every column to its widest cell, whatever the content", () => {
    expect(
      table(
        ["ID", "COMMAND", "STATUS"],
        [
          ["a", "make", "running"],
          ["bbbbbbbbbb", "x", "done [0]"],
        ],
      ),
    ).toBe(["ID          COMMAND  STATUS", "a           make     running", "bbbbbbbbbb  x        done [0]"].join("\n"));
  });
  test("clips the chosen column to fit a terminal's width, and only it", () => {
    const out = table(["ID", "COMMAND", "STATUS"], [["a", "x".repeat(100), "ok"]], { width: 30, shrink: 1 });
    for (const line of out.split("\n")) expect(line.length).toBeLessThanOrEqual(30);
    expect(out).toContain("…");
    expect(out.split("\n")[1]!.endsWith("ok")).toBe(true);
  });
  test("when one column is not enough, the next is clipped too, none below 12", () => {
    const out = table(["ID", "CWD", "COMMAND", "STATUS"], [["a", `/home/${"d".repeat(60)}`, "x".repeat(100), "ok"]], {
      width: 50,
      shrink: [2, 1],
    });
    for (const line of out.split("\n")) expect(line.length).toBeLessThanOrEqual(50);
    expect(out.split("\n")[1]).toMatch(/^a {3}\/home\/d+… {2}x{11}… {2}ok$/);
  });
  test("where 12 each is not enough, the columns are clipped again, to 8", () => {
    const row = ["a", `/home/${"d".repeat(60)}`, "K=".repeat(20), "x".repeat(100), "ok"];
    const out = table(["ID", "CWD", "VALUES", "COMMAND", "STATUS"], [row], { width: 40, shrink: [3, 1, 2] });
    for (const line of out.split("\n")) expect(line.length).toBeLessThanOrEqual(40);
    expect(out.split("\n")[1]).toMatch(/^a {3}\/home\/d… {2}K=K=K=K… {2}x{7}… {2}ok$/);
    // never below 8, even where lines then do not fit
    const narrow = table(["ID", "COMMAND"], [["abcdefgh", "x".repeat(30)]], { width: 10, shrink: 1 });
    expect(narrow.split("\n")[1]).toBe(`abcdefgh  ${"x".repeat(7)}…`);
  });
  test("without a width nothing is cut", () => {
    expect(table(["C"], [["y".repeat(500)]])).toContain("y".repeat(500));
  });
});

describe("bytes", () => {
  test.each([
    [0, "0 B"],
    [1023, "1023 B"],
    [1536, "1.5 KB"],
    [50 * 1024 * 1024, "50 MB"],
    [3 * 1024 ** 3, "3.0 GB"],
  ])("%p is %p", (n, s) => {
    expect(bytes(n)).toBe(s);
  });
});

describe("doneLine", () => {
  test.each([
    [0, {}, "[Job done: exit 0]"],
    [3, {}, "[Job done: exit 3]"],
    [124, { timedOut: true }, "[Job timed out: exit 124]"],
    [143, { stopped: true, ran: true }, "[Job stopped: exit 143]"],
    [null, { stopped: true, ran: false }, "[Job stopped before it started]"],
    [null, { skipped: true, ran: false }, "[Job skipped: a job it runs after did not succeed]"],
    [null, { ran: true }, "[Job ended without an exit code: status unknown]"],
  ] as const)("exit %p, %p: %p", (code, how, line) => {
    expect(Bun.stripANSI(doneLine(code, how))).toBe(line);
  });
});
