import type { Outcome } from './domain';

/**
 * Where outcome events go. `publish` resolves only when every outcome is delivered and
 * throws EventDeliveryFailed otherwise, so the invocation fails and the trigger's retry
 * and dead-letter queue keep the approval: an outcome is never dropped silently.
 */
export interface OutcomeSink {
  publish(outcomes: Outcome[]): Promise<void>;
}

export const DETAIL_TYPE_ENABLED = 'COC Scheduled Task Enabled';
export const DETAIL_TYPE_FAILED = 'COC Scheduled Task Enable Failed';

export const detailTypeOf = (o: Outcome): string => (o.outcome === 'failed' ? DETAIL_TYPE_FAILED : DETAIL_TYPE_ENABLED);

/** The embedded default: one JSON line per outcome on stdout, shaped like the EventBridge entry. */
export class StdoutSink implements OutcomeSink {
  constructor(
    private readonly source = 'coc.task-enabler',
    private readonly write: (line: string) => void = (line) => process.stdout.write(line),
  ) {}

  async publish(outcomes: Outcome[]): Promise<void> {
    for (const o of outcomes) {
      this.write(`${JSON.stringify({ source: this.source, 'detail-type': detailTypeOf(o), detail: o })}\n`);
    }
  }
}

/** Collects outcomes in memory: for tests and the local demo. */
export class MemorySink implements OutcomeSink {
  readonly outcomes: Outcome[] = [];
  async publish(outcomes: Outcome[]): Promise<void> {
    this.outcomes.push(...outcomes);
  }
}
