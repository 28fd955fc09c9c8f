/**
 * Loopback fakes of Secrets Manager and EventBridge that speak the AWS JSON 1.1 protocol well
 * enough for the REAL SDK v3 clients:
 *
 *   new SecretsManagerClient({ endpoint: fake.url, region: 'us-east-1',
 *     credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 })
 *
 * Requests are `POST /` with `X-Amz-Target: <prefix>.<Operation>`; errors are a status (400, or
 * 500 for internal errors) with `{"__type": "<ErrorName>", "message": "..."}`. Faults (error
 * responses, dropped connections, latency) are injected on demand. Used by unit tests, the
 * benchmark and fault-matrix tests, so they stay general, strict about what AWS would reject,
 * and fast. They deliberately share no code with lib/aws, so a bug in one cannot hide in both.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';

const JSON_11 = 'application/x-amz-json-1.1';

/** An error answer: `{"__type": type, "message": message}` with this HTTP status. */
export class AwsFault {
  constructor(
    readonly type: string,
    readonly status = 400,
    readonly message = `${type} (injected by fake)`,
  ) {}
}

export type Operation = (input: Record<string, unknown>) => unknown;

export interface AwsJsonFake {
  /** `http://127.0.0.1:<port>`: pass as the client's `endpoint`. */
  url: string;
  /** Requests received (including failed and dropped ones). */
  calls(): number;
  /** Requests received per operation name. */
  callsOf(operation: string): number;
  /** The next n requests are answered with this error (status 500 for names starting with "Internal", else 400). */
  failNext(n: number, errorType: string, status?: number): void;
  /** The next n requests have their connection destroyed before any answer (a network error for the client). */
  dropNext(n: number): void;
  /** Delay every answer by ms (0 = none). */
  setLatency(ms: number): void;
  close(): Promise<void>;
}

/** A generic AWS JSON 1.1 service: operations keyed by name, `X-Amz-Target: <targetPrefix>.<name>`. */
export async function startAwsJsonFake(targetPrefix: string, operations: Record<string, Operation>): Promise<AwsJsonFake & { reset(): void }> {
  let calls = 0;
  const perOp = new Map<string, number>();
  const faults: AwsFault[] = [];
  let drops = 0;
  let latencyMs = 0;

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': JSON_11,
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomUUID(),
    });
    res.end(text);
  };
  const sendFault = (res: ServerResponse, f: AwsFault) => send(res, f.status, { __type: f.type, message: f.message });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    calls += 1;
    const target = String(req.headers['x-amz-target'] ?? '');
    const op = target.startsWith(`${targetPrefix}.`) ? target.slice(targetPrefix.length + 1) : '';
    perOp.set(op, (perOp.get(op) ?? 0) + 1);
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
    if (drops > 0) {
      drops -= 1;
      req.socket.destroy();
      return;
    }
    const fault = faults.shift();
    if (fault) return sendFault(res, fault);
    if (req.method !== 'POST' || !String(req.headers['content-type'] ?? '').startsWith(JSON_11)) {
      return sendFault(res, new AwsFault('UnknownOperationException', 400, 'expected POST with application/x-amz-json-1.1'));
    }
    const operation = operations[op];
    if (!operation) return sendFault(res, new AwsFault('UnknownOperationException', 400, `unknown target ${target}`));
    let input: unknown;
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      return sendFault(res, new AwsFault('SerializationException', 400, 'body is not JSON'));
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      return sendFault(res, new AwsFault('SerializationException', 400, 'body is not a JSON object'));
    }
    try {
      send(res, 200, operation(input as Record<string, unknown>));
    } catch (e) {
      if (e instanceof AwsFault) return sendFault(res, e);
      sendFault(res, new AwsFault('InternalFailure', 500, 'fake failed'));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  // Long, as AWS's endpoints: Node's agent drops a socket whose `Keep-Alive: timeout` hint is
  // 1 s (it keeps a 1 s margin), which made every SDK call open a new connection.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    calls: () => calls,
    callsOf: (operation) => perOp.get(operation) ?? 0,
    failNext(n, errorType, status) {
      const s = status ?? (errorType.startsWith('Internal') ? 500 : 400);
      for (let i = 0; i < n; i++) faults.push(new AwsFault(errorType, s));
    },
    dropNext(n) {
      drops += n;
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    reset() {
      calls = 0;
      perOp.clear();
      faults.length = 0;
      drops = 0;
      latencyMs = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager

export const FAKE_ACCOUNT = '123456789012';
export const FAKE_REGION = 'us-east-1';

export interface SecretsManagerFake extends AwsJsonFake {
  /** Create or rotate a secret (a new VersionId each time). A Uint8Array is stored as SecretBinary. */
  setSecret(id: string, value: string | Uint8Array): void;
  deleteSecret(id: string): void;
  /** GetSecretValue on this secret answers AccessDeniedException until allow(id). */
  deny(id: string): void;
  allow(id: string): void;
  /** The ARN the fake gives a secret name (also accepted as SecretId). */
  arnOf(name: string): string;
}

export async function startSecretsManagerFake(opts: { secrets?: Record<string, string | Uint8Array> } = {}): Promise<SecretsManagerFake> {
  const secrets = new Map<string, { value: string | Uint8Array; versionId: string; created: number }>();
  const denied = new Set<string>();
  const arnOf = (name: string) => `arn:aws:secretsmanager:${FAKE_REGION}:${FAKE_ACCOUNT}:secret:${name}-AbCdEf`;
  const nameOf = (id: string) => {
    const m = /^arn:aws:secretsmanager:[^:]+:\d{12}:secret:(.+)-[A-Za-z0-9]{6}$/.exec(id);
    return m && secrets.has(m[1]!) ? m[1]! : id;
  };
  const setSecret = (id: string, value: string | Uint8Array) => {
    secrets.set(id, { value, versionId: randomUUID(), created: Date.now() / 1000 });
  };
  for (const [id, value] of Object.entries(opts.secrets ?? {})) setSecret(id, value);

  const fake = await startAwsJsonFake('secretsmanager', {
    GetSecretValue(input) {
      const id = input.SecretId;
      if (typeof id !== 'string' || id.length === 0) throw new AwsFault('InvalidParameterException', 400, 'SecretId is required');
      const name = nameOf(id);
      if (denied.has(name)) {
        throw new AwsFault(
          'AccessDeniedException',
          400,
          `User: arn:aws:sts::${FAKE_ACCOUNT}:assumed-role/test/fn is not authorized to perform: secretsmanager:GetSecretValue on resource: ${id}`,
        );
      }
      const secret = secrets.get(name);
      if (!secret) throw new AwsFault('ResourceNotFoundException', 400, "Secrets Manager can't find the specified secret.");
      return {
        ARN: arnOf(name),
        Name: name,
        VersionId: secret.versionId,
        VersionStages: ['AWSCURRENT'],
        CreatedDate: secret.created,
        ...(typeof secret.value === 'string'
          ? { SecretString: secret.value }
          : { SecretBinary: Buffer.from(secret.value).toString('base64') }),
      };
    },
  });

  return {
    ...fake,
    setSecret,
    deleteSecret: (id) => void secrets.delete(id),
    deny: (id) => void denied.add(id),
    allow: (id) => void denied.delete(id),
    arnOf,
  };
}

// ---------------------------------------------------------------------------------------------
// EventBridge

export interface EventBridgeFake extends AwsJsonFake {
  /** Entries accepted so far, in arrival order (Time as a Date, as the SDK type has it). */
  entries(): PutEventsRequestEntry[];
  /** The next n entries (across calls) fail with this ErrorCode in a 200 response with FailedEntryCount. */
  failEntries(n: number, errorCode?: string): void;
  /** The next n calls answer 400 ThrottlingException. */
  throttleNext(n: number): void;
  /** Clears accepted entries, counters and pending faults. */
  reset(): void;
}

/** Independent of lib/aws on purpose: AWS's documented entry size computation, on the wire shape. */
function wireEntrySize(e: Record<string, unknown>): number {
  const b = (v: unknown) => (typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : 0);
  let size = e.Time !== undefined && e.Time !== null ? 14 : 0;
  size += b(e.Source) + b(e.DetailType) + b(e.Detail);
  if (Array.isArray(e.Resources)) for (const r of e.Resources) size += b(r);
  return size;
}

export async function startEventBridgeFake(opts: { maxEntryBytes?: number } = {}): Promise<EventBridgeFake> {
  const maxBytes = opts.maxEntryBytes ?? 256 * 1024;
  const accepted: PutEventsRequestEntry[] = [];
  const entryFaults: string[] = [];

  const fake = await startAwsJsonFake('AWSEvents', {
    PutEvents(input) {
      const list = input.Entries;
      if (!Array.isArray(list) || list.length < 1 || list.length > 10) {
        throw new AwsFault('ValidationException', 400, 'Entries must have between 1 and 10 items');
      }
      const entries = list as Record<string, unknown>[];
      if (entries.reduce((n, e) => n + wireEntrySize(e), 0) > maxBytes) {
        throw new AwsFault('ValidationException', 400, 'Total size of the entries in the request is over the limit.');
      }
      let failed = 0;
      const results = entries.map((e) => {
        const injected = entryFaults.shift();
        const code = injected ?? entryProblem(e);
        if (code) {
          failed += 1;
          return { ErrorCode: code, ErrorMessage: `${code} (fake)` };
        }
        const { Time, ...rest } = e;
        accepted.push({
          ...(rest as PutEventsRequestEntry),
          ...(typeof Time === 'number' && { Time: new Date(Time * 1000) }),
        });
        return { EventId: randomUUID() };
      });
      return { FailedEntryCount: failed, Entries: results };
    },
  });

  return {
    ...fake,
    entries: () => accepted.map((e) => ({ ...e })),
    failEntries(n, errorCode = 'InternalFailure') {
      for (let i = 0; i < n; i++) entryFaults.push(errorCode);
    },
    throttleNext(n) {
      fake.failNext(n, 'ThrottlingException', 400);
    },
    reset() {
      fake.reset();
      accepted.length = 0;
      entryFaults.length = 0;
    },
  };
}

/** What EventBridge itself rejects per entry. */
function entryProblem(e: Record<string, unknown>): string | undefined {
  for (const k of ['Source', 'DetailType', 'Detail']) {
    if (typeof e[k] !== 'string' || (e[k] as string).length === 0) return 'InvalidArgument';
  }
  try {
    const detail = JSON.parse(e.Detail as string);
    if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) return 'MalformedDetail';
  } catch {
    return 'MalformedDetail';
  }
  return undefined;
}
