import * as esbuild from 'esbuild';
const r = await esbuild.build({ bundle: true, platform: 'node', target: 'node20', format: 'cjs', entryPoints: ['src/cli/main.ts'], outfile: '/tmp/nb/meta-out.js', metafile: true, logLevel: 'error', write: false });
const inputs = r.metafile.inputs;
const entries = process.argv.slice(2);
const seen = new Set(); const via = new Map();
const stack = [...entries];
while (stack.length) { const f = stack.pop(); if (seen.has(f)) continue; seen.add(f); for (const i of inputs[f]?.imports ?? []) { if (i.kind === 'dynamic-import') continue; if (i.external) { if (!via.has(i.path)) via.set(i.path, new Set()); via.get(i.path).add(f); continue; } if (inputs[i.path] && !seen.has(i.path)) { stack.push(i.path); } } }
for (const [k, v] of via) console.log(k, '<-', [...v].join(' '));
console.log('--- src files'); console.log([...seen].filter(f => f.startsWith('src')).sort().join('\n'));
