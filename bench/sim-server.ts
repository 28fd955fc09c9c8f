/**
 * Benchmark child: the COC simulator in its own process (so its CPU is not the client's),
 * bound to 127.0.0.1 on an ephemeral port, request recording off (a ring buffer of 100k
 * entries would skew memory and CPU in long runs). Driven only through its /_sim/ control API.
 * Prints one JSON line `{"url": ...}` once listening; exits on SIGTERM or when stdin closes
 * (the parent died).
 */
import { DEMO_CREDENTIAL, startCocSimulator } from '../simulator/coc-simulator';

const sim = await startCocSimulator({ credentials: [{ ...DEMO_CREDENTIAL }], recordRequests: false });
process.stdout.write(`${JSON.stringify({ url: sim.url, pid: process.pid })}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  sim.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
