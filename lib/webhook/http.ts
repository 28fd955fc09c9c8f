/**
 * The HTTP vocabulary of the webhook door: the API Gateway proxy events it accepts (HTTP
 * API payload 2.0 and REST API 1.0), the JSON answers it gives, and HttpProblem, the error
 * a middleware throws to answer with a given status. Nothing here knows about approvals.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2 } from 'aws-lambda';

/** API Gateway HTTP API (payload 2.0) or REST API (1.0) proxy event. */
export type HttpEvent = APIGatewayProxyEvent | APIGatewayProxyEventV2;

/** Satisfies both APIGatewayProxyResult and APIGatewayProxyStructuredResultV2. */
export interface HttpAnswer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export const isPayloadV2 = (event: HttpEvent): event is APIGatewayProxyEventV2 =>
  (event as APIGatewayProxyEventV2).version === '2.0' && typeof (event as APIGatewayProxyEventV2).requestContext?.http === 'object';

/** The request method, upper case ('' when the event carries none). */
export function methodOf(event: HttpEvent): string {
  const method = isPayloadV2(event) ? event.requestContext.http.method : (event as APIGatewayProxyEvent).httpMethod;
  return typeof method === 'string' ? method.toUpperCase() : '';
}

/** A header by name, case-insensitively (REST API 1.0 keeps the sender's case). */
export function headerOf(event: { headers?: Record<string, string | undefined> | null }, name: string): string | undefined {
  const headers = event.headers ?? {};
  const wanted = name.toLowerCase();
  if (typeof headers[wanted] === 'string') return headers[wanted];
  for (const key of Object.keys(headers)) if (key.toLowerCase() === wanted) return headers[key];
  return undefined;
}

export function jsonAnswer(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpAnswer {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

/**
 * Thrown by a middleware to answer `status` with this JSON body. `reason` is for the log
 * only (e.g. why a signature was refused) and never reaches the response.
 */
export class HttpProblem extends Error {
  override readonly name = 'HttpProblem';
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly reason: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status}: ${reason}`);
  }

  answer(): HttpAnswer {
    return jsonAnswer(this.status, this.body, this.headers);
  }
}
