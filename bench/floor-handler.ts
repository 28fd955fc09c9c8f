/**
 * Benchmark reference, not product code: the least a cold start of this function can cost.
 * A handler that makes the same three loopback round trips as the real one (Secrets
 * Manager GetSecretValue, the COC enable POST, EventBridge PutEvents) with node:http and
 * one HMAC, unsigned towards AWS and with no SDK, logger or middleware. Its cold-start
 * ratio is the floor against which the product's ratio should be read on a given machine.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';

const agent = new http.Agent({ keepAlive: true });

function post(url: string, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { method: 'POST', host: u.hostname, port: u.port, path, agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function handler(event: { task_id?: string }): Promise<{ outcomes: Array<{ outcome: string }> }> {
  const env = process.env;
  const json = { 'content-type': 'application/x-amz-json-1.1' };
  const secret = await post(env.AWS_ENDPOINT_URL_SECRETS_MANAGER!, '/', { ...json, 'x-amz-target': 'secretsmanager.GetSecretValue' }, JSON.stringify({ SecretId: env.HUAWEI_CREDENTIALS_SECRET_ID }));
  const { sk } = JSON.parse((JSON.parse(secret.body) as { SecretString: string }).SecretString) as { sk: string };
  const signature = createHmac('sha256', sk).update(`${event.task_id}`).digest('hex');
  const coc = await post(env.COC_ENDPOINT!, `/v1/schedule/task/${event.task_id}/enable`, { 'content-type': 'application/json', authorization: signature }, '{}');
  await post(env.AWS_ENDPOINT_URL_EVENTBRIDGE!, '/', { ...json, 'x-amz-target': 'AWSEvents.PutEvents' }, JSON.stringify({ Entries: [{ Source: 'floor', DetailType: 'floor', Detail: JSON.stringify({ status: coc.status }) }] }));
  return { outcomes: [{ outcome: `http_${coc.status}` }] };
}
