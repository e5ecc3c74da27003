// Test oracle: print what the real @actions/core prints, so tests can compare byte for byte.
//
// stdin: a JSON array of cases, each
//   {"level": "error" | "warning" | "notice", "message": "...",
//    "properties": {"title"?: str, "file"?: str, "startLine"?: int, "startColumn"?: int}}
// stdout: one workflow-command line per case, exactly as core.error/warning/notice write it.
// Properties absent from a case are not passed at all (not passed as undefined).
import * as core from '@actions/core';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'));

for (const c of cases) {
  const fn = {error: core.error, warning: core.warning, notice: core.notice}[c.level];
  if (!fn) throw new Error(`unknown level ${c.level}`);
  fn(c.message, c.properties ?? {});
}
