/**
 * Stands in for `@smithy/core/event-streams` in the Lambda bundles (an esbuild alias in
 * scripts/build.ts and serverless.yml). The SDK loads it lazily, only for operations that
 * stream events; GetSecretValue and PutEvents never do, so its 15 KiB are left out. Should
 * an operation ever need it, the call fails loudly instead of silently misbehaving.
 */
const unavailable = (): never => {
  throw new Error('event streams are not bundled in coc-task-enabler (lib/aws/no-event-streams.ts)');
};

export class EventStreamSerde {
  constructor() {
    unavailable();
  }
}

export const eventStreamSerdeProvider = unavailable;
