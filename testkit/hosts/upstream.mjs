// A stand-in upstream for the load harness's own tests (the deployer's tests use real releases):
// `node upstream.mjs PORT REVISION`. GET / answers at once, GET /slow?ms=N after N ms, both saying
// which revision answered; GET /up is the health check. SIGUSR2: /up turns 503 (draining) so a proxy's
// health check moves traffic away. SIGTERM: stop accepting, finish requests in flight, exit (a
// kept-alive connection gets `connection: close` on its next answer, as a draining server sends, so a
// proxy's health checks every 200 ms cannot hold it open). GET /ws upgrades to a WebSocket that
// sends `{"revision":…}` once and then ignores what it reads — and, unlike examples/hello, never closes
// it on SIGTERM: the app that does not drain its WebSockets (its process ends them when it is killed).
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

const [port, revision] = process.argv.slice(2);
if (!port || !revision) {
  process.stderr.write('usage: node upstream.mjs PORT REVISION\n');
  process.exit(2);
}
let draining = false;
let closing = false;
const server = createServer((req, res) => {
  if (closing) res.shouldKeepAlive = false;
  const url = new URL(req.url ?? '/', 'http://upstream');
  const answer = () => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-revision': revision });
    res.end(JSON.stringify({ status: 'ok', revision }));
  };
  if (url.pathname === '/up' && draining) {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('draining\n');
  } else if (url.pathname === '/slow') setTimeout(answer, Math.min(Number(url.searchParams.get('ms') ?? 500), 30_000));
  else answer();
});
server.keepAliveTimeout = 30_000;
server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key'];
  if (req.url !== '/ws' || typeof key !== 'string') return socket.destroy();
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  const hello = Buffer.from(JSON.stringify({ revision }));
  socket.on('data', () => {});
  socket.on('error', () => {});
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
  socket.write(Buffer.concat([Buffer.from([0x81, hello.length]), hello]));
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`listening ${port} ${revision}\n`));
process.on('SIGUSR2', () => (draining = true));
process.on('SIGTERM', () => {
  closing = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
