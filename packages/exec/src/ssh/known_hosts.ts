import { createHash, createHmac, randomBytes } from "node:crypto";

/** One line of a known_hosts file. */
export interface KnownHost {
  marker?: "@revoked" | "@cert-authority";
  patterns: string;
  keyType: string;
  key: string;
  file: string;
  line: number;
}

export function parseKnownHosts(text: string, file: string): KnownHost[] {
  const entries: KnownHost[] = [];
  text.split("\n").forEach((raw, i) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === "" || fields[0]!.startsWith("#")) return;
    const marker =
      fields[0] === "@revoked" || fields[0] === "@cert-authority" ? (fields.shift() as KnownHost["marker"]) : undefined;
    const [patterns, keyType, key] = fields;
    if (!patterns || !keyType || !key) return;
    entries.push({ ...(marker && { marker }), patterns, keyType, key, file, line: i + 1 });
  });
  return entries;
}

const glob = (pattern: string, name: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", ".*")
      .replaceAll("?", ".")}$`,
    "i",
  ).test(name);

function hashedMatches(pattern: string, name: string): boolean {
  const [, magic, salt, hash] = pattern.split("|");
  if (magic !== "1" || !salt || !hash) return false;
  return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
}

/** Does a known_hosts pattern list (`a,b,!c,[h]:2222,|1|salt|hash`) name `name`? */
export function hostMatches(patterns: string, name: string): boolean {
  let matched = false;
  for (const p of patterns.split(",")) {
    if (p.startsWith("|")) matched ||= hashedMatches(p, name);
    else if (p.startsWith("!")) {
      if (glob(p.slice(1), name)) return false;
    } else matched ||= glob(p, name);
  }
  return matched;
}

/** The name a host key is filed under: `host`, or `[host]:port` off port 22. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export type HostKeyVerdict =
  | { kind: "match" }
  | { kind: "unknown" }
  | { kind: "revoked"; entry: KnownHost }
  | { kind: "mismatch"; entry: KnownHost };

/** Judge a presented key (type and base64 blob) the way OpenSSH does. */
export function checkHostKey(entries: KnownHost[], name: string, keyType: string, key: string): HostKeyVerdict {
  const mine = entries.filter((e) => e.marker !== "@cert-authority" && hostMatches(e.patterns, name));
  const revoked = entries.find((e) => e.marker === "@revoked" && e.key === key);
  if (revoked) return { kind: "revoked", entry: revoked };
  if (mine.some((e) => !e.marker && e.keyType === keyType && e.key === key)) return { kind: "match" };
  const other = mine.find((e) => !e.marker);
  return other ? { kind: "mismatch", entry: other } : { kind: "unknown" };
}

/** Key types on file for `name`, to offer first so a server with several keys shows a known one. */
export function knownKeyTypes(entries: KnownHost[], name: string): string[] {
  return [...new Set(entries.filter((e) => !e.marker && hostMatches(e.patterns, name)).map((e) => e.keyType))];
}

export function knownHostsLine(name: string, keyType: string, key: string, hash: boolean): string {
  if (!hash) return `${name} ${keyType} ${key}\n`;
  const salt = randomBytes(20);
  const mac = createHmac("sha1", salt).update(name).digest("base64");
  return `|1|${salt.toString("base64")}|${mac} ${keyType} ${key}\n`;
}

/** `SHA256:...` as `ssh-keygen -l` prints it. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** The algorithm name inside an SSH wire-format public key blob. */
export function keyTypeOf(keyBlob: Buffer): string {
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString("latin1");
}
