import type { Clock } from '../../lib/clock';

/** A clock whose sleeps return at once and advance time: retries are tested without waiting. */
export class FakeClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(
    public t = Date.parse('2026-12-04T12:00:00Z'),
    public randomValue = 0.5,
  ) {}
  now(): number {
    return this.t;
  }
  random(): number {
    return this.randomValue;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
