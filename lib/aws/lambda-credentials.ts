/**
 * Stands in for `@aws-sdk/credential-provider-node` in the Lambda bundles (an esbuild alias
 * in scripts/build.ts and serverless.yml). Lambda always hands the function's role
 * credentials over as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, so the
 * default chain's SSO, profile, process, web-identity and IMDS providers are dead weight:
 * about a third of each bundle and of its cold start. Outside the bundles (tests, the local
 * CLIs) the SDK's full chain is used as usual.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';

export const defaultProvider = (init?: Parameters<typeof fromEnv>[0]) => fromEnv(init);
