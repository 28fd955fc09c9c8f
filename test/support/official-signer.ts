// The official Huawei Cloud Node.js SDK signer, used only as a test oracle (devDependency, never bundled).
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';
import { BasicCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/BasicCredentials.js';

export interface OfficialSignInput {
  method: string;
  /** Full URL without query: scheme://host[:port]/path (path not encoded). */
  endpoint: string;
  query?: Record<string, string | string[]>;
  headers: Record<string, string>;
  /** Serialized by the SDK with JSON.stringify; undefined = empty body. */
  data?: unknown;
  sdkDate: string;
}

export function officialAuthorization(input: OfficialSignInput, ak: string, sk: string): string {
  const credential = new BasicCredentials().withAk(ak).withSk(sk);
  const headers = AKSKSigner.sign(
    {
      method: input.method,
      endpoint: input.endpoint,
      queryParams: input.query ?? {},
      headers: { ...input.headers, 'X-Sdk-Date': input.sdkDate },
      data: input.data,
    } as never,
    credential as never,
  ) as Record<string, string>;
  return headers.Authorization!;
}
