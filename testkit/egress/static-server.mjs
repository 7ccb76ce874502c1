// A static file server for tests (git's "dumb" HTTP protocol needs nothing more):
// `node static-server.mjs DIR PORT`, listening on every address of its network namespace.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';

const [dir, port] = process.argv.slice(2);
if (!dir || !port) {
  process.stderr.write('usage: node static-server.mjs DIR PORT\n');
  process.exit(2);
}
createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
  const file = join(dir, path);
  let ok = false;
  try {
    ok = !path.includes('..') && statSync(file).isFile();
  } catch {}
  if (!ok) {
    res.writeHead(404).end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  createReadStream(file).pipe(res);
}).listen(Number(port), () => process.stdout.write(`listening ${port}\n`));
