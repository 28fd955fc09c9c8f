import { EnablerError } from './errors';

/** Huawei Cloud AK/SK credentials. Never log or serialize these. */
export interface Credentials {
  ak: string;
  sk: string;
  /** Present for temporary credentials; sent as X-Security-Token. */
  securityToken?: string;
  /** Account id, sent as X-Domain-Id (COC is a global service). */
  domainId?: string;
  /** Sent as X-Project-Id when set. */
  projectId?: string;
}

/**
 * Where credentials come from. `refresh()` is called once when COC rejects the
 * credentials (APIGW.0301), so a rotated secret is picked up without a redeploy.
 */
export interface CredentialSource {
  get(): Promise<Credentials>;
  refresh(): Promise<Credentials>;
}

/** The embedded default: the variables Huawei's own SDKs read. */
export class EnvCredentialSource implements CredentialSource {
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  async get(): Promise<Credentials> {
    const ak = this.env.HUAWEICLOUD_SDK_AK;
    const sk = this.env.HUAWEICLOUD_SDK_SK;
    const missing = [!ak && 'HUAWEICLOUD_SDK_AK', !sk && 'HUAWEICLOUD_SDK_SK'].filter(Boolean);
    if (missing.length > 0) {
      throw new EnablerError('CredentialsUnavailable', `missing credential variable ${missing.join(' and ')}`, {
        code: 'MissingCredentialVariable',
      });
    }
    return {
      ak: ak!,
      sk: sk!,
      ...(this.env.HUAWEICLOUD_SDK_SECURITY_TOKEN && { securityToken: this.env.HUAWEICLOUD_SDK_SECURITY_TOKEN }),
      ...(this.env.HUAWEICLOUD_SDK_DOMAIN_ID && { domainId: this.env.HUAWEICLOUD_SDK_DOMAIN_ID }),
      ...(this.env.HUAWEICLOUD_SDK_PROJECT_ID && { projectId: this.env.HUAWEICLOUD_SDK_PROJECT_ID }),
    };
  }

  refresh(): Promise<Credentials> {
    return this.get();
  }
}
