import { describe, expect, it } from 'vitest';
import { parseApproval, parseTaskInput, readableTaskIds } from '../lib/domain';
import { InvalidApproval } from '../lib/errors';

const T1 = 'ST0123456789abcdefghijklmn';
const T2 = 'STabcdefghijklmn0123456789';

function invalid(fn: () => unknown): InvalidApproval {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidApproval);
    return e as InvalidApproval;
  }
  throw new Error('expected InvalidApproval');
}

describe('parseTaskInput (schedules, Step Functions)', () => {
  it('normalizes task_id and ticket_infos into an EnableRequest', () => {
    const r = parseTaskInput({ task_id: T1, ticket_infos: [{ ticket_id: 'CM1', ticket_type: 'ALARM', scope_id: 'cn-north-4' }], approval_id: 'CHG-1' }, 'stepfunctions');
    expect(r).toEqual({ approvalId: 'CHG-1', taskIds: [T1], ticketInfos: [{ ticket_id: 'CM1', ticket_type: 'ALARM', scope_id: 'cn-north-4' }], trigger: 'stepfunctions' });
  });

  it('collapses duplicate task ids and derives an approval id when none is given', () => {
    const r = parseTaskInput({ task_ids: [T1, T2, T1] }, 'schedule');
    expect(r.taskIds).toEqual([T1, T2]);
    expect(r.approvalId).toBe(`schedule:${T1},${T2}`);
  });

  it.each([
    [{ task_id: 'ST123' }, 'task_id'],
    [{ task_id: `${T1}x` }, 'task_id'],
    [{ task_id: 'XX0123456789abcdefghijklmn' }, 'task_id'],
    [{ task_id: 'ST0123456789abcdefghijkl-n' }, 'task_id'],
    [{ task_id: 42 }, 'task_id'],
    [{ task_ids: [] }, 'task_ids'],
    [{ task_ids: T1 }, 'task_ids'],
    [{ task_ids: [T1, 'bad'] }, 'task_ids[1]'],
    [{ task_id: T1, task_ids: [T1] }, 'task_ids'],
    [{}, 'task_ids'],
    [{ task_id: T1, ticket_infos: {} }, 'ticket_infos'],
    [{ task_id: T1, ticket_infos: [null] }, 'ticket_infos[0]'],
    [{ task_id: T1, ticket_infos: [{ ticket_type: 'change' }] }, 'ticket_infos[0].ticket_type'],
    [{ task_id: T1, ticket_infos: [{ ticket_id: 'x'.repeat(256) }] }, 'ticket_infos[0].ticket_id'],
    [{ task_id: T1, ticket_infos: [{ target_id: 'x'.repeat(256) }] }, 'ticket_infos[0].target_id'],
    [{ task_id: T1, ticket_infos: [{ scope_id: 'x'.repeat(51) }] }, 'ticket_infos[0].scope_id'],
    [{ task_id: T1, ticket_infos: [{ ticket_id: 7 }] }, 'ticket_infos[0].ticket_id'],
    [{ task_id: T1, ticket_infos: Array.from({ length: 1001 }, () => ({})) }, 'ticket_infos'],
    [{ task_id: T1, approval_id: '' }, 'approval_id'],
    [{ task_id: T1, approval_id: 'a\nb' }, 'approval_id'],
    [[T1], '$'],
    [null, '$'],
  ])('rejects %j naming field %s', (input, field) => {
    const e = invalid(() => parseTaskInput(JSON.parse(JSON.stringify(input) ?? 'null'), 'stepfunctions'));
    expect(e.field).toBe(field);
  });

  it('rejects prototype keys parsed from JSON instead of merging them', () => {
    const input: unknown = JSON.parse(`{"task_id":"${T1}","ticket_infos":[{"__proto__":{"polluted":1},"ticket_id":"a"}]}`);
    expect(invalid(() => parseTaskInput(input, 'stepfunctions')).field).toBe('ticket_infos[0].__proto__');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('accepts the boundary lengths', () => {
    const r = parseTaskInput(
      { task_id: T1, ticket_infos: [{ ticket_id: 'x'.repeat(255), target_id: 'y'.repeat(255), scope_id: 'z'.repeat(50) }] },
      'stepfunctions',
    );
    expect(r.ticketInfos[0]!.ticket_id).toHaveLength(255);
    expect(parseTaskInput({ task_id: T1, ticket_infos: Array.from({ length: 1000 }, () => ({})) }, 'stepfunctions').ticketInfos).toHaveLength(1000);
  });

  it('keeps the readable task ids on a validation failure so each gets an outcome', () => {
    const e = invalid(() => parseTaskInput({ task_ids: [T1, 'bad-id'], ticket_infos: 'x' }, 'stepfunctions'));
    expect(e.taskIds).toEqual([T1, 'bad-id']);
    expect(readableTaskIds({ task_id: 5 })).toEqual([]);
  });
});

describe('parseApproval (webhook, EventBridge)', () => {
  const approval = { approval_id: 'CHG-7', decision: 'approved', task_ids: [T1], ticket_infos: [{ ticket_id: 'CM7' }], approver: 'alice', decided_at: '2026-12-04T10:00:00Z' };

  it('accepts APPROVED in any case', () => {
    const r = parseApproval(approval, 'webhook', 'msg_1');
    expect(r).toEqual({
      approved: true,
      request: { approvalId: 'CHG-7', taskIds: [T1], ticketInfos: [{ ticket_id: 'CM7' }], trigger: 'webhook', deliveryId: 'msg_1', decidedAt: '2026-12-04T10:00:00Z' },
    });
  });

  it('returns other decisions as not approved, without needing task ids', () => {
    expect(parseApproval({ approval_id: 'CHG-8', decision: 'Rejected' }, 'eventbridge')).toEqual({ approved: false, approvalId: 'CHG-8', decision: 'REJECTED' });
  });

  it.each([
    [{ ...approval, approval_id: undefined }, 'approval_id'],
    [{ ...approval, decision: 5 }, 'decision'],
    [{ ...approval, decided_at: 'yesterday' }, 'decided_at'],
    [{ ...approval, approver: {} }, 'approver'],
    [{ ...approval, task_ids: ['nope'] }, 'task_ids[0]'],
  ])('rejects %j naming %s', (input, field) => {
    expect(invalid(() => parseApproval(input, 'webhook')).field).toBe(field);
  });
});
