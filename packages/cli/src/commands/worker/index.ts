import { defineCommand } from "citty";

export default defineCommand({
  meta: {
    name: "worker",
    description: "Manage workers: register, ls, set, default, rm. Example: p worker register me@build-box",
  },
  subCommands: {
    register: () => import("./register.ts").then((m) => m.default),
    ls: () => import("./ls.ts").then((m) => m.default),
    default: () => import("./default.ts").then((m) => m.default),
    set: () => import("./set.ts").then((m) => m.default),
    rm: () => import("./rm.ts").then((m) => m.default),
  },
});
