// The baseline of bench_render.py: official JS MJML (npm `mjml`), warm, in one process, on the MJML digest renders.
// Usage: node benchmarks/mjml_js.js FILE.mjml RUNS  → prints {"ms_per_run": N}
"use strict";
const fs = require("fs");
const mjml = require("mjml");

async function main() {
  const source = fs.readFileSync(process.argv[2], "utf8");
  const runs = Number(process.argv[3] || 50);
  const compile = async () => { const out = await mjml(source, { validationLevel: "soft", minify: false }); return out.html.length; };
  for (let i = 0; i < 10; i++) { await compile(); }  // warm: JIT and caches, as a long-running renderer would be
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) { await compile(); }
  const ms = Number(process.hrtime.bigint() - start) / 1e6 / runs;
  process.stdout.write(JSON.stringify({ ms_per_run: ms }) + "\n");
}

main().catch((err) => { console.error(err); process.exit(1); });
