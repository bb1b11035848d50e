#!/usr/bin/env node
// Launcher for the `effect-starrocks` command: the sources are TypeScript, run through tsx's ESM loader.
import { register } from "tsx/esm/api"

register()
await import("../src/bin.ts")
