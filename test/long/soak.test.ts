/**
 * Soak (`npm run test:long`): 10,000 approvals through the real workflow, the real CocClient over
 * real HTTP to the loopback COC simulator with real signing, credentials from Secrets Manager and
 * outcomes onto EventBridge (the real SDK clients, `maxAttempts: 1`, against the loopback fakes),
 * with about 10% of COC requests failing transiently (500, 503, 429 with Retry-After: 0,
 * connection reset, non-JSON 200 body), occasional Secrets Manager and PutEvents failures, and
 * concurrent duplicate deliveries (same approval id, same delivery id, 2-3 at once).
 *
 * A thrown retryable error is "the trigger retries": the same delivery is delivered again, as
 * EventBridge / Lambda would, until it completes (bounded). Afterwards, from the bus: one
 * idempotency key per (approval, task), every key's outcomes successes (enabled or
 * already_enabled), at most one `enabled` per key, and every task enabled exactly once in COC.
 *
 * Knobs (environment): SOAK_APPROVALS (10000), SOAK_CONCURRENCY (24), SOAK_FAULT_RATE (0.1),
 * SOAK_SEED (random; printed, so a failing run can be replayed), SOAK_TIME_BUDGET_S (420).
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBridgeSink } from '../../lib/aws/eventbridge';
import { SecretsManagerCredentialSource } from '../../lib/aws/secrets';
import { CocClient, type AttemptReport } from '../../lib/coc/client';
import { NodeHttpTransport, TransportError, type HttpRequest, type HttpResponse, type Transport } from '../../lib/coc/transport';
import type { Credentials } from '../../lib/credentials';
import type { EnableRequest, Outcome } from '../../lib/domain';
import { isEnablerError } from '../../lib/errors';
import { idempotencyKey, RetryableFailure, Workflow } from '../../lib/workflow';
import { startCocSimulator, type CocSimulator, type SimFault } from '../../simulator/coc-simulator';
import { startEventBridgeFake, startSecretsManagerFake, type EventBridgeFake, type SecretsManagerFake } from '../support/aws-fakes';
import { captureOutput, registerSecret } from '../support/leak-capture';

const num = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const APPROVALS = Math.floor(num('SOAK_APPROVALS', 10_000));
const CONCURRENCY = Math.floor(num('SOAK_CONCURRENCY', 24));
const FAULT_RATE = Math.min(0.5, num('SOAK_FAULT_RATE', 0.1));
const SEED = Math.floor(num('SOAK_SEED', randomBytes(4).readUInt32BE(0) || 1));
const TIME_BUDGET_MS = num('SOAK_TIME_BUDGET_S', 420) * 1000;
/** Share of approvals delivered more than once, concurrently. */
const DUPLICATE_RATE = 0.15;
/** Redeliveries of one delivery before the soak calls it lost. */
const MAX_REDELIVERIES = 25;
/** Per approval: chance of arming one Secrets Manager failure, one PutEvents entry failure, one or two PutEvents throttles. */
const SM_FAULT_RATE = 0.002;
const EB_ENTRY_FAULT_RATE = 0.01;
const EB_THROTTLE_RATE = 0.003;

/** mulberry32: small, seedable, good enough to pick faults and shapes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CRED: Credentials = {
  ak: `SOAK${randomBytes(8).toString('hex').toUpperCase()}`,
  sk: `soak-sk-${randomBytes(16).toString('hex')}`,
  securityToken: `soak-token-${randomBytes(24).toString('hex')}`,
};
registerSecret({ 'soak ak': CRED.ak, 'soak sk': CRED.sk, 'soak security token': CRED.securityToken });
const SECRET_ID = 'coc/huawei-credentials';
const BUS = 'coc-outcomes';

/** The real HTTP transport, classifying what each attempt met (the client's view of injected faults). */
class ClassifyingTransport implements Transport {
  readonly kinds = new Map<string, number>();
  private readonly inner = new NodeHttpTransport();
  private bump(kind: string) {
    this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
  }
  async send(req: HttpRequest, timeoutMs: number): Promise<HttpResponse> {
    let res: HttpResponse;
    try {
      res = await this.inner.send(req, timeoutMs);
    } catch (e) {
      this.bump(e instanceof TransportError ? `transport ${e.kind}` : 'transport other');
      throw e;
    }
    let json: { error_code?: string } | undefined;
    try {
      json = JSON.parse(res.body) as { error_code?: string };
    } catch {
      json = undefined;
    }
    this.bump(json === undefined ? `non-JSON ${res.status}` : `${res.status}${json.error_code ? ` ${json.error_code}` : ''}`);
    return res;
  }
  close(): void {
    this.inner.close();
  }
}

interface Approval {
  request: EnableRequest;
  deliveries: number;
}

describe('soak', () => {
  let sim: CocSimulator;
  let sm: SecretsManagerFake;
  let eb: EventBridgeFake;
  let smClient: SecretsManagerClient;
  let ebClient: EventBridgeClient;

  beforeAll(async () => {
    sim = await startCocSimulator({ credentials: [CRED], random: prng(SEED ^ 0x5eed), recordRequests: false });
    sm = await startSecretsManagerFake({
      secrets: { [SECRET_ID]: JSON.stringify({ ak: CRED.ak, sk: CRED.sk, security_token: CRED.securityToken }) },
    });
    eb = await startEventBridgeFake();
    const aws = { region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 };
    smClient = new SecretsManagerClient({ ...aws, endpoint: sm.url });
    ebClient = new EventBridgeClient({ ...aws, endpoint: eb.url });
  });
  afterAll(async () => {
    smClient?.destroy();
    ebClient?.destroy();
    await Promise.all([sim?.close(), sm?.close(), eb?.close()]);
  });

  it(`${APPROVALS} approvals with ~${FAULT_RATE * 100}% transient faults and concurrent duplicate deliveries: every task ends enabled, one final outcome each`, async () => {
    const rand = prng(SEED);
    const started = Date.now();

    // Five fault rules, each rolled in turn: P(no fault) = (1 - p)^5 = 1 - FAULT_RATE.
    const faults: Record<string, SimFault> = {
      '500': { kind: 'status', status: 500 },
      '503': { kind: 'status', status: 503 },
      '429 Retry-After 0': { kind: 'status', status: 429, retryAfterSeconds: 0 },
      reset: { kind: 'reset' },
      'non-JSON 200': { kind: 'garbage' },
    };
    const p = 1 - (1 - FAULT_RATE) ** (1 / Object.keys(faults).length);
    for (const fault of Object.values(faults)) sim.injectFault({ fault, times: Infinity, probability: p });

    // Approvals of 1-3 tasks, every task seeded disabled.
    const approvals: Approval[] = [];
    let taskCount = 0;
    for (let i = 0; i < APPROVALS; i++) {
      const n = 1 + Math.floor(rand() * 3);
      const taskIds = Array.from({ length: n }, (_, j) => `STSK${String(i).padStart(16, '0')}${String(j).padStart(6, '0')}`);
      for (const t of taskIds) sim.seedTask(t);
      taskCount += n;
      const deliveries = rand() < DUPLICATE_RATE ? 2 + Math.floor(rand() * 2) : 1;
      approvals.push({
        request: { approvalId: `CHG-SOAK-${i}`, taskIds, ticketInfos: [{ ticket_id: `CM-${i}`, ticket_type: 'CHANGE' }], trigger: 'eventbridge', deliveryId: `evt-soak-${i}` },
        deliveries,
      });
    }

    const transport = new ClassifyingTransport();
    const attempts = { total: 0, retries: 0 };
    const outcomesByKind = new Map<string, number>();
    const credentials = SecretsManagerCredentialSource.fromSecretId(smClient, SECRET_ID, { ttlMs: 2000, staleIfErrorMs: 60_000 });
    const coc = new CocClient({
      endpoint: sim.url,
      credentials,
      transport,
      // 3 attempts: a call fails all of them about once in a thousand, so the trigger's retry
      // (redelivery) path is exercised too, not only the client's.
      maxAttempts: 3,
      attemptTimeoutMs: 5000,
      baseDelayMs: 2,
      maxDelayMs: 5,
      throttleMinDelayMs: 1,
      deadlineMs: 20_000,
      onAttempt: (r: AttemptReport) => {
        attempts.total++;
        if (r.attempt > 1) attempts.retries++;
      },
    });
    // 2 attempts per entry: an armed double throttle fails the publish (EventDeliveryFailed), which is redelivered.
    const sink = new EventBridgeSink({ client: ebClient, eventBusName: BUS, maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 });
    const workflow = new Workflow({
      coc,
      sink,
      onPublished: (published: Outcome[]) => {
        for (const o of published) outcomesByKind.set(o.outcome, (outcomesByKind.get(o.outcome) ?? 0) + 1);
      },
    });

    const redelivered = new Set<string>();
    const counts = { deliveries: 0, duplicateDeliveries: 0, redeliveries: 0, tasksHandedBack: 0, smFaultsArmed: 0, ebEntryFaultsArmed: 0, ebThrottlesArmed: 0 };
    const thrownByName = new Map<string, number>();
    const unexpected: unknown[] = [];
    const lost: string[] = [];
    let timedOut = false;

    /** One delivery, redelivered on a retryable failure as the trigger would, bounded. */
    const deliver = async (request: EnableRequest): Promise<void> => {
      for (let n = 0; ; n++) {
        counts.deliveries++;
        try {
          await workflow.enable({ ...request }, { deadline: Date.now() + 20_000 });
          return;
        } catch (e) {
          const name = isEnablerError(e) ? e.name : 'non-catalogue';
          if (e instanceof RetryableFailure) counts.tasksHandedBack += e.failures.length;
          thrownByName.set(name, (thrownByName.get(name) ?? 0) + 1);
          if (!isEnablerError(e) || !e.retryable) {
            captureOutput('soak unexpected error', e);
            unexpected.push(e);
            return;
          }
          if (thrownByName.get(name)! <= 20) captureOutput('soak retryable error', e);
          if (n >= MAX_REDELIVERIES || Date.now() - started > TIME_BUDGET_MS) {
            lost.push(request.approvalId);
            return;
          }
          counts.redeliveries++;
          redelivered.add(request.approvalId);
          await new Promise((r) => setTimeout(r, 1 + Math.floor(Math.random() * 4)));
        }
      }
    };

    let next = 0;
    const worker = async () => {
      while (next < approvals.length) {
        if (Date.now() - started > TIME_BUDGET_MS) {
          timedOut = true;
          return;
        }
        const a = approvals[next++]!;
        if (rand() < SM_FAULT_RATE) (counts.smFaultsArmed++, sm.failNext(1, rand() < 0.5 ? 'ThrottlingException' : 'InternalServiceError'));
        if (rand() < EB_ENTRY_FAULT_RATE) (counts.ebEntryFaultsArmed++, eb.failEntries(1, 'InternalFailure'));
        if (rand() < EB_THROTTLE_RATE) {
          const n = 1 + Math.floor(rand() * 2);
          counts.ebThrottlesArmed += n;
          eb.throttleNext(n);
        }
        counts.duplicateDeliveries += a.deliveries - 1;
        await Promise.all(Array.from({ length: a.deliveries }, () => deliver(a.request)));
        if (next % 2000 === 0) console.log(`soak: ${next}/${approvals.length} approvals, ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const elapsedS = (Date.now() - started) / 1000;

    // ---- what reached the bus
    const onBus = eb.entries().map((e) => JSON.parse(e.Detail ?? '{}') as Outcome);
    const byKey = new Map<string, Outcome[]>();
    for (const o of onBus) byKey.set(o.idempotencyKey, [...(byKey.get(o.idempotencyKey) ?? []), o]);
    captureOutput('soak outcomes on the bus', onBus);

    const stats = sim.stats();
    const summary = {
      seed: SEED,
      approvals: approvals.length,
      tasks: taskCount,
      deliveries: counts.deliveries,
      'duplicate deliveries (concurrent)': counts.duplicateDeliveries,
      'approvals delivered more than once': approvals.filter((a) => a.deliveries > 1).length,
      'redeliveries (trigger retries after a retryable throw)': counts.redeliveries,
      'approvals that needed a redelivery': redelivered.size,
      'thrown by name': Object.fromEntries(thrownByName),
      'tasks handed back in a RetryableFailure': counts.tasksHandedBack,
      'COC requests (simulator)': stats.requests,
      'COC requests by status (simulator)': stats.byStatus,
      'COC attempts by what the client met': Object.fromEntries([...transport.kinds].sort()),
      'COC retries within a call (attempt > 1)': attempts.retries,
      'injected COC faults': Object.fromEntries(
        Object.entries({ '500': '500', '503': '503', '429 Retry-After 0': '429', reset: 'reset' }).map(([k, s]) => [k, stats.byStatus[s] ?? 0]),
      ),
      'injected non-JSON 200': transport.kinds.get('non-JSON 200') ?? 0,
      'Secrets Manager GetSecretValue calls': sm.callsOf('GetSecretValue'),
      'Secrets Manager faults armed': counts.smFaultsArmed,
      'PutEvents calls': eb.callsOf('PutEvents'),
      'PutEvents entry faults armed': counts.ebEntryFaultsArmed,
      'PutEvents throttles armed': counts.ebThrottlesArmed,
      'outcomes published by kind': Object.fromEntries(outcomesByKind),
      'outcome events on the bus': onBus.length,
      'distinct idempotency keys': byKey.size,
      // A consumer keeping the first event per key sees already_enabled here: a duplicate delivery won the race to the bus.
      'keys whose first event is already_enabled': [...byKey.values()].filter((l) => l[0]!.outcome === 'already_enabled').length,
      'elapsed seconds': Number(elapsedS.toFixed(1)),
    };
    console.log(`soak summary\n${JSON.stringify(summary, null, 2)}`);

    // ---- bounded, and nothing unexpected
    expect(timedOut, `time budget of ${TIME_BUDGET_MS / 1000} s exceeded`).toBe(false);
    expect(unexpected.map((e) => (isEnablerError(e) ? `${e.name}: ${e.message}` : String(e)))).toEqual([]);
    expect(lost, 'deliveries still failing after the redelivery bound').toEqual([]);
    expect([...thrownByName.keys()].filter((n) => !['CocThrottled', 'CocUnavailable', 'CredentialsUnavailable', 'EventDeliveryFailed'].includes(n))).toEqual([]);

    // ---- the faults really happened, at about the intended rate
    const injected = ['500', '503', '429', 'reset'].reduce((n, s) => n + (stats.byStatus[s] ?? 0), 0) + (transport.kinds.get('non-JSON 200') ?? 0);
    expect(injected / stats.requests).toBeGreaterThan(FAULT_RATE * 0.7);
    expect(injected / stats.requests).toBeLessThan(FAULT_RATE * 1.3);
    expect(stats.byStatus['401'] ?? 0).toBe(0); // every request validly signed
    const sent = [...transport.kinds.values()].reduce((a, b) => a + b, 0);
    expect(sent).toBe(stats.requests);

    // ---- exactly one final outcome per (approval, task), all successes
    const expectedKeys = new Map<string, { approvalId: string; taskId: string }>();
    for (const a of approvals) {
      for (const taskId of a.request.taskIds) expectedKeys.set(idempotencyKey(a.request.approvalId, taskId, a.request.deliveryId), { approvalId: a.request.approvalId, taskId });
    }
    const missing = [...expectedKeys].filter(([k]) => !byKey.has(k)).map(([, v]) => `${v.approvalId}/${v.taskId}`);
    const unknown = [...byKey.keys()].filter((k) => !expectedKeys.has(k));
    expect(missing.slice(0, 10), `${missing.length} (approval, task) without an outcome`).toEqual([]);
    expect(unknown).toEqual([]);
    const bad: string[] = [];
    for (const [key, list] of byKey) {
      const want = expectedKeys.get(key)!;
      if (list.some((o) => o.approvalId !== want.approvalId || o.taskId !== want.taskId)) bad.push(`${key}: outcome of another task under this key`);
      if (list.some((o) => o.outcome !== 'enabled' && o.outcome !== 'already_enabled')) bad.push(`${want.approvalId}/${want.taskId}: ${list.map((o) => o.error?.name ?? o.outcome).join(', ')}`);
      if (list.filter((o) => o.outcome === 'enabled').length > 1) bad.push(`${want.approvalId}/${want.taskId}: enabled reported more than once`);
    }
    expect(bad.slice(0, 10), `${bad.length} bad outcome groups`).toEqual([]);
    expect(outcomesByKind.get('failed') ?? 0).toBe(0);

    // ---- and COC agrees: every task asked for is enabled, by exactly one successful call
    const notEnabled = [...expectedKeys.values()].filter(({ taskId }) => !sim.task(taskId)?.enabled).map((v) => v.taskId);
    const enabledTwice = [...expectedKeys.values()].filter(({ taskId }) => (sim.task(taskId)?.enableCount ?? 0) !== 1).map((v) => v.taskId);
    expect(notEnabled.slice(0, 10), `${notEnabled.length} tasks not enabled`).toEqual([]);
    expect(enabledTwice.slice(0, 10)).toEqual([]);
    // Every duplicate or redelivery was visible to consumers only as a duplicate key.
    expect(onBus.length).toBeGreaterThanOrEqual(taskCount);
    expect(byKey.size).toBe(taskCount);

    coc.close();
  });
});
