// A preload (`node --require marks.cjs`, or NODE_OPTIONS) that writes a timeline of a load's process to the file
// `MARKS_FILE` at exit: each mark is [name, milliseconds since MARKS_T0 (a process.hrtime.bigint() value, in ns, of
// the process that spawned this one: both read CLOCK_MONOTONIC), detail]. Marks: the preload's start; the first
// opens, reads and stats of files (the entry's bundle and code cache, then the loaded file's: a 327,680-byte read is
// the cut of a batch, the window around its limit, a 1 MiB read a slice of a body); the entry's compile of the bundle
// with its cache (`vm.Script`) and the bundle's evaluation; each socket's creation and connection; each HTTP
// request's headers written to the socket (not queued while it connects), 100 Continue, first and last body bytes
// handed to the socket, response and the response's end; each write on stdout (the summary) and the `exit` event;
// at exit, node's own marks (perf_hooks' nodeTiming: V8 started, environment, bootstrap done).
// Used by packages/cli/bench/timeline.ts.
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS preload (node --require) */
"use strict";
const t0 = BigInt(process.env.MARKS_T0 ?? "0");
const out = process.env.MARKS_FILE;
const now = () => Number(process.hrtime.bigint() - t0) / 1e6;
const marks = [["preload", now()]];
const mark = (name, detail) => marks.push(detail === undefined ? [name, now()] : [name, now(), detail]);
const fs = require("node:fs");
const readSync = fs.readSync;
const openSync = fs.openSync;
let reads = 0;
let opens = 0;
// the first opens and reads (the entry's of the bundle and its cache, then the file's), with their sizes
fs.openSync = function(...args) {
  if (opens++ < 6) mark("openSync", require("node:path").basename(String(args[0])));
  return openSync.apply(this, args);
};
fs.readSync = function(...args) {
  const n = readSync.apply(this, args);
  if (reads++ < 8) mark("readSync", `${n} B`);
  return n;
};
// the entry's compile of the bundle with its code cache, and the bundle's evaluation (scripts/bundle.ts)
const vm = require("node:vm");
const Script = vm.Script;
vm.Script = function(...args) {
  mark("vm.Script", require("node:path").basename(String(args[1]?.filename)));
  const script = new Script(...args);
  mark(
    "vm.Script done",
    `cache ${args[1]?.cachedData === undefined ? "none" : script.cachedDataRejected ? "rejected" : "taken"}`,
  );
  const run = script.runInThisContext;
  script.runInThisContext = function(...a) {
    const fn = run.apply(this, a);
    return function(...b) {
      mark("bundle evaluation");
      try {
        return fn.apply(this, b);
      } finally {
        mark("bundle evaluated (sync)");
        setImmediate(() => mark("first turn after the evaluation"));
      }
    };
  };
  return script;
};
const stat = fs.statSync;
let stats = 0;
fs.statSync = function(...args) {
  if (stats++ < 3) mark("statSync", require("node:path").basename(String(args[0])));
  return stat.apply(this, args);
};
const dc = require("node:diagnostics_channel");
// each request's marks, from its socket's writes (http.client.request.start comes only at the request's end on node 20)
let requests = 0;
const seen = new WeakMap();
const track = (request) => {
  const id = `${request.method} #${requests++}`;
  const state = { id, body: 0, last: undefined };
  seen.set(request, state);
  mark("headers written", `${id} ${request.path}`);
  request.once("continue", () => mark("100 continue", id));
  request.once("response", (res) => {
    if (state.last !== undefined) marks.push(["last body write", state.last, `${id} ${state.body} B`]);
    mark("response", `${id} ${res.statusCode}`);
    res.once("end", () => mark("response end", id));
  });
  return state;
};
dc.subscribe("net.client.socket", ({ socket }) => {
  mark("socket");
  socket.once("connect", () => mark("connect"));
  const write = socket._writeGeneric;
  socket._writeGeneric = function(writev, data, encoding, cb) {
    const request = socket._httpMessage;
    // while it connects, the socket keeps the write and makes it again once connected
    if (request != null && !socket.connecting) {
      const known = seen.get(request);
      if (known === undefined) track(request);
      else {
        const n = writev
          ? data.reduce((s, c) => s + (c.chunk ?? c).length, 0)
          : (typeof data === "string" ? Buffer.byteLength(data) : data.length);
        if (n > 0) {
          if (known.body === 0) mark("first body write", known.id);
          known.body += n;
          known.last = now();
        }
      }
    }
    return write.call(this, writev, data, encoding, cb);
  };
});
const stdoutWrite = process.stdout.write;
process.stdout.write = function(...args) {
  mark("stdout write");
  return stdoutWrite.apply(this, args);
};
process.on("exit", () => {
  mark("exit event");
  const { performance } = require("node:perf_hooks");
  // performance.now() = hrtime - timeOrigin: node's marks as hrtime, then against t0
  const origin = Number(process.hrtime.bigint() - t0) / 1e6 - performance.now();
  const nt = performance.nodeTiming;
  for (const k of ["v8Start", "environment", "bootstrapComplete"]) marks.push([`node ${k}`, origin + nt[k]]);
  marks.push(["reads", 0, String(reads)]);
  if (out) fs.writeFileSync(out, JSON.stringify(marks));
});
