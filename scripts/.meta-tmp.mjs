import * as esbuild from 'esbuild';
const r = await esbuild.build({ bundle: true, platform: 'node', target: 'node20', format: 'cjs', entryPoints: ['src/cli/main.ts'], outfile: '/tmp/nb/meta-out.js', metafile: true, logLevel: 'error', write: true });
const inputs = r.metafile.inputs;
const outInputs = r.metafile.outputs['/tmp/nb/meta-out.js'] ? r.metafile.outputs['/tmp/nb/meta-out.js'].inputs : Object.values(r.metafile.outputs)[0].inputs;
const entries = process.argv.slice(2);
const seen = new Set();
const stack = [...entries];
while (stack.length) { const f = stack.pop(); if (seen.has(f)) continue; seen.add(f); for (const i of inputs[f]?.imports ?? []) if (i.kind !== 'dynamic-import' && !i.external && inputs[i.path]) stack.push(i.path); }
const byPkg = new Map();
let total = 0;
for (const f of seen) { const b = outInputs[f]?.bytesInOutput ?? 0; total += b; const m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(f); const k = m ? m[1] : f.split('/').slice(0, 3).join('/'); byPkg.set(k, (byPkg.get(k) ?? 0) + b); }
console.log('closure bytes', total, 'files', seen.size);
for (const [k, b] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(String(b).padStart(9), k);
