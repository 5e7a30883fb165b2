import { describe, expect, test } from "bun:test";
import { commandFrame, FRAME, Frames, frame } from "../src/ssh/bridge.ts";

describe("the bridge's frames", () => {
  const stream = Buffer.concat([
    frame(FRAME.stdout, Buffer.from("out")),
    frame(FRAME.stderr, Buffer.alloc(0)),
    frame(FRAME.stderr, Buffer.from("ünï\n")),
    frame(FRAME.exit, Buffer.from("23")),
  ]);
  const whole = [
    { type: FRAME.stdout, data: "out" },
    { type: FRAME.stderr, data: "" },
    { type: FRAME.stderr, data: "ünï\n" },
    { type: FRAME.exit, data: "23" },
  ];

  test.each([1, 2, 3, 5, 7, stream.length])("cut every %p bytes, the same frames come out", (size) => {
    const frames = new Frames(true);
    const got: { type: number; data: string }[] = [];
    for (let i = 0; i < stream.length; i += size)
      for (const f of frames.take(stream.subarray(i, i + size))) got.push({ type: f.type, data: f.data.toString() });
    expect(got).toEqual(whole);
  });

  test("a command comes first, length-prefixed; what follows it is kept as it came", () => {
    const command = "sh -c 'a\nb' --server";
    const frames = new Frames(false);
    const bytes = Buffer.concat([commandFrame(command), Buffer.from("stdin bytes")]);
    expect(frames.take(bytes.subarray(0, 3))).toEqual([]);
    const [first, ...more] = frames.take(bytes.subarray(3));
    expect(first?.data.toString()).toBe(command);
    expect(more).toEqual([]);
    expect(frames.rest().toString()).toBe("stdin bytes");
  });
});
