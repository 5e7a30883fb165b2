import { PError } from "@p/exec/protocol";

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** A duration as users write one (`90s`, `30m`, `2h`, `1h30m`, `45`: seconds), in seconds. */
export function parseDuration(text: string): number {
  const t = text.trim();
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)([smhd]?)/g)];
  const whole = parts.map((m) => m[0]).join("");
  const seconds = parts.reduce((sum, m) => sum + Number(m[1]) * UNIT_S[m[2] || "s"]!, 0);
  if (!t || whole !== t || !(seconds > 0) || (parts.length > 1 && parts.some((m) => !m[2])))
    throw new PError(
      "invalid_argument",
      `duration ${JSON.stringify(text)} is not valid; use a number with s, m, h or d, e.g. 90s, 30m, 2h`,
    );
  return seconds;
}
