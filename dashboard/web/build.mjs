// Builds ../dist from src: one bundled, minified, content-hashed script and
// stylesheet (uPlot included), the favicon, and index.html pointing at them.
// `make dashboard` runs it; the Go package embeds ../dist.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const assets = path.join(dist, 'assets');

await rm(dist, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

// uPlot's MIT notice travels with the bundle (esbuild keeps only /*!
// comments, and uPlot's header is a plain one).
const uplotLicense = await readFile(path.join(here, 'node_modules', 'uplot', 'LICENSE'), 'utf8');

const result = await build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.ts' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  outdir: assets,
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'eof',
  banner: { js: `/*! Bundles uPlot (https://github.com/leeoniya/uPlot):\n${uplotLicense.trim().replaceAll('*/', '* /')}\n*/` },
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => path.basename(p));
const script = outputs.find((f) => f.endsWith('.js'));
const style = outputs.find((f) => f.endsWith('.css'));
if (!script || !style) throw new Error(`expected a .js and a .css output, got ${outputs.join(', ')}`);

// The favicon gets a content hash like the bundles, so every asset can be
// cached forever and index.html alone is revalidated.
const icon = await readFile(path.join(here, 'src', 'favicon.svg'));
const iconName = `favicon-${createHash('sha256').update(icon).digest('hex').slice(0, 8).toUpperCase()}.svg`;
await writeFile(path.join(assets, iconName), icon);

const template = await readFile(path.join(here, 'src', 'index.html'), 'utf8');
const html = template
  .replace('{{script}}', `/assets/${script}`)
  .replace('{{style}}', `/assets/${style}`)
  .replace('{{favicon}}', `/assets/${iconName}`);
await writeFile(path.join(dist, 'index.html'), html);

// The fingerprint of the sources this dist was built from: a Go test
// recomputes it and fails when the sources changed without a rebuild.
await writeFile(path.join(dist, 'SOURCES.sha256'), (await sourceHash()) + '\n');

console.log(`dist: index.html, ${[script, style, iconName].join(', ')}`);

/** sha256 over (path, size, bytes) of every source file, in path order. */
async function sourceHash() {
  const files = ['build.mjs', 'package.json', 'package-lock.json', 'tsconfig.json'];
  for (const f of await readdir(path.join(here, 'src'), { recursive: true, withFileTypes: true })) {
    if (f.isFile()) files.push(path.relative(here, path.join(f.parentPath, f.name)).split(path.sep).join('/'));
  }
  files.sort();
  const h = createHash('sha256');
  for (const f of files) {
    const data = await readFile(path.join(here, f));
    h.update(`${f}\n${data.length}\n`);
    h.update(data);
  }
  return h.digest('hex');
}
