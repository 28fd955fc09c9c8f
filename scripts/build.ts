/**
 * `npm run build`: one minified ESM bundle per Lambda function, dist/<name>/index.mjs.
 *
 * `esbuildOptions()` is the single description of how a function is bundled; the
 * benchmark imports it, and serverless.yml's `custom.esbuild` mirrors it for
 * serverless-esbuild (test/serverless-package.test.ts fails if the two drift apart).
 * No source maps and no keepNames (17 KiB a bundle): the catalogue errors, the transport's
 * and the AWS SDK's set their own `name`, and logs carry the ids that matter, so
 * NODE_OPTIONS stays unset.
 */
import { rmSync, statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

/** Function name (as in serverless.yml) -> entry file. */
export const FUNCTIONS = {
  webhook: 'functions/webhook.ts',
  eventbridge: 'functions/eventbridge.ts',
  stepfunctions: 'functions/stepfunctions.ts',
} as const;

/** Lets bundled CommonJS dependencies `require()` inside an ES module. */
export const CREATE_REQUIRE_BANNER =
  "import { createRequire as __cocCreateRequire } from 'node:module'; const require = __cocCreateRequire(import.meta.url);";

/**
 * Left out of the bundles: the SDK's full credential chain (Lambda supplies role credentials
 * in the environment: lib/aws/lambda-credentials.ts) and its event-stream support, which
 * GetSecretValue and PutEvents never load (lib/aws/no-event-streams.ts).
 */
export const LAMBDA_ALIASES = {
  '@aws-sdk/credential-provider-node': './lib/aws/lambda-credentials.ts',
  '@smithy/core/event-streams': './lib/aws/no-event-streams.ts',
};

/** How every function is bundled; `overrides` for callers such as the benchmark. */
export function esbuildOptions(overrides: BuildOptions = {}): BuildOptions {
  return {
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    minify: true,
    keepNames: false,
    treeShaking: true,
    sourcemap: false,
    mainFields: ['module', 'main'],
    banner: { js: CREATE_REQUIRE_BANNER },
    alias: LAMBDA_ALIASES,
    external: [],
    ...overrides,
  };
}

/** Builds every function into `<outdir>/<name>/index.mjs`; returns each bundle's size in bytes. */
export async function buildAll(outdir = 'dist'): Promise<Record<string, number>> {
  rmSync(outdir, { recursive: true, force: true });
  await build(
    esbuildOptions({
      entryPoints: Object.entries(FUNCTIONS).map(([name, entry]) => ({ in: entry, out: `${name}/index` })),
      outdir,
      outExtension: { '.js': '.mjs' },
      logLevel: 'warning',
    }),
  );
  return Object.fromEntries(Object.keys(FUNCTIONS).map((name) => [name, statSync(`${outdir}/${name}/index.mjs`).size]));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = Date.now();
  const sizes = await buildAll();
  for (const [name, bytes] of Object.entries(sizes)) {
    console.log(`dist/${name}/index.mjs`.padEnd(28), `${(bytes / 1024).toFixed(1)} KiB`.padStart(11));
  }
  console.log(`built ${Object.keys(sizes).length} bundles in ${Date.now() - started} ms`);
}
